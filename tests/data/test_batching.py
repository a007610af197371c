"""Batches: every training sample once per epoch in a seeded order, groups of mini-batches, no lone last
sample, evaluation in split order; DDP shards, and two CPU processes with DDP (gloo): disjoint shards of one
permutation, one writer, loadable checkpoints."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.data.helpers import make
from tests.helpers import config, read_json, run_cli, run_dirs
from tests.models.helpers import fit
from trainlab.data import SyntheticDataModule
from trainlab.data.batching import TensorBatches, epoch_permutation
from trainlab.models import MLPModule


def epoch_rows(loader, epoch: int) -> torch.Tensor:
    """The training rows a loader serves in one epoch, in order (groups flattened)."""
    loader.set_epoch(epoch)
    return torch.cat([batch[0] if batch[0].dim() == 2 else batch[0][0] for group in loader for batch in group])


def sorted_rows(X: torch.Tensor) -> torch.Tensor:
    return X[torch.argsort(X[:, 0])]


def test_training_batches_cover_each_sample_once_per_epoch_in_a_seeded_order():
    dm = make(n_samples=250, batch_size=32, batches_per_step=2)
    loader = dm.train_dataloader()
    X_train = dm.splits["train"][0]
    epochs = [epoch_rows(loader, e) for e in range(2)]
    for seen in epochs:
        assert len(seen) == len(X_train) == 150
        assert torch.equal(sorted_rows(seen), sorted_rows(X_train))  # the same rows, each exactly once
    assert not torch.equal(epochs[0], epochs[1])  # reshuffled each epoch
    assert torch.equal(epoch_rows(loader, 0), epochs[0])  # an epoch's order depends on (seed, epoch) only
    again = make(n_samples=250, batch_size=32, batches_per_step=2).train_dataloader()
    assert torch.equal(epoch_rows(again, 1), epochs[1])
    X, y = dm.splits["train"]
    other_seed = TensorBatches(X, y, batch_size=32, shuffle=True, seed=43, group=2)
    assert not torch.equal(epoch_rows(other_seed, 0), epochs[0])  # same data, another shuffling seed
    dm.serve_members([(0, 1)])  # the same data for a model member of another seed: its own order
    assert not torch.equal(epoch_rows(dm.train_dataloader(), 0), epochs[0])


def test_training_batches_come_in_groups_of_mini_batches():
    dm = make(n_samples=250, batch_size=32, batches_per_step=2)
    loader = dm.train_dataloader()
    groups = list(loader)
    assert len(loader) == len(groups) == 3
    assert [[x.shape[1] for x, _, _ in group] for group in groups] == [[32, 32], [32, 32], [22]]
    x, y, counts = groups[0][0]
    assert x.shape == (1, 32, 2) and y.shape == (1, 32) and counts is None  # one member, all rows real
    x, y = x[0], y[0]
    # features and targets stay paired through the shuffle
    X_train, y_train = dm.splits["train"]
    row = int(torch.nonzero((X_train == x[0]).all(1))[0])
    assert y_train[row] == y[0]


@pytest.mark.parametrize("n_samples", [250, 255])
def test_ddp_shards_are_disjoint_equal_sized_and_drawn_from_one_permutation(n_samples):
    """What each of 2 ranks would be served: one epoch permutation split across ranks."""
    dm = make(n_samples=n_samples, batch_size=16, test_fraction=0.2, val_fraction=0.2)
    X_train = dm.splits["train"][0]
    n = len(X_train)
    shards = []
    for rank in range(2):
        loader = TensorBatches(
            *dm.splits["train"], batch_size=16, shuffle=True, seed=42, group=1, rank=rank, world_size=2
        )
        shards.append(epoch_rows(loader, 3))
    assert len(shards[0]) == len(shards[1]) == -(-n // 2)
    both = torch.cat(shards)
    assert torch.equal(torch.unique(both, dim=0), torch.unique(X_train, dim=0))  # no sample lost
    permutation = X_train[epoch_permutation(n, 42, 3)]
    assert torch.equal(shards[0][: n // 2], permutation[0::2][: n // 2])  # rank r takes every 2nd sample
    assert torch.equal(shards[1][: n // 2], permutation[1::2][: n // 2])
    if n % 2 == 0:
        assert len(torch.unique(both, dim=0)) == n  # disjoint
    else:
        assert torch.equal(shards[1][-1], permutation[0])  # padded by wrapping around, like DistributedSampler


def test_training_batches_never_end_with_a_lone_sample():
    X, y = torch.randn(65, 2), torch.zeros(65)
    sizes = [len(x) for group in TensorBatches(X, y, batch_size=16, shuffle=True, group=2) for x, _ in group]
    assert sizes == [16, 16, 16, 17]
    assert len(TensorBatches(X, y, batch_size=16, shuffle=True, group=1)) == 4
    evaluation = [len(b[0]) for b in TensorBatches(X, y, batch_size=16)]  # evaluation keeps its batches
    assert evaluation == [16, 16, 16, 16, 1]


def test_eval_and_predict_batches_keep_split_order():
    dm = make(n_samples=300, eval_batch_size=16)
    X_test, y_test = dm.splits["test"]
    batches = list(dm.predict_dataloader())
    assert [len(b[0]) for b in batches] == [16, 16, 16, 12]
    assert torch.equal(torch.cat([b[0] for b in batches]), X_test)
    assert torch.equal(torch.cat([b[2] for b in batches]), torch.arange(len(y_test)))
    assert torch.equal(torch.cat([b[1] for b in dm.test_dataloader()]), y_test)


def test_batch_norm_trains_when_a_lone_sample_would_end_the_epoch():
    # 240 training samples in batches of 239: the one left over joins the batch before it
    module = MLPModule(input_dim=4, task="binary", hidden_dims=[8], batch_norm=True)
    trainer = fit(module, {"batch_size": 239}, max_epochs=2)
    assert trainer.global_step == 2


@pytest.mark.slow
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


@pytest.mark.slow
def test_predict_under_ddp_matches_one_process():
    """(A test under DDP is checked against one process in the DDP fit's test above.)"""
    run_here("fit", "-c", config("default"), "--trainer.max_epochs", "2", "--run.test_after_fit", "false")
    (fit_run,) = run_dirs("default")
    ckpt = str(fit_run / "checkpoints" / "last.ckpt")
    run_here("predict", "-c", config("default"), "--ckpt_path", ckpt)
    run_trainlab("predict", "-c", config("default"), "--ckpt_path", ckpt, *DDP)
    predict_one, predict_two = sorted((fit_run / "predict").glob("version_*"))  # inside the fit, in running order
    assert (predict_two / "predictions.csv").read_text() == (predict_one / "predictions.csv").read_text()
