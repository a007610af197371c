"""The checkpoints a fit writes (trainlab.callbacks.checkpointing): last.ckpt at the final epoch, the best
checkpoint on the monitored metric. Killed fits resume exactly from last.ckpt; Ctrl-C stops cleanly after saving
interrupted.ckpt (real processes, real signals)."""

import signal
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

import trainlab
from tests.helpers import QUIET, Forked, config, read_json, run_cli, run_dirs, scalars

QUIET_API = {"trainer.enable_progress_bar": False}


@pytest.mark.slow
def test_last_ckpt_is_the_final_epoch_and_the_chapter_tests_it():
    # The seed config's val/loss is lowest at an earlier epoch: Lightning 2.6's save_last would have left
    # that epoch in last.ckpt, and test_ckpt last would then have tested it instead of the final model.
    fitted = trainlab.fit(config("seed"), **{"trainer.enable_progress_bar": False, "run.report": False})
    last = torch.load(fitted.last_checkpoint, weights_only=True)
    best = torch.load(fitted.best_checkpoint, weights_only=True)
    assert last["epoch"] == 99 and last["global_step"] == 100 * 25  # 800 training samples in batches of 32
    assert best["epoch"] < 99  # the premise: the best epoch is not the last
    assert trainlab.test(config("seed"), fitted.last_checkpoint, **QUIET_API).metrics == fitted.metrics


class LastCheckpointProbe(pl.Callback):
    """Reads checkpoints/last.ckpt at the start of every epoch: which epoch it held then."""

    def __init__(self):
        self.held: list[int | None] = []

    def on_train_epoch_start(self, trainer, pl_module):
        path = Path(trainer.log_dir) / "checkpoints" / "last.ckpt"
        self.held.append(torch.load(path, weights_only=True)["epoch"] if path.exists() else None)


@pytest.mark.parametrize("every, held", [(0, [None, 0, 1, 2, 3]), (3600, [None, 0, 0, 0, 0])])
def test_last_ckpt_is_written_every_epoch_or_at_most_every_n_seconds_and_always_at_the_end(every, held):
    probe = LastCheckpointProbe()
    settings = {"trainer.max_epochs": 5, "run.last_checkpoint_every": every, "run.test_after_fit": False}
    fitted = trainlab.fit(config("seed"), callbacks=[probe], **QUIET_API, **settings)
    assert probe.held == held
    assert torch.load(fitted.last_checkpoint, weights_only=True)["epoch"] == 4  # the final epoch, either way


def test_last_ckpt_ends_with_an_early_stop():
    settings = {"data.init_args.val_fraction": 0.2, "run.early_stopping": {"patience": 1}, "run.test_after_fit": False}
    fitted = trainlab.fit(config("seed"), **QUIET_API, **settings)
    stopped = torch.load(fitted.last_checkpoint, weights_only=True)
    trained = len(fitted.diagnosis["history"]["train_loss"])
    assert trained < 100 and stopped["epoch"] == trained - 1  # it stopped early; last.ckpt holds that epoch
    assert stopped["global_step"] == trained * 19  # 600 training samples in batches of 32


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


# dropout consumes random numbers, so an exact resume also needs the random stream restored
ARGS = ["--trainer.max_epochs", "60", "--run.summary_every", "1", "--model.init_args.dropout", "0.2"]
ARGS += ["--trainer.enable_progress_bar", "false"]


def start_fit(*extra: str) -> Forked:
    return Forked("fit", "-c", config("seed"), *ARGS, *extra)


def wait_for_epoch(process: Forked, epoch: int) -> None:
    for line in process.stdout:
        if line.startswith(f"Epoch [{epoch}/60]"):
            return
    raise AssertionError(f"the fit ended before epoch {epoch} (exit {process.wait()})")


@pytest.mark.slow
def test_a_killed_fit_resumes_and_ends_like_an_uninterrupted_one():
    # 60 epochs of ~20 ms: the kill lands long before the end. The reference fit writes no report (plots cost
    # ~1 s and are compared nowhere); the resumed fit does, as a resumed fit would.
    assert run_cli("fit", "-c", config("seed"), *ARGS, "--run.report", "false") == 0
    (uninterrupted,) = run_dirs("seed")

    process = start_fit()
    wait_for_epoch(process, 8)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    killed = run_dirs("seed")[-1]
    last = killed / "checkpoints" / "last.ckpt"
    saved_epoch = torch.load(last, weights_only=True)["epoch"]  # 0-based: epochs 1..saved_epoch+1 are done
    # last.ckpt is written at most once a second (run.last_checkpoint_every): some epoch before the kill
    assert 0 <= saved_epoch < 8
    assert not (killed / "metrics.json").exists()

    assert run_cli("fit", "-c", config("seed"), *ARGS, "--ckpt_path", last) == 0
    resumed = run_dirs("seed")[-1]
    assert read_json(resumed / "metrics.json") == read_json(uninterrupted / "metrics.json")
    history = read_json(resumed / "diagnosis.json")["history"]
    assert len(history["train_loss"]) == 60  # the doctor's history came back with the checkpoint...
    assert history == read_json(uninterrupted / "diagnosis.json")["history"]  # ...and continued identically
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trained = EventAccumulator(str(resumed)).Reload().Scalars("train/loss")
    assert len(trained) == 60 - (saved_epoch + 1)  # only the remaining epochs were trained


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])  # not slow: the fork starts at once
def test_ctrl_c_or_sigterm_stops_cleanly_after_saving_a_checkpoint(signum):
    """Lightning alone turns SIGTERM into a clean exit 0 with nothing saved; trainlab stops with 128 + the
    signal's number, after saving interrupted.ckpt."""
    process = start_fit()
    wait_for_epoch(process, 5)
    process.send_signal(signum)
    output = process.stdout.read()
    assert process.wait() == 128 + signum
    assert "Traceback" not in output and f"trainlab: stopped by {signal.Signals(signum).name}" in output
    (run,) = run_dirs("seed")
    interrupted = run / "checkpoints" / "interrupted.ckpt"
    assert f"trainlab: interrupted: saved {interrupted}; resume exactly with --ckpt_path" in output
    checkpoint = torch.load(interrupted, weights_only=True)
    assert checkpoint["epoch"] >= 4 and all(torch.isfinite(w).all() for w in checkpoint["state_dict"].values())
    assert not (run / "metrics.json").exists()  # no test after an interrupted fit
