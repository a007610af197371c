"""Two CPU processes with DDP (gloo): disjoint shards of one permutation, one writer, loadable checkpoints."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import config, read_json, run_dirs
from trainlab.data import SyntheticDataModule

pytestmark = pytest.mark.slow


def test_ddp_fit_shards_the_training_split_and_rank_zero_writes(tmp_path):
    trainlab = Path(sys.executable).with_name("trainlab")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    args = [
        trainlab,
        "fit",
        "-c",
        config("default"),
        "--trainer.accelerator",
        "cpu",
        "--trainer.devices",
        "2",
        "--trainer.strategy",
        "ddp",
        "--trainer.max_epochs",
        "2",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.callbacks+=ddp_probe.ShardRecorder",
    ]
    done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    data = SyntheticDataModule(**read_config_data())
    data.setup()
    X_train = data.splits["train"][0]
    for epoch in range(2):
        shards = [torch.load(tmp_path / "shards" / f"rank{r}_epoch{epoch}.pt") for r in range(2)]
        assert len(shards[0]) == len(shards[1]) == len(X_train) // 2  # 1200 rows: an even split
        both = torch.cat(shards)
        assert len(torch.unique(both, dim=0)) == len(X_train)  # disjoint, and no sample lost
        assert torch.equal(torch.unique(both, dim=0), torch.unique(X_train, dim=0))

    (run,) = run_dirs("default")  # the test runs in tmp_path (conftest), where the subprocess ran
    metrics = read_json(run / "metrics.json")
    assert set(metrics) >= {"test/accuracy", "test/auroc", "test/loss"}
    assert not list(run.glob(".*.tmp"))  # atomic writes left nothing behind
    from trainlab.models import MLPModule

    module = MLPModule.load_from_checkpoint(run / "checkpoints" / "last.ckpt", map_location="cpu")
    assert module.hparams.input_dim == 10


def read_config_data() -> dict:
    import yaml

    return yaml.safe_load(Path(config("default")).read_text())["data"]["init_args"]
