"""torchmetrics as trainlab configures them must equal scikit-learn on the same predictions."""

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from trainlab import tasks


def feed(task: str, num_classes, scores: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    collection = tasks.make_metrics(task, num_classes).clone(prefix="test/")
    for chunk in range(0, len(y), 37):  # several batches, as in an epoch
        collection.update(scores[chunk : chunk + 37], y[chunk : chunk + 37])
    return {k.removeprefix("test/"): float(v) for k, v in collection.compute().items()}


def test_binary_metrics_equal_sklearn():
    generator = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (500,), generator=generator)
    scores = (0.35 * y + 0.65 * torch.rand(500, generator=generator)).clamp(0, 1)
    got = feed("binary", 2, scores, y)
    labels = tasks.predicted_labels("binary", scores).numpy()
    want = {
        "accuracy": skm.accuracy_score(y, labels),
        "precision": skm.precision_score(y, labels),
        "recall": skm.recall_score(y, labels),
        "f1": skm.f1_score(y, labels),
        "auroc": skm.roc_auc_score(y, scores),
    }
    assert got.keys() == want.keys()
    for name in want:
        assert got[name] == pytest.approx(want[name], abs=1e-6), name


def test_multiclass_metrics_equal_sklearn_with_macro_averaging():
    generator = torch.Generator().manual_seed(1)
    k = 4
    y = torch.randint(0, k, (600,), generator=generator)
    logits = torch.randn(600, k, generator=generator) + 1.5 * torch.nn.functional.one_hot(y, k)
    scores = tasks.metric_inputs("multiclass", logits)
    got = feed("multiclass", k, scores, y)
    labels = tasks.predicted_labels("multiclass", scores).numpy()
    want = {
        "accuracy": skm.accuracy_score(y, labels),
        "precision": skm.precision_score(y, labels, average="macro"),
        "recall": skm.recall_score(y, labels, average="macro"),
        "f1": skm.f1_score(y, labels, average="macro"),
        "auroc": skm.roc_auc_score(y, scores.numpy(), multi_class="ovr", average="macro"),
    }
    for name in want:
        assert got[name] == pytest.approx(want[name], abs=1e-5), name


def test_regression_metrics_equal_sklearn():
    generator = torch.Generator().manual_seed(2)
    y = torch.randn(400, generator=generator) * 5 + 2
    pred = y + torch.randn(400, generator=generator)
    got = feed("regression", None, pred, y)
    want = {
        "mse": skm.mean_squared_error(y, pred),
        "rmse": np.sqrt(skm.mean_squared_error(y, pred)),
        "mae": skm.mean_absolute_error(y, pred),
        "r2": skm.r2_score(y, pred),
    }
    for name in want:
        assert got[name] == pytest.approx(want[name], rel=1e-5), name


def sklearn_defines(name: str, task: str, y: np.ndarray, scores: np.ndarray, labels: np.ndarray) -> bool:
    """Whether scikit-learn computes the metric without raising or warning that it is undefined."""
    import warnings

    from sklearn.exceptions import UndefinedMetricWarning

    average = {"average": "macro"} if task == "multiclass" else {}
    compute = {
        "precision": lambda: skm.precision_score(y, labels, **average),
        "recall": lambda: skm.recall_score(y, labels, **average),
        "f1": lambda: skm.f1_score(y, labels, **average),
        "auroc": lambda: skm.roc_auc_score(y, scores, **({"multi_class": "ovr"} if task == "multiclass" else {})),
        "r2": lambda: skm.r2_score(y, labels, force_finite=False),  # (its default makes 0 of an undefined R2)
    }[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UndefinedMetricWarning)
        try:
            value = compute()
        except (UndefinedMetricWarning, ValueError):
            return False
    return bool(np.isfinite(value))


@pytest.mark.parametrize(
    "task, y, labels",
    [
        ("binary", [0, 0, 0, 0], [0, 0, 0, 0]),  # no positives anywhere
        ("binary", [0, 0, 0, 0], [0, 1, 0, 0]),  # no actual positives, one predicted
        ("binary", [1, 1, 1, 1], [1, 0, 1, 1]),  # one class, all positive
        ("binary", [0, 1, 0, 1], [0, 0, 0, 0]),  # no predicted positives
        ("binary", [0, 1, 0, 1], [0, 1, 1, 1]),  # everything defined
        ("multiclass", [0, 1, 0, 1], [0, 1, 2, 1]),  # class 2 absent from the truth
        ("multiclass", [0, 1, 2, 1], [0, 1, 1, 1]),  # every class present
        ("regression", [1.0, 1.0, 1.0], [0.5, 1.0, 2.0]),  # constant targets
        ("regression", [1.0, 2.0, 3.0], [0.5, 1.0, 2.0]),
    ],
)
def test_a_metric_is_undefined_exactly_where_scikit_learn_says_so(task, y, labels):
    y, labels = np.array(y), np.array(labels)
    if task == "binary":
        scores = np.where(labels == 1, 0.8, 0.2)
        names = ["precision", "recall", "f1", "auroc"]
    elif task == "multiclass":
        scores = np.eye(3)[labels] * 0.7 + 0.1
        names = ["auroc"]  # macro precision/recall/F1 average the classes seen, in both libraries
    else:
        scores = labels
        names = ["r2"]
    undefined = tasks.undefined_metrics(task, y, labels, 3 if task == "multiclass" else None)
    for name in names:
        assert (name not in undefined) == sklearn_defines(name, task, y, scores, labels), (name, undefined)
