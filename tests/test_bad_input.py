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
    "unknown monitor": (
        ["--run.monitor", "val/r2"],
        "run.monitor='val/r2' is not allowed: null or one of train/loss, test/loss",
    ),
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
    assert err.startswith("trainlab: error: -c nowhere.yaml: no such file")


@pytest.mark.parametrize(
    "content, message",
    [
        ("model: [\n", "bad.yaml, line 2: not valid YAML"),
        ("- 1\n", "bad.yaml: holds a list; a config is a mapping of sections"),
        ("modle: {}\n", "bad.yaml: unknown section 'modle'; did you mean 'model'?"),
        ("base: seed.yaml\nspace: {}\n", "bad.yaml is a tune config (it has base/space); run it with: trainlab tune"),
    ],
)
def test_a_broken_config_file_is_named_before_lightning_is_imported(content, message):
    """These answer at once: the check runs before the seconds-long Lightning import."""
    Path("bad.yaml").write_text(content)
    code = "import sys; from trainlab.cli import main; main(sys.argv[1:])"
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, "fit", "-c", "bad.yaml"], capture_output=True, text=True
    )
    assert done.returncode == 2 and message in done.stderr and "lightning" not in done.stderr


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


@pytest.fixture(scope="module")
def trained_on_a_file(tmp_path_factory):
    """A model trained one epoch on a small CSV: (its config, its last.ckpt), in a folder of their own."""
    import numpy as np
    import torch
    import yaml

    import trainlab

    folder = tmp_path_factory.mktemp("trained")
    x = np.random.default_rng(0).normal(size=(80, 2))
    rows = "".join(f"{a:.4f},{b:.4f},{'yes' if a + b > 0 else 'no'}\n" for a, b in x)
    (folder / "train.csv").write_text("x1,x2,label\n" + rows)
    cfg = {
        "trainer": {"max_epochs": 1, "logger": {"class_path": "lightning.pytorch.loggers.TensorBoardLogger"}},
        "model": {"class_path": "trainlab.models.MLPModule", "init_args": {"hidden_dims": [8]}},
        "data": {
            "class_path": "trainlab.data.FileDataModule",
            "init_args": {"path": str(folder / "train.csv"), "target": "label"},
        },
        "run": {"report": False},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg))
    overrides = {"trainer.logger.init_args.save_dir": str(folder / "runs"), "trainer.enable_progress_bar": False}
    checkpoint = trainlab.fit(folder / "config.yaml", **overrides).last_checkpoint
    return folder / "config.yaml", torch.load(checkpoint, weights_only=True), checkpoint


def _altered(checkpoint: dict, change) -> dict:
    import copy

    altered = copy.deepcopy(checkpoint)
    change(altered)
    return altered


CHECKPOINT_DAMAGE = {
    "hyperparameters that do not match the weights": (
        lambda c: c["hyper_parameters"].update(hidden_dims=[64, 32]),
        "its weights do not fit its model's hyperparameters (net.flat:",
    ),
    "weights missing": (lambda c: c["state_dict"].clear(), ": missing in the file"),
    "a newer Lightning": (lambda c: c.update({"pytorch-lightning_version": "9.0.0"}), "written by Lightning 9.0.0"),
    "no Lightning version": (lambda c: c.pop("pytorch-lightning_version"), "its Lightning version is None"),
    "an extra hyperparameter": (
        lambda c: c["hyper_parameters"].update(width=3),
        "hyperparameter(s) width that this trainlab's model does not take",
    ),
    "hyper_parameters not a mapping": (
        lambda c: c.update(hyper_parameters=[1, 2]),
        "its hyper_parameters or state_dict is not a mapping",
    ),
    "encoder state without levels": (
        lambda c: c["FileDataModule"]["encoder"].pop("levels"),
        "the checkpoint's column encoder lacks levels",
    ),
}


@pytest.mark.parametrize("case", CHECKPOINT_DAMAGE)
@pytest.mark.parametrize("command", ["test", "predict"])
def test_a_checkpoint_altered_or_from_another_version_gets_one_line(case, command, trained_on_a_file, capsys):
    import torch

    config_file, checkpoint, _ = trained_on_a_file
    change, message = CHECKPOINT_DAMAGE[case]
    torch.save(_altered(checkpoint, change), "altered.ckpt")
    assert run_cli(command, "-c", config_file, "--ckpt_path", "altered.ckpt", *QUIET) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines()[-1].startswith("trainlab: error: ") and message in err.splitlines()[-1], err
    assert "Traceback" not in err
    assert not list(Path().glob("lightning_logs/*/version_*"))  # nothing left behind


@pytest.mark.parametrize(
    "content, message",
    [
        ("x1\n0.5\n", "no column 'x2', which the model was trained on"),
        ("x1,x2\n", "the file has a header but no rows"),
        ("", "the file is empty"),
    ],
)
def test_predicting_a_bad_file_writes_nothing(content, message, trained_on_a_file, capsys):
    config_file, _, checkpoint = trained_on_a_file
    Path("new.csv").write_text(content)
    args = ["--ckpt_path", checkpoint, "--data.init_args.predict_path", "new.csv"]
    assert run_cli("predict", "-c", config_file, *args, *QUIET) == 2
    assert message in capsys.readouterr().err
    assert not list(Path().glob("lightning_logs/*/version_*"))


def test_a_resume_keeps_the_checkpoints_model_or_refuses(trained_on_a_file, capsys):
    config_file, _, checkpoint = trained_on_a_file
    args = ["--ckpt_path", checkpoint, "--trainer.max_epochs", "2", *QUIET]
    assert run_cli("fit", "-c", config_file, *args, "--model.init_args.hidden_dims", "[32]") == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--model.init_args.hidden_dims=[32] differs from the checkpoint's [8]" in err
    assert run_cli("fit", "-c", config_file, *args, "--model.init_args.hidden_dims", "[8]") == 0  # the same: fine


def test_a_logger_version_that_holds_a_run_is_refused(capsys):
    assert run_cli("fit", "-c", config("seed"), "--trainer.max_epochs", "1", *QUIET) == 0
    (run,) = run_dirs("seed")
    before = sorted(p.name for p in run.iterdir())
    args = ["--trainer.max_epochs", "1", "--trainer.logger.init_args.version", "0", *QUIET]
    assert run_cli("fit", "-c", config("seed"), *args) == 2
    err = capsys.readouterr().err
    assert "trainer.logger.init_args.version=0:" in err and "already holds a run" in err
    assert sorted(p.name for p in run.iterdir()) == before  # no events file added to the earlier run
