"""What each task means for the model: its output size, losses, metrics and how logits become predictions.

`task` is one of "binary", "multiclass", "regression". Multiclass precision, recall, F1 and AUROC are
macro-averaged (every class counts equally); accuracy is the plain fraction of correct predictions.
"""

from typing import Literal, get_args

import torch
from torch import nn

Task = Literal["binary", "multiclass", "regression"]
TASKS = get_args(Task)

# The first loss of each task is its default ("auto").
LOSSES = {
    "binary": ("bce",),
    "multiclass": ("cross_entropy",),
    "regression": ("mse", "l1", "huber"),
}
METRIC_NAMES = {
    "binary": ("accuracy", "precision", "recall", "f1", "auroc"),
    "multiclass": ("accuracy", "precision", "recall", "f1", "auroc"),
    "regression": ("mse", "rmse", "mae", "r2"),
}
# The metric a one-line summary shows.
HEADLINE = {"binary": "accuracy", "multiclass": "accuracy", "regression": "r2"}
# Whether a larger value of each metric is better (for checkpoint and early-stopping modes).
HIGHER_IS_BETTER = {
    "accuracy": True,
    "precision": True,
    "recall": True,
    "f1": True,
    "auroc": True,
    "mse": False,
    "rmse": False,
    "mae": False,
    "r2": True,
    "loss": False,
}


def epoch_keys(task: str, held_out: str = "val") -> tuple[str, str, str]:
    """The keys a one-line epoch summary shows: the training loss, the held-out split's loss and headline
    metric (`held_out`: "val", or "test" when the data has no validation split)."""
    return "train/loss", f"{held_out}/loss", f"{held_out}/{HEADLINE[task]}"


def held_out_of(keys) -> str:
    """Which split a run's per-epoch held-out numbers came from, judged by its metric keys: "val" when it
    logged any val/ key, else "test" (a run without a validation split evaluates the test split every epoch)."""
    return "val" if any(str(k).startswith("val/") for k in keys) else "test"


def output_dim(task: str, num_classes: int | None) -> int:
    return num_classes if task == "multiclass" else 1


def make_loss(name: str, reduction: str = "mean") -> nn.Module:
    return {
        "bce": nn.BCEWithLogitsLoss,
        "cross_entropy": nn.CrossEntropyLoss,
        "mse": nn.MSELoss,
        "l1": nn.L1Loss,
        "huber": nn.HuberLoss,
    }[name](reduction=reduction)


def loss_of_scores(task: str, criterion: nn.Module, scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per row, the task's loss of predicted scores (an ensemble's mean probability or value) rather than
    logits: binary and multiclass cross-entropy of the probabilities, `criterion` (reduction "none") of the
    values. Any leading dimensions; the mean is the caller's."""
    if task == "binary":
        return nn.functional.binary_cross_entropy(scores.clamp(1e-7, 1 - 1e-7), y, reduction="none")
    if task == "multiclass":
        log_p = torch.log(scores.clamp_min(1e-12))
        return nn.functional.nll_loss(log_p.reshape(-1, log_p.shape[-1]), y.reshape(-1), reduction="none").view(y.shape)
    return criterion(scores, y)


def make_metrics(task: str, num_classes: int | None, prefix: str | None = None, names=None, **options):
    """One MetricCollection for a task, its keys prefixed with `prefix` (a stage: "val/"): every metric of the
    task, or those in `names`; `options` go to every metric. (A new one costs less than torchmetrics' clone, a
    deep copy.)"""
    import torchmetrics as tm
    from torchmetrics import classification as c
    from torchmetrics import regression as r

    if task != "regression":
        # The labels are 0..K-1 and the scores probabilities by construction (the data modules encode the
        # labels, metric_inputs applies sigmoid or softmax): torchmetrics' checks of every batch (a sort
        # and host synchronisations) would only cost time.
        options = {"validate_args": False, **options}
    if task == "binary":
        makers = {
            "accuracy": lambda: c.BinaryAccuracy(**options),
            "precision": lambda: c.BinaryPrecision(**options),
            "recall": lambda: c.BinaryRecall(**options),
            "f1": lambda: c.BinaryF1Score(**options),
            "auroc": lambda: c.BinaryAUROC(**options),
        }
    elif task == "multiclass":
        k = num_classes
        makers = {
            "accuracy": lambda: c.MulticlassAccuracy(k, average="micro", **options),
            "precision": lambda: c.MulticlassPrecision(k, average="macro", **options),
            "recall": lambda: c.MulticlassRecall(k, average="macro", **options),
            "f1": lambda: c.MulticlassF1Score(k, average="macro", **options),
            "auroc": lambda: c.MulticlassAUROC(k, average="macro", **options),
        }
    else:
        makers = {
            "mse": lambda: r.MeanSquaredError(**options),
            "rmse": lambda: r.MeanSquaredError(squared=False, **options),
            "mae": lambda: r.MeanAbsoluteError(**options),
            "r2": lambda: r.R2Score(**options),
        }
    chosen = makers if names is None else {name: makers[name] for name in names}
    return tm.MetricCollection({name: make() for name, make in chosen.items()}, prefix=prefix)


def loss_inputs(task: str, logits: torch.Tensor) -> torch.Tensor:
    """The model's raw output in the shape the task's loss expects: (N,) for one output, (N, C) for classes."""
    return logits if task == "multiclass" else logits.squeeze(-1)


def metric_inputs(task: str, logits: torch.Tensor) -> torch.Tensor:
    """What the metrics score: the positive-class probability, class probabilities, or the value (float32
    even under bf16 autocast, so that probabilities keep their resolution)."""
    logits = logits.float()
    if task == "binary":
        return torch.sigmoid(logits.squeeze(-1))
    if task == "multiclass":
        return torch.softmax(logits, dim=-1)
    return logits.squeeze(-1)


def predicted_labels(task: str, scores: torch.Tensor) -> torch.Tensor:
    """Turn `metric_inputs` into the predicted class (threshold 0.5, or argmax); values stay values."""
    if task == "binary":
        return (scores > 0.5).long()
    if task == "multiclass":
        return scores.argmax(dim=-1)
    return scores


def undefined_metrics(task: str, y, predicted, num_classes: int | None) -> dict[str, str]:
    """The metrics a split cannot define, each with why (scikit-learn raises or warns for these, and
    torchmetrics returns 0): AUROC without every class, recall and F1 without positives, precision without
    predicted positives, R2 of constant targets. They are recorded as null, never as a number."""
    import numpy as np

    y, predicted = np.asarray(y), np.asarray(predicted)
    if task == "regression":
        return {"r2": "the targets are all equal"} if len(y) < 2 or np.all(y == y[0]) else {}
    undefined = {}
    absent = sorted(set(range(num_classes if task == "multiclass" else 2)) - set(np.unique(y).astype(int).tolist()))
    if absent:
        undefined["auroc"] = f"class {', '.join(map(str, absent))} is absent from the split"
    if task == "binary":
        actual, guessed = int((y == 1).sum()), int((predicted == 1).sum())
        if actual == 0:
            undefined["recall"] = "the split has no positive samples"
        if guessed == 0:
            undefined["precision"] = "the model predicts no positives"
        if actual == 0 and guessed == 0:
            undefined["f1"] = "no positives, actual or predicted"
    return undefined


def metric_text(value: float | None) -> str:
    """A metric as pages and the console show it; None is one the split cannot define (see undefined_metrics)."""
    return "undefined" if value is None else f"{value:.4f}"
