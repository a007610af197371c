"""The held-out metrics of many units at once (the folds or trials of a pack), each on its own rows.

A pack evaluates every unit every epoch; one torchmetrics collection per unit costs a few milliseconds per
unit and epoch in Python (a third of a tuning population's time), while the arithmetic is tiny. Here every
metric of every unit is a handful of tensor operations over [units, rows], with torchmetrics' definitions
(tests/test_unit_metrics.py compares the two): binary predictions are scores > 0.5; macro averages skip
the classes a unit neither has nor predicts; AUROC is the exact area under the ROC curve (ties count a
half), 0 for a unit whose rows hold one class only, and macro-averaged one-vs-rest for several classes;
R2 is torchmetrics' (1 for a near-perfect fit, 0 for near-constant targets)."""

import torch

from trainlab import tasks


def unit_metrics(
    task: str, scores: torch.Tensor, y: torch.Tensor, real: torch.Tensor, names, num_classes: int | None = None
) -> list[dict[str, float]]:
    """Per unit, the metrics in `names` (of tasks.METRIC_NAMES[task]) of its real rows.

    scores: [U, N] (a probability or a value) or [U, N, C] (class probabilities); y: [U, N] targets;
    real: [U, N] booleans, False for padding."""
    rows = real.sum(1).double()
    if task == "regression":
        values = _regression(scores.double(), y.double(), real, rows)
    else:
        values = _classification(task, scores, y.long(), real, rows, num_classes)
    wanted = [name for name in names if name in values]
    table = torch.stack([values[name]() for name in wanted], dim=1).tolist() if wanted else [[]] * len(rows)
    return [dict(zip(wanted, unit, strict=True)) for unit in table]


def _classification(task, scores, y, real, rows, num_classes) -> dict:
    classes = 2 if task == "binary" else num_classes
    predicted = tasks.predicted_labels(task, scores)
    hits = lambda labels: torch.nn.functional.one_hot(torch.where(real, labels, 0), classes) & real[..., None]  # noqa: E731
    guessed, actual = hits(predicted), hits(y)
    tp = (guessed & actual).sum(1).double()  # [U, classes]
    fp, fn = guessed.sum(1).double() - tp, actual.sum(1).double() - tp
    if task == "binary":  # the positive class's counts
        tp, fp, fn = tp[:, 1], fp[:, 1], fn[:, 1]
        reduce = lambda score: score  # noqa: E731
        auroc = lambda: _auroc(scores, y == 1, real)  # noqa: E731
    else:
        present = (tp + fp + fn) > 0  # torchmetrics' macro average leaves out the classes not seen at all
        reduce = lambda score: _divide((score * present).sum(1), present.sum(1).double())  # noqa: E731
        auroc = lambda: _multiclass_auroc(scores, y, real, classes)  # noqa: E731
    return {
        "accuracy": lambda: _divide(((predicted == y) & real).sum(1).double(), rows),
        "precision": lambda: reduce(_divide(tp, tp + fp)),
        "recall": lambda: reduce(_divide(tp, tp + fn)),
        "f1": lambda: reduce(_divide(2 * tp, 2 * tp + fp + fn)),
        "auroc": auroc,
    }


def _regression(scores, y, real, rows) -> dict:
    error = torch.where(real, scores - y, 0.0)
    mse = lambda: _divide((error**2).sum(1), rows)  # noqa: E731
    return {
        "mse": mse,
        "rmse": lambda: mse().sqrt(),
        "mae": lambda: _divide(error.abs().sum(1), rows),
        "r2": lambda: _r2(torch.where(real, y, 0.0), (error**2).sum(1), rows),
    }


def _r2(y, rss, rows):
    """torchmetrics' R2: from the sums of the targets and their squares; undefined below two rows."""
    total = y.sum(1)
    tss = (y**2).sum(1) - total * _divide(total, rows)
    fit, spread = (
        ~torch.isclose(rss, torch.zeros_like(rss), atol=1e-4),
        ~torch.isclose(tss, torch.zeros_like(tss), atol=1e-4),
    )
    r2 = torch.where(fit & spread, 1 - rss / torch.where(spread, tss, 1.0), torch.where(fit, 0.0, 1.0))
    return torch.where(rows >= 2, r2, torch.nan)


def _auroc(scores, positive, real):
    """[R] exact ROC AUC of rows [R, N]: the Mann-Whitney statistic with average ranks for ties."""
    padded = torch.where(real, scores.double(), torch.inf)  # padding sorts last and ranks no real row
    ordered = padded.sort(dim=1).values
    below = torch.searchsorted(ordered, padded, right=False)
    upto = torch.searchsorted(ordered, padded, right=True)
    ranks = (below + upto + 1).double() / 2
    positive = positive & real
    n_pos = positive.sum(1).double()
    n_neg = real.sum(1).double() - n_pos
    u = (ranks * positive).sum(1) - n_pos * (n_pos + 1) / 2
    return torch.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg).clamp(min=1), 0.0)


def _multiclass_auroc(scores, y, real, classes):
    """[U] the mean over classes of each class's one-vs-rest AUROC."""
    units, n = y.shape
    per_class = _auroc(
        scores.permute(0, 2, 1).reshape(units * classes, n),
        (y[:, None, :] == torch.arange(classes, device=y.device)[None, :, None]).reshape(units * classes, n),
        real.repeat_interleave(classes, dim=0),
    )
    return per_class.view(units, classes).mean(1)


def _divide(numerator, denominator):
    """numerator / denominator, 0 where the denominator is 0 (torchmetrics' zero_division)."""
    return torch.where(denominator > 0, numerator / denominator.clamp(min=1e-300), 0.0)
