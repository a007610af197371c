"""Two CPU processes with DDP (gloo): disjoint shards of one permutation, one writer, loadable checkpoints."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import config, read_json, run_cli, run_dirs
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


def run_here(*args: str) -> None:
    """One process: in this one (no DDP launch needs a fresh Python)."""
    assert run_cli(*args, "--trainer.enable_progress_bar", "false", "--run.report", "false") == 0


def run_trainlab(*args: str) -> subprocess.CompletedProcess:
    """A DDP launch: its own console script, whose ranks Lightning starts by running that command again."""
    trainlab = Path(sys.executable).with_name("trainlab")
    done = subprocess.run(
        [trainlab, *args, "--trainer.enable_progress_bar", "false", "--run.report", "false"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


DDP = ["--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"]


def test_two_processes_at_the_same_global_batch_train_like_one():
    """Rank r takes every 2nd sample of the epoch's permutation, so 2 x 16 samples per step are exactly the
    32 that one process takes: the fits differ only by floating-point summation order."""
    common = ["fit", "-c", config("default"), "--trainer.max_epochs", "3", "--model.init_args.dropout", "0"]
    run_here(*common, "--data.init_args.batch_size", "32")
    run_trainlab(*common, "--data.init_args.batch_size", "16", *DDP)
    single, double = (read_json(run / "metrics.json") for run in run_dirs("default"))
    assert single.keys() == double.keys()
    for key in single:
        assert double[key] == pytest.approx(single[key], abs=2e-3), key


def test_test_and_predict_under_ddp_match_one_process():
    run_here("fit", "-c", config("default"), "--trainer.max_epochs", "2", "--run.test_after_fit", "false")
    (fit_run,) = run_dirs("default")
    ckpt = str(fit_run / "checkpoints" / "last.ckpt")
    for command in ("test", "predict"):
        run_here(command, "-c", config("default"), "--ckpt_path", ckpt)
        run_trainlab(command, "-c", config("default"), "--ckpt_path", ckpt, *DDP)
    test_one, test_two = sorted((fit_run / "test").glob("version_*"))  # inside the fit, in the order they ran
    predict_one, predict_two = sorted((fit_run / "predict").glob("version_*"))
    assert read_json(test_two / "metrics.json") == pytest.approx(read_json(test_one / "metrics.json"), abs=1e-6)
    assert (predict_two / "predictions.csv").read_text() == (predict_one / "predictions.csv").read_text()
