"""What a run prints: the periodic epoch summary line and the early-stopping notice, above the progress bar
when there is one."""

import re
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

from trainlab import tasks


def console_print(trainer: pl.Trainer, text: str) -> None:
    """Print for the user: above the progress bar when there is one, else a plain line."""
    if trainer.progress_bar_callback is not None:
        trainer.progress_bar_callback.print(text)
    else:
        print(text, flush=True)


class EpochSummary(Callback):
    """Every `every` epochs (and at the last), one line like the chapter's: epoch, train loss, the held-out
    loss and the task's headline metric (val/accuracy or val/r2; test/... when the test split is evaluated
    every epoch because there is no validation split)."""

    def __init__(self, every: int = 10):
        self.every = every

    def on_train_epoch_end(self, trainer, pl_module):
        epoch = trainer.current_epoch + 1
        if self.every <= 0 or not trainer.is_global_zero:
            return
        if epoch % self.every and epoch != trainer.max_epochs:
            return
        metrics = trainer.callback_metrics
        parts = [f"Epoch [{epoch}/{trainer.max_epochs}]"]
        for key in tasks.epoch_keys(pl_module.task, pl_module.held_out):
            if key in metrics:
                parts.append(f"{key} {float(metrics[key]):.4f}")
        console_print(trainer, ", ".join(parts))


class EarlyStopNotice(Callback):
    """One line when early stopping ends a fit: the epoch, the monitored metric and its best value and epoch."""

    def on_train_end(self, trainer, pl_module):
        from lightning.pytorch.callbacks import EarlyStopping

        stops = [c for c in trainer.callbacks if isinstance(c, EarlyStopping) and c.stopped_epoch > 0]
        if not stops or not trainer.is_global_zero:
            return
        stop, best = stops[0], trainer.checkpoint_callback
        found = re.search(r"best-epoch(\d+)", Path(getattr(best, "best_model_path", "") or "").name)
        at = f" at epoch {int(found.group(1))}" if found else ""
        console_print(
            trainer,
            f"Early stopping at epoch {stop.stopped_epoch + 1}: {stop.monitor} did not improve for {stop.patience} "
            f"epochs; best {float(stop.best_score):.4f}{at}",
        )
