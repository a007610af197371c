"""The progress bar: one bar per fit that advances once per epoch, and one per evaluation or prediction."""

import sys
import time

from lightning.pytorch.callbacks import ProgressBar
from tqdm import tqdm

from trainlab import tasks


class EpochProgressBar(ProgressBar):
    """During `fit`, a single bar over epochs with the latest losses and headline metric; for `validate`,
    `test` and `predict`, a bar over batches.

    Lightning's default redraws a bar per epoch and another per validation; with this project's small,
    fast epochs that flickers and costs about a millisecond every epoch."""

    def __init__(self):
        super().__init__()
        self._enabled = True
        self.bar: tqdm | None = None
        self._postfix_time = float("-inf")

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def print(self, *args, sep: str = " ", **kwargs) -> None:
        text = sep.join(map(str, args))
        if self.bar is not None:
            self.bar.write(text, file=sys.stdout)
        else:
            print(text, flush=True)

    def _open(self, description: str, total, unit: str) -> None:
        self._close()
        self.bar = tqdm(
            desc=description,
            total=total,
            unit=unit,
            disable=not self._enabled,
            file=sys.stdout,
            dynamic_ncols=True,
            smoothing=0,
        )

    def _close(self, *_) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    # fit: one step per epoch
    def on_train_start(self, trainer, pl_module):
        self._open("Training", trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else None, "epoch")

    def on_train_epoch_end(self, trainer, pl_module):
        # Reading the metrics costs more than a small epoch's step: refresh them at most every 0.2 s.
        now = time.monotonic()
        if now - self._postfix_time >= 0.2 or trainer.current_epoch + 1 == trainer.max_epochs:
            self._postfix_time = now
            metrics = trainer.callback_metrics
            keys = tasks.epoch_keys(pl_module.task, pl_module.held_out)
            self.bar.set_postfix({k: f"{float(metrics[k]):.4f}" for k in keys if k in metrics}, refresh=False)
        self.bar.update(1)

    on_train_end = _close

    def on_exception(self, trainer, pl_module, exception):
        self._close()  # the bar's line ends, so the error (or the stop) that follows starts a line of its own

    # validate (outside fit), test, predict: one step per batch
    def _start_batches(self, trainer, description: str, totals) -> None:
        if trainer.state.fn != "fit":  # validation inside fit shows on the epoch bar
            self._open(description, sum(totals), "batch")

    def _advance(self, trainer, *_, **__) -> None:
        if trainer.state.fn != "fit" and self.bar is not None:
            self.bar.update(1)

    def _end_batches(self, trainer, *_) -> None:
        if trainer.state.fn != "fit":
            self._close()

    def on_validation_start(self, trainer, pl_module):
        self._start_batches(trainer, "Validating", trainer.num_val_batches)

    def on_test_start(self, trainer, pl_module):
        self._start_batches(trainer, "Testing", trainer.num_test_batches)

    def on_predict_start(self, trainer, pl_module):
        self._start_batches(trainer, "Predicting", trainer.num_predict_batches)

    on_validation_batch_end = on_test_batch_end = on_predict_batch_end = _advance
    on_validation_end = on_test_end = on_predict_end = _end_batches
