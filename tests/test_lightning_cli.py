"""trainlab's LightningCLI: the saved config reruns its run, the parser is built once, evaluations write
inside the fit, the checkpoint writer, what a fit's test tests, and the run options it refuses."""

import json
from pathlib import Path

import pytest
import yaml

from tests.helpers import QUIET, SHORT, config, read_json, run_cli, run_dirs


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


def test_fit_without_checkpointing_tests_the_last_weights():
    args = ["--trainer.enable_checkpointing", "false", "--run.test_ckpt", "best", *SHORT]
    assert run_cli("fit", "-c", config("default"), *args) == 0
    assert run_cli("fit", "-c", config("default"), "--run.test_ckpt", "last", *SHORT) == 0
    without, with_last = run_dirs("default")
    assert not (without / "checkpoints").exists()
    assert read_json(without / "metrics.json") == read_json(with_last / "metrics.json")  # same seed, last weights


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
    "args, message",
    [
        (
            ["--run.test_ckpt", "best"],
            "run.test_ckpt='best' is not allowed: last: best with data.init_args.val_fraction 0",
        ),
        (["--run.early_stopping.patience", "3"], "run.early_stopping=EarlyStoppingOptions(patience=3"),
        (["--model.init_args.scheduler", "plateau"], "model.init_args.scheduler='plateau' is not allowed"),
        (["--data.init_args.predict_split", "val"], "data.init_args.predict_split='val' is not allowed"),
    ],
)
def test_no_model_selection_on_the_test_split(args, message, capsys):
    """configs/seed.yaml has no validation split (val_fraction 0): choices on it would leak the test split."""
    assert run_cli("fit", "-c", config("seed"), *args) == 2
    assert message in capsys.readouterr().err


def test_a_logger_version_that_holds_a_run_is_refused(capsys):
    assert run_cli("fit", "-c", config("seed"), "--trainer.max_epochs", "1", *QUIET) == 0
    (run,) = run_dirs("seed")
    before = sorted(p.name for p in run.iterdir())
    args = ["--trainer.max_epochs", "1", "--trainer.logger.init_args.version", "0", *QUIET]
    assert run_cli("fit", "-c", config("seed"), *args) == 2
    err = capsys.readouterr().err
    assert "trainer.logger.init_args.version=0:" in err and "already holds a run" in err
    assert sorted(p.name for p in run.iterdir()) == before  # no events file added to the earlier run


def test_a_mode_against_the_metric_is_refused(capsys):
    assert run_cli("fit", "-c", config("default"), "--run.monitor", "val/accuracy", "--run.mode", "min") == 2
    assert (
        "run.mode='min' is not allowed: auto or max: val/accuracy is better when it is higher"
        in capsys.readouterr().err
    )
