"""Callbacks that leave readable files in the run directory: metrics.json and predictions.csv."""

import csv
import io
import re
import sys
import time
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import BasePredictionWriter, Callback, Checkpoint, ModelCheckpoint

from trainlab import tasks
from trainlab.io import write_json_atomic, write_text_atomic


def run_dir(trainer: pl.Trainer) -> Path:
    """The run directory: the logger's version directory (lightning_logs/<name>/version_N).

    Under DDP `trainer.log_dir` broadcasts from rank zero: call it on every rank."""
    return Path(trainer.log_dir or trainer.default_root_dir)


def console_print(trainer: pl.Trainer, text: str) -> None:
    """Print for the user: above the progress bar when there is one, else a plain line."""
    if trainer.progress_bar_callback is not None:
        trainer.progress_bar_callback.print(text)
    else:
        print(text, flush=True)


def test_metrics(trainer: pl.Trainer) -> dict[str, float]:
    """The test metrics logged so far, keyed like metrics.json."""
    return {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}


def defined_test_metrics(trainer: pl.Trainer, pl_module, warn: bool = True) -> dict[str, float | None]:
    """The test metrics, None for those the test split cannot define (one class only, say), each with a
    warning that says why."""
    import warnings

    from trainlab.callbacks.scoring import TestScores
    from trainlab.errors import TrainlabWarning

    metrics = test_metrics(trainer)
    if trainer.datamodule is None or not hasattr(trainer.datamodule, "splits"):
        return metrics
    scored = TestScores.of(trainer).scored(trainer, pl_module)
    for name, why in scored.undefined(pl_module.task, pl_module.hparams.num_classes).items():
        key = f"test/{name}"
        if key in metrics:
            metrics[key] = None
            if warn:
                warnings.warn(
                    f"{key} is undefined on this test split: {why}; recorded as null", TrainlabWarning, stacklevel=1
                )
    return metrics


class MetricsWriter(Callback):
    """After `test`, writes the test metrics to `metrics.json` (rank zero, atomically); a metric the test
    split cannot define is null."""

    def on_test_end(self, trainer, pl_module):
        path = run_dir(trainer) / "metrics.json"  # every rank: log_dir is a collective under DDP
        if trainer.is_global_zero:
            write_json_atomic(path, defined_test_metrics(trainer, pl_module))


class PredictionsWriter(BasePredictionWriter):
    """After `predict`, writes `predictions.csv`: one row per sample of the predicted split, in order.

    Columns: index (the sample's row in its split), dataset_index (its row in the whole dataset),
    probability (binary: of the second class), probability_<label> per class (multiclass; the data's own class
    labels), prediction (class or value), target.
    """

    def __init__(self):
        super().__init__(write_interval="epoch")

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices):
        path = run_dir(trainer) / "predictions.csv"  # every rank: log_dir is a collective under DDP
        if not trainer.is_global_zero:
            return
        rows = {key: torch.cat([p[key] for p in predictions]).cpu() for key in predictions[0]}
        order = torch.argsort(rows["index"])
        rows = {key: value[order] for key, value in rows.items()}
        columns = {"index": rows["index"].tolist()}
        datamodule = trainer.datamodule
        if datamodule is not None and hasattr(datamodule, "predict_rows"):
            columns["dataset_index"] = datamodule.predict_rows[rows["index"].numpy()].tolist()
        label = datamodule.labels if datamodule is not None and hasattr(datamodule, "labels") else list
        scores = rows["scores"]
        if pl_module.task == "binary":
            columns["probability"] = scores.tolist()
        elif pl_module.task == "multiclass":
            for k, name in enumerate(label(range(scores.shape[1]))):
                columns[f"probability_{name}"] = scores[:, k].tolist()
        target = rows["target"]
        if pl_module.task == "regression":
            columns["prediction"] = rows["prediction"].tolist()
            columns["target"] = ["" if t != t else t for t in target.tolist()]  # NaN: not given
        else:  # classes as the data names them; a target the new data does not give (-1) stays empty
            columns["prediction"] = label(rows["prediction"].long().tolist())
            known = target.long().tolist()
            names = label([max(t, 0) for t in known])
            columns["target"] = [name if t >= 0 else "" for name, t in zip(names, known, strict=True)]

        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        writer.writerows(zip(*columns.values(), strict=True))
        write_text_atomic(path, buffer.getvalue())


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
    An exact resume starts from `checkpoints/last.ckpt`, the end of a recent epoch (see LastCheckpoint)."""

    def on_exception(self, trainer, pl_module, exception):
        from trainlab.errors import Stopped

        stopped = isinstance(exception, KeyboardInterrupt | Stopped) or type(exception).__name__ == "SIGTERMException"
        # One process only: under DDP, ranks see Ctrl-C at different moments and saving is a collective.
        if stopped and trainer.state.fn == "fit" and trainer.world_size == 1:
            path = run_dir(trainer) / "checkpoints" / "interrupted.ckpt"
            trainer.save_checkpoint(path)
            if trainer.is_global_zero:
                print(
                    f"trainlab: interrupted: saved {path}; resume exactly with --ckpt_path "
                    f"{path.with_name('last.ckpt')}",
                    file=sys.stderr,
                    flush=True,
                )


class DiscardOnBadInput(Callback):
    """A command that bad input stops once it has started (a predict file without a trained column, a damaged
    checkpoint's data state) leaves no run directory behind: the one it made holds only its config and an empty
    TensorBoard file. A directory holding anything more (checkpoints, metrics) is kept."""

    def on_exception(self, trainer, pl_module, exception):
        from trainlab.errors import as_user_error
        from trainlab.io import remove_if_only_setup

        log_dir = getattr(trainer.logger, "log_dir", None)  # the logger's own: not a collective, unlike trainer.log_dir
        if trainer.is_global_zero and log_dir is not None and as_user_error(exception) is not None:
            remove_if_only_setup(Path(log_dir))
