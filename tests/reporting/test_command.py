"""`trainlab report`: pages rebuilt from run directories without retraining, several runs compared (the
chapter's learning rates) on a page --out names, and each bad run named while the others are still reported."""

import re
from pathlib import Path

import pytest

from tests.helpers import LEAN, QUIET, config, read_json, run_cli, run_dirs, snapshot


@pytest.mark.slow
def test_report_compares_the_chapters_learning_rates(capsys):
    """The mini-challenge: seed.yaml at lr 0.1, 0.01 and 0.001, then one `trainlab report`: runs labelled
    by their lr, the best value per metric starred, each verdict, and the comparison said in words."""
    from trainlab.reporting.report import read_curves

    for lr in ("0.1", "0.01", "0.001"):
        assert run_cli("fit", "-c", config("seed"), "--model.init_args.lr", lr, "--trainer.max_epochs", "5", *LEAN) == 0
    runs = run_dirs("seed")
    for run in runs:
        (run / "report.html").unlink()
    assert run_cli("report", *runs, "--out", "lr.html") == 0
    page = open("lr.html").read()
    for run in runs:
        assert str(run) in page
        rebuilt = (run / "report.html").read_text()
        assert rebuilt.count('<img alt="') == len(list((run / "plots").glob("*.png")))
        assert "<th>train samples</th><td>800, classes " in rebuilt  # the test's data summary came back
    assert "<th>model.init_args.lr</th><td>0.1</td><td>0.01</td><td>0.001</td>" in page
    for lr in ("0.1", "0.01", "0.001"):  # runs are named by what sets them apart
        assert f"<th>lr={lr}<br><small>" in page
    accuracies = [read_json(run / "metrics.json")["test/accuracy"] for run in runs]
    best = max(accuracies)
    cells = [f"<b>{a:.4f} &#9733;</b>" if a == best else f"{a:.4f}" for a in accuracies]
    assert "<th>test/accuracy</th>" + "".join(f"<td>{c}</td>" for c in cells) in page  # the best one starred
    verdicts = [read_json(run / "diagnosis.json")["verdict"] for run in runs]
    assert "<th>diagnosis</th>" + "".join(f"<td>{v}</td>" for v in verdicts) in page
    losses = [read_json(run / "metrics.json")["test/loss"] for run in runs]
    winner = ["lr=0.1", "lr=0.01", "lr=0.001"][losses.index(min(losses))]
    assert re.search(rf"Best on the test split: .*{re.escape(winner)} on [^;]*test/loss", page)
    lowest = min(min(read_curves(run)["test/loss"][1]) for run in runs)  # seed.yaml: the test split every epoch
    assert "Lowest test/loss during training: " in page and f"({lowest:.4f} at epoch " in page
    assert page.count('<img alt="learning_curves"') == 1


def test_report_names_each_bad_run_and_still_reports_the_others(tmp_path, capsys):
    assert run_cli("fit", "-c", config("seed"), "--trainer.max_epochs", "2", *LEAN) == 0
    assert (
        run_cli("fit", "-c", config("seed"), "--trainer.max_epochs", "2", "--run.test_after_fit", "false", *LEAN) == 0
    )
    good, untested = run_dirs("seed")
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "config.yaml").write_text("model: {}\n")
    (damaged / "metrics.json").write_text("{not json")
    (good / "report.html").unlink()
    capsys.readouterr()
    assert run_cli("report", good, untested, tmp_path / "nowhere", damaged) == 2
    err = capsys.readouterr().err.strip().splitlines()
    no_metrics = "no test metrics yet (metrics.json): run `trainlab test -c CONFIG --ckpt_path FILE`"
    assert err[0] == f"trainlab: error: {untested}: {no_metrics}, or a fit with run.test_after_fit true"
    assert err[1].startswith(f"trainlab: error: {tmp_path / 'nowhere'}: not a run directory")
    assert err[2].startswith(f"trainlab: error: {damaged}: unreadable (JSONDecodeError")
    assert len(err) == 3 and (good / "report.html").exists()  # the good run was still reported


def test_report_says_when_event_files_are_unreadable(capsys):
    assert run_cli("fit", "-c", config("seed"), "--trainer.max_epochs", "2", *LEAN) == 0
    (run,) = run_dirs("seed")
    for events in run.glob("events.out.tfevents.*"):
        events.write_bytes(events.read_bytes()[:60] + b"garbage")
    capsys.readouterr()
    assert run_cli("report", run) == 0
    err = capsys.readouterr().err
    assert f"trainlab: warning: {run}: no readable per-epoch scalars" in err
    assert (run / "report.html").exists()


def test_report_of_a_run_with_damaged_optional_files_warns_and_still_writes_the_page(capsys):
    assert run_cli("fit", "-c", config("seed"), "--trainer.max_epochs", "2", *LEAN) == 0
    (run,) = run_dirs("seed")
    (run / "diagnosis.json").write_text("{broken")
    (run / "report.json").write_text("[1, 2]")
    (run / "config.yaml").write_text("a: [")
    (run / "report.html").unlink()
    capsys.readouterr()
    assert run_cli("report", run) == 0
    err = capsys.readouterr().err
    for name in ("diagnosis.json", "report.json", "config.yaml"):
        assert f"{run / name}: unreadable" in err
    assert "Traceback" not in err and "test/accuracy" in (run / "report.html").read_text()
    (run / "metrics.json").write_text("[1]")
    assert run_cli("report", run) == 2
    assert "metrics.json holds list, not a mapping" in capsys.readouterr().err


def test_out_is_a_file_or_a_folder_for_the_comparison_and_is_refused_with_one_run(capsys):
    for lr in ("0.1", "0.01"):
        args = ["--model.init_args.lr", lr, "--trainer.max_epochs", "2", *QUIET]
        assert run_cli("fit", "-c", config("seed"), *args) == 0
    first, second = run_dirs("seed")
    Path("pages").mkdir()
    capsys.readouterr()
    assert run_cli("report", first, second, "--out", "pages") == 0
    assert "comparison: pages/comparison.html" in capsys.readouterr().out
    assert "lr=0.1" in Path("pages/comparison.html").read_text()
    before = snapshot(first)
    assert run_cli("report", first, "--out", "one.html") == 2  # --out would do nothing: said, not ignored
    err = capsys.readouterr().err.strip()
    assert "--out one.html: a comparison needs two or more runs" in err and "\n" not in err
    assert not Path("one.html").exists() and snapshot(first) == before
