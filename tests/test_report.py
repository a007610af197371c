"""Figures and report.html after a test: they exist, decode, and show what they claim."""

import csv
import re

import numpy as np
import pytest
from matplotlib.image import imread
from sklearn import metrics as skm

from conftest import config, read_json, run_cli, run_dirs
from trainlab.reporting import figures

METRICS = ("accuracy", "precision", "recall", "f1", "auroc")
LEAN = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
EXPECTED = {
    "seed": {"data", "learning_curves", "roc", "precision_recall", "calibration", "confusion_matrix"},
    "multiclass": {"data", "learning_curves", "roc", "confusion_matrix"},
    "regression": {"data", "learning_curves", "predicted_vs_actual", "residuals"},
}


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {key: np.array([float(row[key]) for row in rows]) for key in rows[0]}


@pytest.mark.parametrize("name", EXPECTED)
def test_a_fit_that_tests_leaves_figures_and_a_self_contained_report(name):
    assert run_cli("fit", "-c", config(name), "--trainer.max_epochs", "4", *LEAN) == 0
    (run,) = run_dirs(name)
    plots = {p.stem: p for p in (run / "plots").glob("*.png")}
    assert set(plots) == EXPECTED[name]
    for path in plots.values():
        image = imread(path)
        assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 300  # a real picture
    page = (run / "report.html").read_text()
    assert len(re.findall(r'<img alt="[a-z_]+" src="data:image/png;base64,', page)) == len(plots)
    assert "http://" not in page and "https://" not in page  # nothing fetched: it opens offline
    for key, value in read_json(run / "metrics.json").items():
        assert f"<th>{key}</th><td>{value:.4f}</td>" in page
    assert f"Diagnosis: <b>{read_json(run / 'diagnosis.json')['verdict']}</b>" in page
    assert "model:" in page and "class_path: trainlab.models.MLPModule" in page  # the config


def test_figures_show_what_predictions_csv_says():
    assert run_cli("fit", "-c", config("default"), "--trainer.max_epochs", "4", *LEAN) == 0
    (run,) = run_dirs("default")
    (best,) = (run / "checkpoints").glob("best-*.ckpt")
    assert run_cli("predict", "-c", config("default"), "--ckpt_path", best, *LEAN) == 0
    predictions = read_csv(run / "predict" / "version_0" / "predictions.csv")
    y, p, predicted = predictions["target"], predictions["probability"], predictions["prediction"]
    # the confusion matrix figure annotates sklearn's counts
    matrix = skm.confusion_matrix(y, predicted)
    counts_ax = figures.confusion(y, predicted, 2).axes[0]
    assert sorted(int(t.get_text()) for t in counts_ax.texts) == sorted(matrix.ravel().tolist())
    # the ROC legend's AUC is the test/auroc the fit's test logged (the fit tested its best checkpoint)
    legend = figures.roc_curves(y, p).axes[0].get_legend().get_texts()[0].get_text()
    assert legend == f"AUC = {read_json(run / 'metrics.json')['test/auroc']:.4f}"


def test_tensorboard_has_the_figures_and_the_hparams():
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert run_cli("fit", "-c", config("seed"), "--trainer.max_epochs", "3", *LEAN) == 0
    (run,) = run_dirs("seed")
    events = EventAccumulator(str(run), size_guidance={"images": 0}).Reload()
    assert {f"plots/{name}" for name in EXPECTED["seed"]} <= set(events.Tags()["images"])
    hparams = events.PluginTagToContent("hparams")
    assert hparams  # the HParams view's session data, with the test metrics as its metrics
    # named as tuning trials name theirs: config keys, metrics under hparams/ (off the per-epoch curves)
    assert any(b"hparams/test/accuracy" in content for content in hparams.values())
    assert any(b"model.init_args.lr" in content for content in hparams.values())
    assert events.Scalars("hparams/test/accuracy")[0].value == pytest.approx(
        read_json(run / "metrics.json")["test/accuracy"]
    )


@pytest.mark.slow
def test_without_a_validation_split_every_per_epoch_number_is_named_test(capsys):
    """seed.yaml has no validation split: the test split is evaluated every epoch, so its curves, summary
    lines, report and diagnosis say test, never val; with a validation split they say val."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from trainlab.reporting.report import read_curves

    args = ["--trainer.max_epochs", "4", "--run.summary_every", "2", "--run.val_metrics_every", "1", *LEAN]
    assert run_cli("fit", "-c", config("seed"), *args) == 0
    (run,) = run_dirs("seed")
    out = capsys.readouterr().out
    assert "Epoch [2/4], train/loss" in out and ", test/loss " in out and "test/accuracy" in out
    tags = EventAccumulator(str(run)).Reload().Tags()["scalars"]
    assert not [t for t in tags if t.startswith("val/")]
    curves = read_curves(run)
    assert curves["test/loss"][0] == [1, 2, 3, 4]  # per epoch; the test after the fit adds no fifth point
    assert curves["test/loss"][1][-1] == pytest.approx(read_json(run / "metrics.json")["test/loss"])  # last tested
    diagnosis = read_json(run / "diagnosis.json")
    assert diagnosis["held_out"] == "test" and "best_test_loss" in diagnosis["evidence"]
    assert not [k for k in diagnosis["evidence"] if "val" in k]
    assert "val/" not in (run / "report.html").read_text()
    # a validation metric is refused where there is no validation split, with the names that exist
    assert run_cli("fit", "-c", config("seed"), "--run.monitor", "val/loss", *args) == 2
    err = capsys.readouterr().err
    assert "run.monitor" in err and "test/loss" in err and "without a validation split" in err

    assert run_cli("fit", "-c", config("seed"), "--data.init_args.val_fraction", "0.2", *args) == 0
    out = capsys.readouterr().out
    assert ", val/loss " in out and "test/loss" not in out.split("Epoch [4/4]")[1].splitlines()[0]
    assert set(read_curves(run_dirs("seed")[-1])) == {"train/loss", *(f"val/{m}" for m in ("loss", *METRICS))}


def test_no_report_when_turned_off():
    assert run_cli("fit", "-c", config("seed"), "--trainer.max_epochs", "2", "--run.report", "false", *LEAN) == 0
    (run,) = run_dirs("seed")
    assert not (run / "report.html").exists() and not (run / "plots").exists()


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


def test_a_class_absent_from_the_test_split_gives_null_metrics_and_a_report(capsys):
    """Class "c" only in the training rows (the same split scikit-learn's train_test_split makes): test/auroc is
    undefined, recorded as null with one warning; the report still comes, with no ROC curve."""
    import yaml
    from sklearn.model_selection import train_test_split

    rng = np.random.default_rng(0)
    n = 120
    x = rng.normal(size=(n, 2))
    labels = np.where(x[:, 0] > 0, "a", "b").astype(object)
    rest, _test = train_test_split(np.arange(n), test_size=0.25, random_state=7)
    train, _val = train_test_split(rest, test_size=0.2 / 0.75, random_state=7)
    labels[train[:6]] = "c"
    with open("rare.csv", "w") as f:
        f.write("x1,x2,label\n" + "".join(f"{a},{b},{y}\n" for (a, b), y in zip(x, labels, strict=True)))
    data = {
        "path": "rare.csv",
        "target": "label",
        "stratify": False,
        "seed": 7,
        "val_fraction": 0.2,
        "test_fraction": 0.25,
    }
    cfg = {
        "trainer": {"max_epochs": 3},
        "model": {"class_path": "trainlab.models.MLPModule", "init_args": {"hidden_dims": [8]}},
        "data": {"class_path": "trainlab.data.FileDataModule", "init_args": data},
    }
    with open("rare.yaml", "w") as f:
        yaml.safe_dump(cfg, f)
    assert run_cli("fit", "-c", "rare.yaml", *LEAN) == 0
    (run,) = run_dirs("trainlab")
    metrics = read_json(run / "metrics.json")
    assert metrics["test/auroc"] is None and isinstance(metrics["test/accuracy"], float)
    assert "test/auroc is undefined on this test split: class 2 is absent from the split" in capsys.readouterr().err
    assert "undefined" in (run / "report.html").read_text()
    plots = {p.stem for p in (run / "plots").glob("*.png")}
    assert "confusion_matrix" in plots and "roc" not in plots


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
