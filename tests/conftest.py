"""Shared fixtures: every test runs in its own temporary directory, so runs land in tmp lightning_logs/; a model
trained on a small CSV file (test_checkpoints.py, data/test_files.py). The helpers the tests import (run_cli,
config, run_dirs, fork_trainlab, ...) are in tests/helpers.py."""

import pytest


def pytest_configure(config):
    """Import Lightning before any test: its log handler keeps the stderr of the moment it is imported, which
    must not be a test's captured stderr (closed when that test ends). Not in pytest-xdist's controller, which
    runs no test: there it would only cost a core 5 s while the workers start."""
    controller = config.getoption("numprocesses", None) and not hasattr(config, "workerinput")
    if not controller:
        import lightning.pytorch  # noqa: F401


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


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
