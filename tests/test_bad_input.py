"""Bad input: one line naming the key or file and what is allowed, exit code 2, no traceback, nothing written."""

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import QUIET, config, run_cli, run_dirs

CASES = {
    "unknown key": (["--model.init_args.learning_rate", "0.1"], "model.init_args: Option 'learning_rate'"),
    "unknown top-level key": (["--epochs", "3"], "unrecognized arguments: --epochs 3"),
    "zero learning rate": (["--model.init_args.lr", "0"], "model.init_args.lr=0.0 is not allowed: a number > 0"),
    "negative learning rate": (["--model.init_args.lr", "-0.01"], "model.init_args.lr=-0.01 is not allowed"),
    "no training split": (
        ["--data.init_args.val_fraction", "0.5", "--data.init_args.test_fraction", "0.5"],
        "data.init_args.val_fraction + test_fraction=1.0 is not allowed: less than 1",
    ),
    "n_informative > n_features": (
        ["--data.init_args.n_informative", "3"],
        "data.init_args.n_informative=3 is not allowed: an integer from 1 to n_features",
    ),
    "unknown optimizer": (
        ["--model.init_args.optimizer", "adagrad"],
        "model.init_args.optimizer: got 'adagrad'; allowed: 'sgd', 'adam', 'adamw', 'rmsprop'",
    ),
    "unknown activation": (["--model.init_args.activation", "swish"], "model.init_args.activation: got 'swish'"),
    "unknown generator": (["--data.init_args.generator", "spirals"], "data.init_args.generator: got 'spirals'"),
    "loss that does not fit the task": (
        ["--model.init_args.loss", "mse"],
        "model.init_args.loss='mse' is not allowed: for task binary: auto or bce",
    ),
    "bad type": (["--trainer.max_epochs", "many"], "trainer.max_epochs: Expected a int (got 'many')"),
    "unknown monitor": (["--run.monitor", "val/r2"], "run.monitor='val/r2' is not allowed: one of train/loss"),
    "trainer clipping": (
        ["--trainer.gradient_clip_val", "1.0"],
        "trainer.gradient_clip_val=1.0 is not allowed: null: trainlab clips in its own optimizer loop; "
        "set model.init_args.gradient_clip_val instead",
    ),
    "gradient accumulation": (["--trainer.accumulate_grad_batches", "4"], "trainer.accumulate_grad_batches=4"),
    "no logger": (["--trainer.logger", "false"], "trainer.logger=False is not allowed: a logger"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_config_values(case, capsys):
    args, message = CASES[case]
    assert run_cli("fit", "-c", config("seed"), *args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("trainlab: error: ")
    assert message in err[-1]
    assert not Path("lightning_logs").exists()


def test_bad_value_in_a_config_file(tmp_path, capsys):
    text = Path(config("seed")).read_text().replace("lr: 0.01", "lr: -1.0")
    (tmp_path / "bad.yaml").write_text(text)
    assert run_cli("fit", "-c", tmp_path / "bad.yaml") == 2
    assert "model.init_args.lr=-1.0 is not allowed" in capsys.readouterr().err


def test_unknown_key_in_a_config_file(tmp_path, capsys):
    text = Path(config("seed")).read_text().replace("lr: 0.01", "lr: 0.01\n    momentumm: 0.9")
    (tmp_path / "bad.yaml").write_text(text)
    assert run_cli("fit", "-c", tmp_path / "bad.yaml") == 2
    assert "model.init_args: Option 'momentumm' is not accepted" in capsys.readouterr().err


def test_missing_config_file(capsys):
    assert run_cli("fit", "-c", "nowhere.yaml") == 2
    err = capsys.readouterr().err
    assert err.startswith("trainlab: error: config: File does not exist:") and "nowhere.yaml" in err


def test_unknown_command(capsys):
    assert run_cli("train", "-c", config("seed")) == 2
    assert "unknown command 'train'; allowed: fit, validate, test, predict" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["test", "validate", "predict"])
def test_missing_checkpoint(command, capsys):
    assert run_cli(command, "-c", config("seed"), "--ckpt_path", "runs/nothing.ckpt") == 2
    assert "--ckpt_path='runs/nothing.ckpt': no such file" in capsys.readouterr().err


@pytest.mark.parametrize("content", [b"", b"this is not a checkpoint", b"PK\x03\x04 truncated zip"])
def test_file_that_is_not_a_checkpoint(content, tmp_path, capsys):
    (tmp_path / "broken.ckpt").write_bytes(content)
    assert run_cli("test", "-c", config("seed"), "--ckpt_path", tmp_path / "broken.ckpt") == 2
    err = capsys.readouterr().err
    assert "broken.ckpt" in err and "not a readable checkpoint" in err


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


@pytest.mark.parametrize("command", ["test", "validate", "predict"])
def test_evaluating_needs_a_checkpoint_file(command, capsys):
    assert run_cli(command, "-c", config("seed")) == 2
    assert f"--ckpt_path is required for {command}" in capsys.readouterr().err
    assert run_cli(command, "-c", config("seed"), "--ckpt_path", "last") == 2  # a word, not a file, here
    assert "--ckpt_path='last': no such file" in capsys.readouterr().err


def test_checkpoint_of_another_shape(capsys):
    assert run_cli("fit", "-c", config("seed"), "--trainer.max_epochs", "1", *QUIET) == 0
    (run,) = run_dirs("seed")
    assert run_cli("test", "-c", config("multiclass"), "--ckpt_path", run / "checkpoints" / "last.ckpt") == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "the checkpoint's model expects {'input_dim': 2, 'task': 'binary', 'num_classes': 2}" in err
    assert "'input_dim': 8, 'task': 'multiclass', 'num_classes': 4" in err


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


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model.init_args.scheduler", "step", "--model.init_args.step_size", "0"], "model.init_args.step_size=0"),
        (["--model.init_args.scheduler", "plateau", "--model.init_args.gamma", "1.5"], "model.init_args.gamma=1.5"),
        (["--model.init_args.cosine_epochs", "0"], "model.init_args.cosine_epochs=0"),
        (["--data.init_args.factor", "1.5"], "data.init_args.factor=1.5"),
        (["--data.init_args.n_clusters_per_class", "0"], "data.init_args.n_clusters_per_class=0"),
        (["--data.init_args.seed", "-1"], "data.init_args.seed=-1"),
        (
            [
                "--data.init_args.n_samples",
                "12",
                "--data.init_args.n_classes",
                "4",
                "--data.init_args.n_informative",
                "2",
                "--data.init_args.generator",
                "blobs",
            ],
            "data.init_args.val_fraction, test_fraction: 12 samples cannot be",
        ),
        (["--trainer.accelerator", "gpu"], "trainer: "),
    ],
)
def test_values_that_would_fail_later_fail_first(args, message, capsys):
    assert run_cli("fit", "-c", config("default"), *args, *QUIET) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("trainlab: error: ") and message in err[-1]


def test_a_truncated_real_checkpoint(tmp_path, capsys):
    assert run_cli("fit", "-c", config("seed"), "--trainer.max_epochs", "1", *QUIET) == 0
    (run,) = run_dirs("seed")
    data = (run / "checkpoints" / "last.ckpt").read_bytes()
    (tmp_path / "half.ckpt").write_bytes(data[: len(data) // 2])
    assert run_cli("predict", "-c", config("seed"), "--ckpt_path", tmp_path / "half.ckpt") == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("trainlab: error: --ckpt_path=") and "half.ckpt" in err and "not a readable checkpoint" in err
    assert len(run_dirs("seed")) == 1  # nothing new was written
