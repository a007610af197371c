"""How a model of one unit is evaluated (a pack of several units: trainlab.models.slots): each batch's loss
and metric inputs are accumulated, and the epoch's values computed once, at its end, for MLPModule to log.

A stage's collections are built the first time it evaluates, on the batch's device: a fit that never tests
builds no test metrics, and a scikit-learn fit no metric it does not log (a collection costs ~5 ms to build,
a tenth of a small fit). Every rank evaluates the whole split (see TabularDataModule._eval_loader), so nothing
needs synchronising across ranks."""

import torch
from torchmetrics import MeanMetric

from trainlab import tasks

THIN = "val_thin"  # the collection of a thin validation epoch: the essentials only (MLPModule.log_val_metrics)


class Evaluation(torch.nn.Module):
    def __init__(self, task: str, num_classes: int | None):
        super().__init__()
        self.task, self.num_classes = task, num_classes
        self.held_out = "val"  # the per-epoch split's name (MLPModule.name_held_out)
        self.metrics = torch.nn.ModuleDict()  # per stage ("val", "test", THIN); torchmetrics keeps them apart
        self.losses = torch.nn.ModuleDict()  # per stage: the mean loss over the split's rows
        self._updating: dict[str, str] = {}  # per stage in an epoch: the key of the collection it updates

    def name_held_out(self, split: str) -> None:
        """Name the per-epoch evaluation's values after `split` ("test" when there is no validation split)."""
        self.held_out = split
        for key in ("val", THIN):  # their keys carry the old name
            if key in self.metrics:
                del self.metrics[key]

    def _collection(self, module, stage: str, device: torch.device) -> str:
        """The key of the metrics this epoch of `stage` updates: all of the task's, or the essentials in a thin
        epoch (built here the first time)."""
        key, names = stage, None
        if stage == "val" and module.thin_val_epoch():
            key = THIN
            always = module.val_metrics_always
            names = tuple(n for n in tasks.METRIC_NAMES[self.task] if f"{self.held_out}/{n}" in always)
            if key in self.metrics and names != tuple(self.metrics[key].keys(keep_base=True)):
                del self.metrics[key]  # the essentials changed (log_val_metrics)
        if key not in self.metrics:
            prefix = f"{self.held_out if stage == 'val' else stage}/"
            made = tasks.make_metrics(self.task, self.num_classes, prefix, names, sync_on_compute=False)
            self.metrics[key] = made.to(device)
        return key

    def update(self, module, batch, stage: str) -> None:
        """Accumulate one batch (only: the epoch's values are computed once, at its end)."""
        loss, scores, y = module.model_step(batch)
        if stage not in self.losses:
            self.losses[stage] = MeanMetric(sync_on_compute=False).to(loss.device)
        self.losses[stage].update(loss.detach(), weight=len(y))
        target = y.long() if self.task != "regression" else y
        key = self._updating.get(stage)
        if key is None:  # the epoch's first batch
            key = self._updating[stage] = self._collection(module, stage, scores.device)
        self.metrics[key].update(scores, target)

    def end_epoch(self, stage: str, module) -> dict:
        """The epoch's values, to log; the accumulated state is reset."""
        key = self._updating.pop(stage, None)
        if key is None:  # no batch was evaluated
            return {}
        name = self.held_out if stage == "val" else stage
        metrics = self.metrics[key]
        values = {f"{name}/loss": self.losses[stage].compute(), **metrics.compute()}
        self.losses[stage].reset()
        metrics.reset()
        return values
