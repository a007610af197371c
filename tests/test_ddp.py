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


def test_ddp_fit_shards_the_training_split_trains_like_one_process_and_tests_like_it(tmp_path):
    """One DDP fit (two ranks, each 16 samples per step) and one single-process fit (32 per step):
    - each epoch the ranks take disjoint halves of the training split and together all of it;
    - rank r takes every 2nd sample of the epoch's permutation, so the fits differ only by floating-point
      summation order;
    - the test after the DDP fit gives the metrics a single process gets from the same checkpoint;
    - rank zero alone writes: atomic files, a checkpoint that loads."""
    common = ["fit", "-c", config("default"), "--trainer.max_epochs", "2", "--model.init_args.dropout", "0"]
    common += ["--run.test_ckpt", "last"]
    run_here(*common, "--data.init_args.batch_size", "32")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    run_trainlab(
        *common, "--data.init_args.batch_size", "16", *DDP, "--trainer.callbacks+=ddp_probe.ShardRecorder", env=env
    )

    data = SyntheticDataModule(**read_config_data())
    data.setup()
    X_train = data.splits["train"][0]
    for epoch in range(2):
        shards = [torch.load(tmp_path / "shards" / f"rank{r}_epoch{epoch}.pt") for r in range(2)]
        assert len(shards[0]) == len(shards[1]) == len(X_train) // 2  # 1200 rows: an even split
        both = torch.cat(shards)
        assert len(torch.unique(both, dim=0)) == len(X_train)  # disjoint, and no sample lost
        assert torch.equal(torch.unique(both, dim=0), torch.unique(X_train, dim=0))

    single_run, ddp_run = run_dirs("default")  # the test runs in tmp_path (conftest), where the subprocess ran
    single, double = read_json(single_run / "metrics.json"), read_json(ddp_run / "metrics.json")
    assert single.keys() == double.keys() and set(single) >= {"test/accuracy", "test/auroc", "test/loss"}
    for key in single:
        assert double[key] == pytest.approx(single[key], abs=2e-3), key
    assert not list(ddp_run.glob(".*.tmp"))  # atomic writes left nothing behind
    from trainlab.models import MLPModule

    module = MLPModule.load_from_checkpoint(ddp_run / "checkpoints" / "last.ckpt", map_location="cpu")
    assert module.hparams.input_dim == 10
    run_here("test", "-c", config("default"), "--ckpt_path", str(ddp_run / "checkpoints" / "last.ckpt"))
    (one_process,) = (ddp_run / "test").glob("version_*")  # inside the fit
    assert read_json(one_process / "metrics.json") == pytest.approx(double, abs=1e-6)


def read_config_data() -> dict:
    import yaml

    return yaml.safe_load(Path(config("default")).read_text())["data"]["init_args"]


def run_here(*args: str) -> None:
    """One process: in this one (no DDP launch needs a fresh Python)."""
    assert run_cli(*args, "--trainer.enable_progress_bar", "false", "--run.report", "false") == 0


def run_trainlab(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """A DDP launch: its own console script, whose ranks Lightning starts by running that command again."""
    trainlab = Path(sys.executable).with_name("trainlab")
    done = subprocess.run(
        [trainlab, *args, "--trainer.enable_progress_bar", "false", "--run.report", "false"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


DDP = ["--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"]


def test_predict_under_ddp_matches_one_process():
    """(A test under DDP is checked against one process in the DDP fit's test above.)"""
    run_here("fit", "-c", config("default"), "--trainer.max_epochs", "2", "--run.test_after_fit", "false")
    (fit_run,) = run_dirs("default")
    ckpt = str(fit_run / "checkpoints" / "last.ckpt")
    run_here("predict", "-c", config("default"), "--ckpt_path", ckpt)
    run_trainlab("predict", "-c", config("default"), "--ckpt_path", ckpt, *DDP)
    predict_one, predict_two = sorted((fit_run / "predict").glob("version_*"))  # inside the fit, in running order
    assert (predict_two / "predictions.csv").read_text() == (predict_one / "predictions.csv").read_text()
