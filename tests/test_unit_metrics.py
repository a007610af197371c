"""trainlab.unit_metrics computes many units' held-out metrics at once: each unit's values must be those
of torchmetrics (the reference the single-model path uses, itself compared with scikit-learn) on its own rows."""

import pytest
import torch

from trainlab import tasks
from trainlab.unit_metrics import unit_metrics


def reference(task: str, scores, y, num_classes) -> dict[str, float]:
    metrics = tasks.make_metrics(task, num_classes)
    metrics.update(scores, y.long() if task != "regression" else y)
    return {name: float(value) for name, value in metrics.compute().items()}


def units(task: str, counts: list[int], classes: int, ties: bool, seed: int):
    """Scores and targets of len(counts) units padded to the longest, with the real-row mask."""
    g = torch.Generator().manual_seed(seed)
    n = max(counts)
    if task == "regression":
        y = torch.randn(len(counts), n, generator=g)
        scores = y + 0.5 * torch.randn(len(counts), n, generator=g)
    elif task == "binary":
        y = (torch.rand(len(counts), n, generator=g) < 0.4).float()
        scores = (0.3 * y + 0.7 * torch.rand(len(counts), n, generator=g)).clamp(0, 1)
    else:
        y = torch.randint(0, classes, (len(counts), n), generator=g)
        scores = torch.softmax(
            torch.randn(len(counts), n, classes, generator=g) + 2 * torch.nn.functional.one_hot(y, classes), -1
        )
    if ties:
        scores = (scores * 4).round() / 4  # a few distinct values: many ties in the ranks
    real = torch.arange(n)[None, :] < torch.tensor(counts)[:, None]
    return scores, y, real


@pytest.mark.parametrize("task", tasks.TASKS)
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.filterwarnings("ignore:No (positive|negative) samples")  # torchmetrics' AUROC of one class
def test_each_units_metrics_are_torchmetrics_on_its_own_rows(task, ties):
    classes = 4
    counts = [50, 7, 200, 1, 33] if task != "regression" else [50, 7, 200, 2, 33]
    for seed in range(3):
        scores, y, real = units(task, counts, classes, ties, seed)
        if task == "multiclass":
            y[1, :7] = 0  # a unit that holds one class only
            y[4, y[4] == 3] = 2  # and one without the last class
        if task == "binary":
            y[1, :7] = 1  # a unit without negatives
        got = unit_metrics(task, scores, y, real, tasks.METRIC_NAMES[task], classes)
        for unit, count in enumerate(counts):
            expected = reference(task, scores[unit, :count], y[unit, :count], classes)
            assert got[unit].keys() == expected.keys()
            for name, value in expected.items():
                assert got[unit][name] == pytest.approx(value, abs=1e-5), (task, ties, unit, name)


def test_only_the_metrics_asked_for_are_computed_and_constant_targets_follow_torchmetrics():
    y = torch.tensor([[1.0, 1.0, 1.0, 0.0], [0.5, 1.5, 2.5, 3.5]])
    scores = torch.tensor([[1.0, 1.0, 1.0, 9.0], [0.5, 1.5, 2.5, 3.5]])
    real = torch.tensor([[True, True, True, False], [True, True, True, True]])
    got = unit_metrics("regression", scores, y, real, ["r2", "mae"])
    assert [list(g) for g in got] == [["r2", "mae"], ["r2", "mae"]]
    assert got[0]["r2"] == reference("regression", scores[0, :3], y[0, :3], None)["r2"] == 1.0  # exact, constant
    assert got[1]["r2"] == 1.0 and got[1]["mae"] == 0.0
