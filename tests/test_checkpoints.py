"""Checkpoint files: a missing, damaged, altered or mismatched one is refused in one line before Lightning
loads it (exit 2, nothing written); checkpoints are written whole or not at all."""

import os
import pickle
from pathlib import Path

import pytest

from tests.helpers import QUIET, config, run_cli, run_dirs


@pytest.mark.parametrize("command", ["test", "validate", "predict"])
def test_missing_checkpoint(command, capsys):
    assert run_cli(command, "-c", config("seed"), "--ckpt_path", "runs/nothing.ckpt") == 2
    assert "--ckpt_path='runs/nothing.ckpt': no such file" in capsys.readouterr().err


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", ""),
        (b"this is not a checkpoint", "not a file torch.save wrote"),
        (b"PK\x03\x04 truncated zip", ""),
        (pickle.dumps({"state_dict": {}, "hook": print}), "holds Python objects besides tensors and plain values"),
    ],
)
def test_file_that_is_not_a_checkpoint(content, reason, tmp_path, capsys):
    (tmp_path / "broken.ckpt").write_bytes(content)
    assert run_cli("test", "-c", config("seed"), "--ckpt_path", tmp_path / "broken.ckpt") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "broken.ckpt" in err[0] and "not a readable checkpoint" in err[0] and reason in err[0]
    assert "weights_only" not in err[0]  # torch's advice to load it with weights_only=False would run its code


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


def test_a_truncated_real_checkpoint(tmp_path, capsys):
    assert run_cli("fit", "-c", config("seed"), "--trainer.max_epochs", "1", *QUIET) == 0
    (run,) = run_dirs("seed")
    data = (run / "checkpoints" / "last.ckpt").read_bytes()
    (tmp_path / "half.ckpt").write_bytes(data[: len(data) // 2])
    assert run_cli("predict", "-c", config("seed"), "--ckpt_path", tmp_path / "half.ckpt") == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("trainlab: error: --ckpt_path=") and "half.ckpt" in err and "not a readable checkpoint" in err
    assert len(run_dirs("seed")) == 1  # nothing new was written


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
def test_a_checkpoint_altered_or_from_another_version_gets_one_line(case, trained_on_a_file, capsys):
    """Each damage once, by test or predict in turn (both check a checkpoint the same way)."""
    import torch

    config_file, checkpoint, _ = trained_on_a_file
    change, message = CHECKPOINT_DAMAGE[case]
    command = ["test", "predict"][list(CHECKPOINT_DAMAGE).index(case) % 2]
    torch.save(_altered(checkpoint, change), "altered.ckpt")
    assert run_cli(command, "-c", config_file, "--ckpt_path", "altered.ckpt", *QUIET) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines()[-1].startswith("trainlab: error: ") and message in err.splitlines()[-1], err
    assert "Traceback" not in err
    assert not list(Path().glob("lightning_logs/*/version_*"))  # nothing left behind


def test_a_resume_keeps_the_checkpoints_model_or_refuses(trained_on_a_file, capsys):
    config_file, _, checkpoint = trained_on_a_file
    args = ["--ckpt_path", checkpoint, "--trainer.max_epochs", "2", *QUIET]
    assert run_cli("fit", "-c", config_file, *args, "--model.init_args.hidden_dims", "[32]") == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--model.init_args.hidden_dims=[32] differs from the checkpoint's [8]" in err
    assert run_cli("fit", "-c", config_file, *args, "--model.init_args.hidden_dims", "[8]") == 0  # the same: fine


def test_resuming_needs_a_checkpoint_file(capsys):
    assert run_cli("fit", "-c", config("seed"), "--ckpt_path", "last", *QUIET) == 2
    assert "--ckpt_path='last': no such file" in capsys.readouterr().err


def test_checkpoints_are_written_whole_or_not_at_all(tmp_path, monkeypatch):
    import torch

    from trainlab.checkpoints import LocalCheckpointIO

    path = tmp_path / "checkpoints" / "last.ckpt"
    writer = LocalCheckpointIO()
    writer.save_checkpoint({"epoch": 1, "weights": torch.arange(4.0)}, path)  # creates the folder
    loaded = torch.load(path, weights_only=True)
    assert loaded["epoch"] == 1 and torch.equal(loaded["weights"], torch.arange(4.0))

    def crash(*args):
        raise KeyboardInterrupt  # killed between writing the new file and putting it in place

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        writer.save_checkpoint({"epoch": 2, "weights": torch.zeros(4)}, path)
    assert torch.load(path, weights_only=True)["epoch"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]
