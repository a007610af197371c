"""The checkpoints a fit writes: the best on the monitored metric, last.ckpt (resumes continue exactly), and
interrupted.ckpt on Ctrl-C or SIGTERM."""

import sys
import time
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback, Checkpoint, ModelCheckpoint

from trainlab.callbacks.outputs import run_dir


class BestCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint, with the epoch in file names counted from 1 as everywhere a person reads
    one (summary lines, the report, the doctor): best-epoch150.ckpt is the 150th epoch, not the 151st."""

    def format_checkpoint_name(self, metrics, filename=None, ver=None, prefix=None):
        if "epoch" in metrics:
            metrics = {**metrics, "epoch": metrics["epoch"] + 1}
        return super().format_checkpoint_name(metrics, filename, ver, prefix)


class LastCheckpoint(Checkpoint):
    """`checkpoints/last.ckpt`: the end of the latest epoch, replaced atomically, so that a resume continues
    exactly and `run.test_ckpt last` tests the final model.

    Written at the end of an epoch when at least `every` seconds have passed since the last write, and
    always when the fit ends: with epochs of a few milliseconds, writing it every epoch was a tenth of a
    fit, while a kill now loses at most `every` seconds of training. `every` 0: every epoch.

    Lightning 2.6's `ModelCheckpoint(save_last=True)` writes last.ckpt only in epochs that also save a
    top-k checkpoint (it held the best epoch, not the last), hence this callback. A Checkpoint runs after
    the other callbacks (Lightning orders them last, in turn): the file records the best one's state too.
    Loggers that upload checkpoints (`log_model` of W&B, MLflow) see the ModelCheckpoint's files only."""

    def __init__(self, every: float = 0.0):
        self.every = every
        self.path: Path | None = None  # once written
        self._written_at = float("-inf")
        self._written_step: int | None = None

    def on_train_epoch_end(self, trainer, pl_module):
        due = time.monotonic() - self._written_at >= self.every
        if trainer.world_size > 1:  # saving is a collective: every rank must decide alike
            due = trainer.strategy.broadcast(due)
        if due or final_epoch(trainer):
            self._write(trainer)

    def on_train_end(self, trainer, pl_module):
        if self._written_step != trainer.global_step:  # a stop final_epoch could not foresee
            self._write(trainer)

    def _write(self, trainer) -> None:
        if trainer.fast_dev_run:
            return
        path = run_dir(trainer) / "checkpoints" / "last.ckpt"  # every rank: log_dir is a collective under DDP
        trainer.save_checkpoint(path, weights_only=False)  # every rank: saving is a collective
        self.path, self._written_at, self._written_step = path, time.monotonic(), trainer.global_step


def final_epoch(trainer: pl.Trainer) -> bool:
    """Whether the fit ends with this epoch, as the callbacks that ran before (early stopping, timers) left
    it: call it at the epoch's end, from a Checkpoint callback (they run last)."""
    max_epochs, max_steps = trainer.max_epochs, trainer.max_steps
    return (
        trainer.should_stop
        or (max_epochs is not None and 0 <= max_epochs <= trainer.current_epoch + 1)
        or 0 <= max_steps <= trainer.global_step
    )


class SaveOnInterrupt(Callback):
    """Ctrl-C (SIGINT) or SIGTERM during fit: save `checkpoints/interrupted.ckpt` before Lightning shuts down.
    An exact resume starts from `checkpoints/last.ckpt`, the end of a recent epoch (see LastCheckpoint): said
    with `resume_hint`, which a cv fold or tuning trial leaves out (it is no fit to resume alone)."""

    def __init__(self, resume_hint: bool = True):
        self.resume_hint = resume_hint

    def on_exception(self, trainer, pl_module, exception):
        from trainlab.errors import Stopped

        stopped = isinstance(exception, KeyboardInterrupt | Stopped) or type(exception).__name__ == "SIGTERMException"
        # One process only: under DDP, ranks see Ctrl-C at different moments and saving is a collective.
        if stopped and trainer.state.fn == "fit" and trainer.world_size == 1:
            path = run_dir(trainer) / "checkpoints" / "interrupted.ckpt"
            trainer.save_checkpoint(path)
            if trainer.is_global_zero:
                hint = f"; resume exactly with --ckpt_path {path.with_name('last.ckpt')}" if self.resume_hint else ""
                print(f"trainlab: interrupted: saved {path}{hint}", file=sys.stderr, flush=True)
