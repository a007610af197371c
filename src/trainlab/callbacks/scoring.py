"""One scoring pass over the test split after `test`: the tested model's scores and the split's targets,
computed once (in slices of the data's eval_batch_size) and shared by metrics.json and the report."""

from dataclasses import dataclass

import lightning.pytorch as pl
import numpy as np
import torch

from trainlab import tasks


@dataclass
class Scored:
    member_scores: torch.Tensor  # [members, N] or [members, N, classes]: each member alone
    scores: np.ndarray  # the model's (an ensemble's mean), as metrics score them
    predicted: np.ndarray  # class indices, or values
    y: np.ndarray

    def undefined(self, task: str, num_classes: int | None) -> dict[str, str]:
        return tasks.undefined_metrics(task, self.y, self.predicted, num_classes)


class TestScores(pl.Callback):
    """Holds the test split's scores of the model just tested; `of(trainer)` finds it among the callbacks."""

    def __init__(self):
        self._scored: Scored | None = None

    @staticmethod
    def of(trainer: pl.Trainer) -> "TestScores":
        return next(c for c in trainer.callbacks if isinstance(c, TestScores))

    def on_test_start(self, trainer, pl_module) -> None:
        self._scored = None

    def scored(self, trainer, pl_module) -> Scored:
        if self._scored is None:
            self._scored = score_split(trainer.datamodule, pl_module, "test")
        return self._scored


def score_split(data, module, split: str) -> Scored:
    """The module's scores on one of the data's splits, in slices of its eval_batch_size."""
    X, y = data.splits[split]
    step = getattr(data, "eval_batch_size", len(y)) or len(y)
    was_training = module.training
    module.eval()
    with torch.inference_mode():
        parts = [
            tasks.metric_inputs(module.task, module.net(X[i : i + step].to(module.device)))
            for i in range(0, len(y), step)
        ]
    module.train(was_training)
    member_scores = torch.cat(parts, dim=1) if parts else torch.empty(0)
    scores = member_scores.mean(0)
    return Scored(
        member_scores=member_scores,
        scores=scores.cpu().numpy(),
        predicted=tasks.predicted_labels(module.task, scores).cpu().numpy(),
        y=y.cpu().numpy(),
    )
