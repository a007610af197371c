"""What a run leaves in its run directory (besides checkpoints, report and diagnosis): metrics.json after a
test, predictions.csv after a predict, and no directory at all when bad input stops the command."""

import csv
import io
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import BasePredictionWriter, Callback

from trainlab.io import write_json_atomic, write_text_atomic


def run_dir(trainer: pl.Trainer) -> Path:
    """The run directory: the logger's version directory (lightning_logs/<name>/version_N).

    Under DDP `trainer.log_dir` broadcasts from rank zero: call it on every rank."""
    return Path(trainer.log_dir or trainer.default_root_dir)


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
