"""The trainlab command end to end: real Lightning fits, tests and predictions on every config."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from sklearn import metrics as skm

from conftest import QUIET, REPO, config, read_json, run_cli, run_dirs
from trainlab import tasks

SHORT = ["--trainer.max_epochs", "3", *QUIET]
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


def test_validate_logs_every_validation_metric(capsys):
    """configs/seed.yaml thins per-epoch validation logging inside fit; `validate` logs everything, under the
    name of the split it evaluates (seed.yaml has no validation split: the test split)."""
    assert run_cli("fit", "-c", config("seed"), *SHORT) == 0
    (fit_run,) = run_dirs("seed")
    assert run_cli("validate", "-c", config("seed"), "--ckpt_path", fit_run / "checkpoints" / "last.ckpt", *QUIET) == 0
    validate_run = fit_run / "validate" / "version_0"
    logged = set(scalars(validate_run))
    assert {"test/loss", "test/accuracy", "test/precision", "test/recall", "test/f1", "test/auroc"} <= logged
    assert not [key for key in logged if key.startswith("val/")]


def test_saved_config_reruns_the_same_run():
    assert run_cli("fit", "-c", config("seed"), *SHORT) == 0
    (first,) = run_dirs("seed")
    saved = yaml.safe_load((first / "config.yaml").read_text())
    assert saved["model"]["init_args"]["hidden_dims"] == [10]
    assert saved["data"]["init_args"]["stratify"] is False
    assert saved["run"]["test_ckpt"] == "last"
    assert run_cli("fit", "-c", first / "config.yaml") == 0
    _, second = run_dirs("seed")
    assert read_json(second / "metrics.json") == read_json(first / "metrics.json")


def test_a_dump_without_its_second_validation_writes_what_a_validated_dump_writes():
    """TrainlabParser skips jsonargparse's check on dump (parse_args made it): the text must not change."""
    from lightning.pytorch.cli import LightningArgumentParser

    from trainlab.lightning_cli import build_config

    cli = build_config(Path(config("regression")), {"model.init_args.lr": 0.05, "trainer.max_epochs": 2}, "test")
    for options in ({}, {"skip_link_targets": False, "skip_none": False}):
        validated = LightningArgumentParser.dump(cli.parser, cli.config, **options)
        assert cli.parser.dump(cli.config, **options) == validated
        assert "lr: 0.05" in validated


def test_a_commands_parser_is_built_once_per_process_and_a_reused_one_runs_like_a_new_one():
    from trainlab.lightning_cli import TrainlabCLI

    TrainlabCLI._parsers.clear()
    assert run_cli("fit", "-c", config("seed"), *SHORT) == 0
    assert run_cli("fit", "-c", config("regression"), "--model.init_args.lr", "0.02", *SHORT) == 0  # reused
    assert [key[1] for key in TrainlabCLI._parsers] == ["fit"]
    TrainlabCLI._parsers.clear()
    assert run_cli("fit", "-c", config("regression"), "--model.init_args.lr", "0.02", *SHORT) == 0  # new
    reused, new = run_dirs("regression")
    assert (reused / "config.yaml").read_text() == (new / "config.yaml").read_text()
    assert read_json(reused / "metrics.json") == read_json(new / "metrics.json")
    assert yaml.safe_load((reused / "config.yaml").read_text())["model"]["init_args"]["lr"] == 0.02


def test_print_config_shows_defaults_and_overrides(capsys):
    assert run_cli("fit", "-c", config("seed"), "--model.init_args.lr", "0.1", "--print_config") == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["init_args"]["lr"] == 0.1
    assert printed["model"]["init_args"]["weight_decay"] == 0.0  # a default from the signature
    assert printed["run"]["monitor"] is None  # the held-out loss: test/loss here (seed.yaml has no validation split)
    assert not Path("lightning_logs").exists()  # printing runs nothing


def test_early_stopping_stops_and_the_summary_line_is_printed(capsys):
    args = [
        "--trainer.max_epochs",
        "200",
        "--run.early_stopping.patience",
        "2",
        "--run.summary_every",
        "1",
        "--model.init_args.lr",
        "0.05",
        *QUIET,
    ]
    assert run_cli("fit", "-c", config("default"), *args) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("Epoch [")]
    assert 3 <= len(lines) < 200
    assert lines[0].startswith("Epoch [1/200], train/loss ") and "val/loss" in lines[0] and "val/accuracy" in lines[0]
    (notice,) = [line for line in out.splitlines() if line.startswith("Early stopping")]  # the stop says so
    assert notice.startswith(f"Early stopping at epoch {len(lines)}: val/loss did not improve for 2 epochs; best ")
    assert notice.endswith(f"at epoch {len(lines) - 2}")


def test_best_checkpoint_follows_the_monitored_metric_and_mode():
    args = ["--trainer.max_epochs", "6", "--run.monitor", "val/accuracy", "--model.init_args.lr", "0.0005", *QUIET]
    assert run_cli("fit", "-c", config("default"), *args) == 0
    (run,) = run_dirs("default")
    logged = scalars(run)
    per_epoch = logged["val/accuracy"]
    assert len(per_epoch) == 6
    assert {"train/loss", "val/loss", "val/f1", "val/auroc"} <= set(logged)
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    (state,) = [v for k, v in checkpoint["callbacks"].items() if k.startswith("BestCheckpoint")]
    assert state["monitor"] == "val/accuracy"
    assert float(state["best_model_score"]) == pytest.approx(max(per_epoch))  # mode auto: max for accuracy
    best_epoch = per_epoch.index(max(per_epoch)) + 1  # counted from 1, as the summary lines and report count
    assert Path(state["best_model_path"]).name == f"best-epoch{best_epoch:03d}.ckpt"


def scalars(run: Path) -> dict[str, list[float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run)).Reload()
    return {tag: [e.value for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_full_validation_metrics_every_n_epochs_and_the_essentials_every_epoch():
    args = ["--trainer.max_epochs", "6", "--run.val_metrics_every", "3", "--run.monitor", "val/auroc", *QUIET]
    assert run_cli("fit", "-c", config("default"), *args) == 0
    (run,) = run_dirs("default")
    logged = {tag: len(values) for tag, values in scalars(run).items()}
    assert logged["train/loss"] == logged["val/loss"] == 6
    assert logged["val/accuracy"] == 6  # the headline, for the summary line
    assert logged["val/auroc"] == 6  # the monitored metric, for checkpoints and early stopping
    assert logged["val/f1"] == logged["val/precision"] == logged["val/recall"] == 2  # epochs 3 and 6


def test_progress_bar_counts_epochs_and_summary_lines_print_above_it(capsys):
    args = ["--trainer.max_epochs", "4", "--run.summary_every", "2", "--trainer.enable_model_summary", "false"]
    assert run_cli("fit", "-c", config("seed"), *args) == 0
    out = capsys.readouterr().out
    assert "Training: 100%" in out and "4/4" in out and "epoch" in out
    assert "Epoch [2/4], train/loss" in out and "Epoch [4/4], train/loss" in out
    assert "Testing" in out  # the test after the fit has a bar over batches


def test_fit_without_checkpointing_tests_the_last_weights():
    args = ["--trainer.enable_checkpointing", "false", "--run.test_ckpt", "best", *SHORT]
    assert run_cli("fit", "-c", config("default"), *args) == 0
    assert run_cli("fit", "-c", config("default"), "--run.test_ckpt", "last", *SHORT) == 0
    without, with_last = run_dirs("default")
    assert not (without / "checkpoints").exists()
    assert read_json(without / "metrics.json") == read_json(with_last / "metrics.json")  # same seed, last weights


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


def test_checkpoints_are_written_by_trainlab_unless_the_config_brings_its_own_writer():
    from lightning.pytorch.plugins.io import AsyncCheckpointIO

    from trainlab.checkpoints import LocalCheckpointIO
    from trainlab.lightning_cli import run_lightning_cli

    base = ["-c", config("seed"), *QUIET]  # no command: the classes are built, nothing runs
    assert type(run_lightning_cli(base, run=False).trainer.strategy.checkpoint_io) is LocalCheckpointIO
    own = ["--trainer.plugins", "lightning.pytorch.plugins.io.AsyncCheckpointIO"]
    assert type(run_lightning_cli(base + own, run=False).trainer.strategy.checkpoint_io) is AsyncCheckpointIO
    # a strategy that names its own writer is built as before (no second writer through the plugins)
    writer = {"class_path": "lightning.pytorch.plugins.io.AsyncCheckpointIO"}
    strategy = {
        "class_path": "lightning.pytorch.strategies.SingleDeviceStrategy",
        "init_args": {"device": "cpu", "checkpoint_io": writer},
    }
    cli = run_lightning_cli(base + ["--trainer.strategy", json.dumps(strategy)], run=False)
    assert type(cli.trainer.strategy.checkpoint_io) is AsyncCheckpointIO


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


@pytest.mark.slow
def test_evaluations_of_a_fits_checkpoint_write_inside_that_fit(capsys):
    """lightning_logs/<name>/version_N stay fits: `trainlab report lightning_logs/<name>/version_*` reports them."""
    args = ["-c", config("seed"), "--trainer.max_epochs", "2", *QUIET]
    assert run_cli("fit", *args) == 0
    (run,) = run_dirs("seed")
    for command in ("test", "validate", "predict", "test"):
        assert run_cli(command, *args, "--ckpt_path", run / "checkpoints" / "last.ckpt") == 0
    assert run_dirs("seed") == [run]
    assert (run / "test" / "version_1" / "metrics.json").exists() and (run / "predict" / "version_0").is_dir()
    assert run_cli("report", *run_dirs("seed")) == 0


@pytest.mark.parametrize(
    "args, expected",
    [
        (
            ["--model.init_args.hiden_dims", "[3]"],
            "model.init_args: Option 'hiden_dims' is not accepted; did you mean 'hidden_dims'?",
        ),
        (
            ["--data.init_args.n_sample", "3"],
            "data.init_args: Option 'n_sample' is not accepted; did you mean 'n_samples'?",
        ),
        (["--run.monitr", "val/loss"], "run: Option 'monitr' is not accepted; did you mean 'monitor'?"),
        (["--trainer.max_epoch=3"], "trainer: Option 'max_epoch' is not accepted; did you mean 'max_epochs'?"),
    ],
)
def test_a_misspelt_key_gets_a_did_you_mean(args, expected, capsys):
    assert run_cli("fit", "-c", config("seed"), *args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and expected in err


EARLY = [
    (["--model.init_args.lr", "-0.1"], "model.init_args.lr=-0.1 is not allowed: a number > 0"),
    (["--model.init_args.optimizer=adagrad"], "model.init_args.optimizer: got 'adagrad'; allowed: 'sgd', 'adam'"),
    (["--model.init_args.hidden_dims", "[16, 0]"], "model.init_args.hidden_dims=[16, 0] is not allowed: a list of"),
    (["--data.init_args.batch_size", "0"], "data.init_args.batch_size=0 is not allowed: an integer >= 1"),
    (["--run.summary_every", "-1"], "run.summary_every=-1 is not allowed: an integer >= 0"),
    (["-c", "dropout.yaml"], "model.init_args.dropout=1.5 is not allowed: a probability in [0, 1)"),  # from a file
    (["--model.init_args.hiden_dims", "[32]"], "model.init_args: Option 'hiden_dims' is not accepted; did you mean"),
    (
        ["--data.init_args.n_sample", "50"],
        "data.init_args: Option 'n_sample' is not accepted; did you mean 'n_samples'",
    ),
    (["--data.init_args.zzz", "1"], "data.init_args: Option 'zzz' is not accepted; `--print_config` shows the keys"),
    (["--model.init_args.lr", "abc"], "model.init_args.lr: Expected a float. Got value: abc"),
    (["--run.summary_every", "often"], "run.summary_every: Expected a int. Got value: often"),
    (
        ["--data.init_args.val_fraction", "0.5", "--data.init_args.test_fraction", "0.6"],
        "data.init_args.val_fraction + test_fraction=1.1 is not allowed: less than 1",
    ),
    (["--model.init_args.nesterov", "true"], "model.init_args.nesterov=True is not allowed: true only with optimizer"),
    (
        ["--model.init_args.scheduler", "plateau", "--model.init_args.gamma", "1.5"],
        "model.init_args.gamma=1.5 is not allowed: a factor in (0, 1) for plateau",
    ),
]


def test_the_early_check_reads_each_classs_keys_as_its_signature_gives_them():
    import inspect

    from trainlab.data import BundledDataModule, FileDataModule, SyntheticDataModule, TabularDataModule
    from trainlab.early_checks import CLASS_FILES, init_defaults, init_keys
    from trainlab.models import MLPModule

    classes = [MLPModule, TabularDataModule, SyntheticDataModule, FileDataModule, BundledDataModule]
    assert sorted(CLASS_FILES) == sorted(c.__name__ for c in classes)
    for cls in classes:
        keys = set()
        for klass in cls.__mro__:  # a **kwargs passed on to the base brings the base's arguments
            parameters = inspect.signature(klass.__init__).parameters
            keys |= {
                n for n, p in parameters.items() if n != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
            }
            if not any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
                break
        assert init_keys(cls.__name__) == keys, cls.__name__
        defaults = init_defaults(cls.__name__)  # the literal ones, which the joint rules fill in
        for name, value in defaults.items():
            assert value == next(
                inspect.signature(k.__init__).parameters[name].default
                for k in cls.__mro__
                if name in inspect.signature(k.__init__).parameters
            ), (cls.__name__, name)
        assert {"val_fraction", "test_fraction"} <= set(defaults) or cls.__name__ == "MLPModule"


# Runs each argument list through the console's main() in one process; prints each exit code and last stderr
# line, and whether Lightning was imported by then.
MAIN_EACH = """
import contextlib, io, json, sys
from trainlab.cli import main
answers = []
for args in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            main(args)
            code = 0
        except SystemExit as stop:
            code = stop.code
    answers.append([code, err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else ""])
print(json.dumps({"answers": answers, "lightning": any(m.startswith("lightning") for m in sys.modules)}))
"""


def main_in_one_process(cases: list[list[str]]) -> dict:
    done = subprocess.run([sys.executable, "-c", MAIN_EACH, json.dumps(cases)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_bad_values_are_answered_before_lightning_is_imported_in_the_full_parsers_words():
    """The early check (trainlab.early_checks) and the classes share trainlab.rules: the same message,
    without the seconds Lightning's import costs; a class of the user's own is left to the full parser."""
    from trainlab.early_checks import check_early
    from trainlab.errors import as_user_error
    from trainlab.lightning_cli import run_lightning_cli

    Path("dropout.yaml").write_text(yaml.safe_dump({"model": {"init_args": {"dropout": 1.5}}}))
    cases = [["fit", "-c", config("seed"), *extra] for extra, _ in EARLY]
    early = main_in_one_process(cases)
    assert not early["lightning"]  # every one answered before importing Lightning
    for args, (_, expected), (code, error) in zip(cases, EARLY, early["answers"], strict=True):
        assert code == 2 and error == f"trainlab: error: {error.split(': ', 2)[2]}" and expected in error, error
        with pytest.raises(Exception) as full:  # the full path, which checks every value with the classes
            run_lightning_cli(args)
        assert str(as_user_error(full.value)) == error.removeprefix("trainlab: error: ")
    for fine in (
        ["--model.init_args.lr", "1e-3"],
        ["--model.init_args.gradient_clip_val", "null"],
        ["--run.threads=2"],
    ):
        assert check_early(["fit", "-c", config("seed"), *fine]) is None  # what the parser takes passes
    own = ["fit", "-c", config("seed"), "--model", "mypackage.MyModel", "--model.init_args.lr", "-1"]
    assert check_early(own) is None  # not trainlab's class: left to the full parser, which refuses it
    with pytest.raises(Exception, match="mypackage"):
        run_lightning_cli(own)


TRAINER_EARLY = [  # (arguments, the early answer)
    (["--trainer.max_epochz", "5"], "trainer: Option 'max_epochz' is not accepted; did you mean 'max_epochs'?"),
    (["--trainer.max_epoch=5"], "trainer: Option 'max_epoch' is not accepted; did you mean 'max_epochs'?"),
    (["-c", "typo.yaml"], "trainer: Option 'max_epoch' is not accepted; did you mean 'max_epochs'?"),
    (["--trainer.gradient_clip_val", "0.5"], "trainer.gradient_clip_val=0.5 is not allowed: null: trainlab clips"),
    (["--trainer.accumulate_grad_batches", "4"], "trainer.accumulate_grad_batches=4 is not allowed: 1: for"),
    (["--trainer.max_epochs", "many"], "trainer.max_epochs: Expected a int (got 'many')"),
    (["--trainer.max_epochs", "2.5"], "trainer.max_epochs: Expected a int (got '2.5')"),
    (["-c", "word.yaml"], "trainer.enable_progress_bar: Expected a bool (got 'maybe')"),
    (["--trainer.num_nodes", "x"], "trainer.num_nodes: Expected a int. Got value: x"),
    (["--trainer.max_steps", "null"], "trainer.max_steps: Expected a int. Got value: None"),
]


def test_trainer_keys_and_values_are_checked_early_and_abbreviations_are_refused_by_both_checks():
    """The Trainer's keys and annotations are read from Lightning's source (not imported): a misspelt or
    abbreviated key, a word for a number or a flag, and the options trainlab replaces are answered before the
    import; the full parser refuses the same ones (no abbreviation is expanded) in the same words."""
    import inspect

    from lightning.pytorch import Trainer

    from trainlab.early_checks import check_early, trainer_keys
    from trainlab.errors import as_user_error
    from trainlab.lightning_cli import run_lightning_cli

    parameters = inspect.signature(Trainer.__init__).parameters
    assert set(trainer_keys()) == set(parameters) - {"self"}
    assert trainer_keys()["max_epochs"] == "Optional[int]" and parameters["max_epochs"].annotation == int | None
    Path("typo.yaml").write_text("trainer:\n  max_epoch: 5\n")
    Path("word.yaml").write_text("trainer:\n  enable_progress_bar: maybe\n")
    code = "import sys; from trainlab.cli import main; main(sys.argv[1:])"
    for extra, expected in TRAINER_EARLY:
        args = ["fit", "-c", config("seed"), *extra]
        early = check_early(args)
        assert early is not None and expected in early
        with pytest.raises(Exception) as full:
            run_lightning_cli(args)
        words = str(as_user_error(full.value))
        assert words == early
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, "fit", "-c", config("seed"), "-c", "typo.yaml"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and TRAINER_EARLY[2][1] in done.stderr and "lightning" not in done.stderr
    for fine in (["--trainer.max_epochs", "3"], ["--trainer.callbacks+=lightning.pytorch.callbacks.Timer"]):
        assert check_early(["fit", "-c", config("seed"), *fine]) is None


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


def test_the_shipped_configs_are_the_packages_own():
    """configs/ links to the package's copy, so an installed trainlab (not editable) has them too."""
    import trainlab

    shipped = sorted(p.relative_to(trainlab.CONFIGS) for p in trainlab.CONFIGS.rglob("*.yaml"))
    assert Path("seed.yaml") in shipped and Path("tune/lr_challenge.yaml") in shipped
    assert (REPO / "configs").resolve() == trainlab.CONFIGS.resolve()
