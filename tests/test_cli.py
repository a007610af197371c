"""The trainlab command end to end: real Lightning fits, tests and predictions on every config; the console
script, help and version without Lightning, and the command's own one-line refusals."""

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from sklearn import metrics as skm

from tests.helpers import QUIET, SHORT, config, read_json, run_cli, run_dirs
from trainlab import tasks

CONFIG_TASKS = {"seed": "binary", "default": "binary", "multiclass": "multiclass", "regression": "regression"}


def read_predictions(path: Path) -> dict[str, np.ndarray]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {key: np.array([float(row[key]) for row in rows]) for key in rows[0]}


@pytest.mark.parametrize("name", CONFIG_TASKS)
def test_fit_then_test_then_predict(name):
    task = CONFIG_TASKS[name]
    assert run_cli("fit", "-c", config(name), *SHORT) == 0
    (fit_dir,) = run_dirs(name)
    assert (fit_dir / "config.yaml").is_file() and (fit_dir / "hparams.yaml").is_file()
    assert list(fit_dir.glob("events.out.tfevents.*"))
    checkpoints = fit_dir / "checkpoints"
    assert (checkpoints / "last.ckpt").is_file()
    (best,) = checkpoints.glob("best-epoch*.ckpt")
    fit_metrics = read_json(fit_dir / "metrics.json")  # a fit tests its checkpoint by default
    expected = {"test/loss"} | {f"test/{m}" for m in tasks.METRIC_NAMES[task]}
    assert set(fit_metrics) == expected

    assert run_cli("test", "-c", config(name), "--ckpt_path", best, *QUIET) == 0
    assert run_cli("predict", "-c", config(name), "--ckpt_path", best, *QUIET) == 0
    test_dir, predict_dir = fit_dir / "test" / "version_0", fit_dir / "predict" / "version_0"  # inside the fit
    metrics = read_json(test_dir / "metrics.json")
    assert set(metrics) == expected
    predictions = read_predictions(predict_dir / "predictions.csv")

    # predictions.csv: one row per test sample, in order; its scores give test/metrics.json again
    target, predicted = predictions["target"], predictions["prediction"]
    assert np.array_equal(predictions["index"], np.arange(len(target)))
    # ...the rows are the test split's, and the scores are the checkpoint's on them
    from trainlab.data import SyntheticDataModule
    from trainlab.models import MLPModule

    data = SyntheticDataModule(**yaml.safe_load(Path(config(name)).read_text())["data"]["init_args"])
    data.setup()
    assert np.array_equal(predictions["dataset_index"], data.split_indices["test"])
    X_test, y_test = data.splits["test"]
    assert np.array_equal(target, y_test.numpy())
    module = MLPModule.load_from_checkpoint(best).eval()
    with torch.no_grad():
        scores = tasks.metric_inputs(task, module(X_test)).numpy()
    if task == "binary":
        assert np.allclose(predictions["probability"], scores, atol=1e-6)
        assert metrics["test/accuracy"] == pytest.approx(skm.accuracy_score(target, predicted), abs=1e-6)
        assert metrics["test/precision"] == pytest.approx(skm.precision_score(target, predicted), abs=1e-6)
        assert metrics["test/recall"] == pytest.approx(skm.recall_score(target, predicted), abs=1e-6)
        assert metrics["test/f1"] == pytest.approx(skm.f1_score(target, predicted), abs=1e-6)
        assert metrics["test/auroc"] == pytest.approx(skm.roc_auc_score(target, predictions["probability"]), abs=1e-5)
        assert np.array_equal(predicted, predictions["probability"] > 0.5)
    elif task == "multiclass":
        probabilities = np.stack([predictions[f"probability_{k}"] for k in range(4)], axis=1)
        assert np.allclose(probabilities, scores, atol=1e-6)
        assert np.allclose(probabilities.sum(1), 1, atol=1e-5)
        assert np.array_equal(predicted, probabilities.argmax(1))
        assert metrics["test/accuracy"] == pytest.approx(skm.accuracy_score(target, predicted), abs=1e-6)
        assert metrics["test/f1"] == pytest.approx(skm.f1_score(target, predicted, average="macro"), abs=1e-5)
        auroc = skm.roc_auc_score(target, probabilities, multi_class="ovr", average="macro")
        assert metrics["test/auroc"] == pytest.approx(auroc, abs=1e-4)
    else:
        assert np.allclose(predicted, scores, rtol=1e-5, atol=1e-5)
        assert metrics["test/mse"] == pytest.approx(skm.mean_squared_error(target, predicted), rel=1e-4)
        assert metrics["test/r2"] == pytest.approx(skm.r2_score(target, predicted), rel=1e-4)


@pytest.mark.slow
def test_the_console_script_fits_and_diagnoses_and_its_checkpoint_reloads_here_alike():
    """`trainlab fit` from the console script prints the doctor's verdict; the checkpoint it wrote loads in
    another process (this one) as the same model, testing to the metrics the fit recorded."""
    trainlab = Path(sys.executable).with_name("trainlab")
    args = ["fit", "-c", config("multiclass"), "--run.test_ckpt", "last", *SHORT]
    done = subprocess.run([trainlab, *args], capture_output=True, text=True)
    assert done.returncode == 0 and "Diagnosis: " in done.stdout, done.stderr[-2000:]
    (run,) = run_dirs("multiclass")
    assert read_json(run / "diagnosis.json")["verdict"] in done.stdout
    ckpt = run / "checkpoints" / "last.ckpt"
    from trainlab.models import MLPModule

    module = MLPModule.load_from_checkpoint(ckpt, map_location="cpu")
    assert module.hparams.task == "multiclass" and module.hparams.num_classes == 4
    assert run_cli("test", "-c", config("multiclass"), "--ckpt_path", ckpt, *QUIET) == 0
    (tested,) = (run / "test").glob("version_*")
    assert read_json(tested / "metrics.json") == pytest.approx(read_json(run / "metrics.json"), abs=1e-6)


@pytest.mark.slow
def test_the_chapter_experiment_reaches_the_chapters_accuracy():
    assert run_cli("fit", "-c", config("seed"), *QUIET) == 0
    (run,) = run_dirs("seed")
    metrics = read_json(run / "metrics.json")
    assert 0.89 <= metrics["test/accuracy"] <= 0.95


def test_help_and_version_answer_without_lightning():
    code = "import sys; from trainlab.cli import main; main(sys.argv[1:])"
    for flag, text in (("--help", "commands:"), ("--version", "trainlab 0.1.0")):
        done = subprocess.run([sys.executable, "-X", "importtime", "-c", code, flag], capture_output=True, text=True)
        assert done.returncode == 0 and text in done.stdout
        assert "lightning" not in done.stderr and "torch" not in done.stderr  # nothing heavy was imported


def test_python_dash_m_trainlab():
    done = subprocess.run([sys.executable, "-m", "trainlab", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "trainlab 0.1.0"


def test_the_console_script_leaves_its_objects_out_of_the_shutdown_collection():
    """entry() (the console script) freezes the collector's objects as the command ends, also when it
    exits with an error, so that Python's shutdown does not traverse Lightning's and torch's objects."""
    code = (
        "import gc, sys; from trainlab.cli import entry; sys.argv = ['trainlab'] + sys.argv[1:]\n"
        "try:\n    entry()\nfinally:\n    print(gc.get_freeze_count() > 0)"
    )
    for args, returncode in ((["--version"], 0), (["fitt"], 2)):
        done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
        assert done.returncode == returncode and done.stdout.strip().endswith("True")


def test_every_lightning_command_ends_by_naming_its_outputs(capsys):
    args = ["-c", config("seed"), "--trainer.max_epochs", "3", *QUIET]
    assert run_cli("fit", *args) == 0
    (run,) = run_dirs("seed")
    last_line = capsys.readouterr().out.strip().splitlines()[-1]
    best = next((run / "checkpoints").glob("best-epoch*.ckpt")).name
    files = f"metrics.json, diagnosis.json, checkpoints/{best}, checkpoints/last.ckpt"
    assert last_line == f"trainlab: outputs in {run}: {files}"
    assert run_cli("predict", *args, "--ckpt_path", run / "checkpoints" / "last.ckpt") == 0
    last_line = capsys.readouterr().out.strip().splitlines()[-1]
    assert last_line == f"trainlab: outputs in {run / 'predict' / 'version_0'}: predictions.csv"


def test_a_command_without_a_config_says_to_give_one_with_dash_c(capsys):
    assert run_cli("fit") == 2
    assert "give a config with -c, for example: trainlab fit -c configs/seed.yaml" in capsys.readouterr().err


def test_short_command_help_answers_without_lightning_and_names_real_keys_and_defaults():
    import inspect
    import re

    import yaml
    from lightning.pytorch import Trainer

    from trainlab.cli import command_help
    from trainlab.data import FileDataModule, TabularDataModule
    from trainlab.lightning_cli import EarlyStoppingOptions, RunOptions
    from trainlab.models import MLPModule

    code = "import sys; from trainlab.cli import main; main(sys.argv[1:])"
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, "fit", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0 and "--model.init_args.lr 0.001" in done.stdout and "lightning" not in done.stderr
    classes = {
        "model.init_args": [MLPModule],
        "data.init_args": [TabularDataModule, FileDataModule],
        "trainer": [Trainer],
        "run": [RunOptions],
        "run.early_stopping": [EarlyStoppingOptions],
    }
    text = command_help("fit")
    found = re.findall(r"--((?:model\.init_args|data\.init_args|trainer|run\.early_stopping|run)\.(\w+)) (\S+)", text)
    assert len(found) >= 20
    for dotted, name, shown in found:
        section = dotted.rsplit(".", 1)[0]
        parameters = {n: p for c in classes[section] for n, p in inspect.signature(c.__init__).parameters.items()}
        assert name in parameters, dotted
        default = parameters[name].default
        if shown.isupper() or "|" in shown or default is inspect.Parameter.empty:
            continue  # a placeholder (N, FILE) or a list of choices
        assert yaml.safe_load(shown) == default, (dotted, shown, default)


def test_unknown_command(capsys):
    assert run_cli("train", "-c", config("seed")) == 2
    assert "unknown command 'train'; allowed: fit, validate, test, predict" in capsys.readouterr().err


def test_console_script_prints_no_traceback():
    trainlab = Path(sys.executable).with_name("trainlab")
    done = subprocess.run(
        [trainlab, "fit", "-c", config("seed"), "--model.init_args.lr", "-1"], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "trainlab: error: model.init_args.lr=-1.0 is not allowed: a number > 0"
    )
