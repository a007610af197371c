"""`trainlab cv`: bad input is refused in one line and nothing runs; an interrupt stops it in one line."""

import signal
import time
from pathlib import Path

import pytest

from tests.helpers import Forked, config, run_cli

BAD = [
    (["--folds", "1"], "--folds=1"),
    (["--folds", "60", "--data.init_args.n_samples", "100"], "--folds=60"),
    (["--folds", "3", "--stratify", "true", "-c", config("regression")], "regression target"),
    (["--folds", "3", "--stratify", "maybe"], "--stratify=maybe"),
    (["--folds", "3", "--repeats", "0"], "--repeats=0"),
    (["--folds", "3", "--model.init_args.lr", "-1"], "model.init_args.lr"),
    (["--folds", "3", "oops"], "'oops'"),
    (["--folds", "3", "-c", "missing.yaml"], "missing.yaml"),
]


@pytest.mark.parametrize(("args", "named"), BAD, ids=[b[1] for b in BAD])
def test_bad_cv_input_is_one_line_and_runs_nothing(args, named, capsys):
    assert run_cli("cv", "-c", config("seed"), *args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("trainlab: error:") and "\n" not in err and "Traceback" not in err
    assert named in err
    assert not Path("lightning_logs/cv").exists()


@pytest.mark.parametrize("pack", [[], ["--no-pack"]], ids=["packed", "one fit per fold"])
def test_an_interrupted_cv_stops_in_one_line_without_a_fit_resume_hint(pack):
    """A fold cannot be resumed alone: the interrupted fit's checkpoint is saved, but `--ckpt_path` is not
    offered (trainlab fit's hint), and the command stops with 128 + SIGINT."""
    process = Forked("cv", "-c", config("seed"), "--folds", "2", "--trainer.max_epochs", "500", *pack)
    deadline = time.monotonic() + 120  # a guard against a hang, not a speed expectation
    while not list(Path("lightning_logs/cv").rglob("last.ckpt")):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    output = process.stdout.read()
    assert process.wait() == 128 + signal.SIGINT
    lines = output.strip().splitlines()
    assert lines[-1] == "trainlab: stopped by SIGINT (exit 130)" and "Traceback" not in output
    assert "trainlab: interrupted: saved" in lines[-2] and "interrupted.ckpt" in lines[-2]
    assert "--ckpt_path" not in output
