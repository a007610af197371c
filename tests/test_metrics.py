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
