"""A pack with several units (the folds of a packed cross-validation, the trials of a tuning population, or
both: a unit is one (trial, slot)): each unit is evaluated on its slot's splits, watched on its own monitored
metric, stopped early (or pruned) on its own (its members are then frozen) and keeps its own best weights, as
its separate run would with Lightning's EarlyStopping and ModelCheckpoint. Nothing is logged through
Lightning here: the per-unit values are kept for the callback that writes each unit's run directory
(trainlab.callbacks.slots). In a packed cv units are slots; lists below indexed by "slot" are per unit.
The per-epoch metrics of all units are computed at once (trainlab.unit_metrics); the test's, once per fit,
by one torchmetrics collection per unit (which also keeps each unit's scores for its predictions)."""

import math

import torch

from trainlab import tasks
from trainlab.unit_metrics import unit_metrics


class SlotEvaluation:
    def __init__(self, module):
        h = module.hparams
        self.task, self.slots, self.ensemble = module.task, module.units, h.ensemble
        self.member_slots = torch.tensor(module.member_units)  # each member's unit
        self.data_slots = torch.tensor([unit % h.slots for unit in range(module.units)])  # each unit's data slot
        self.num_classes = h.num_classes
        self.held_out = "val"  # the per-epoch split's name (MLPModule.name_held_out)
        self.test_metrics = self._collections("test")
        self.values: dict[str, list[dict[str, float]]] = {}  # per stage, per slot: the last epoch's values
        self.predictions: list[dict] = []  # per slot after a test: scores and targets of its test split
        self.configure()

    def _collections(self, prefix: str) -> list:
        options = {"prefix": f"{prefix}/", "sync_on_compute": False}
        return [tasks.make_metrics(self.task, self.num_classes, **options) for _ in range(self.slots)]

    def name_held_out(self, split: str) -> None:
        """Name the per-epoch evaluation's values after `split` ("test" when there is no validation split)."""
        self.held_out = split

    def configure(self, monitor: str = "val/loss", mode: str = "min", patience: int | None = None, min_delta=0.0):
        """What each slot watches: `monitor` in `mode`; early stopping after `patience` validations without
        an improvement of more than `min_delta` (None: no early stopping)."""
        self.monitor, self.mode, self.patience, self.min_delta = monitor, mode, patience, min_delta
        self.reset_tracking()

    def reset_tracking(self) -> None:
        worst = math.inf if self.mode == "min" else -math.inf
        self.best = [worst] * self.slots  # the best checkpoint's value (any improvement), as ModelCheckpoint
        self.best_epoch: list[int | None] = [None] * self.slots  # 0-based, as Lightning counts
        self.stopping_best = [worst] * self.slots  # early stopping's reference (improvements > min_delta)
        self.wait = [0] * self.slots
        self.stopped_epoch: list[int | None] = [None] * self.slots  # the last epoch a stopped slot trained
        self.best_state: dict[str, torch.Tensor] | None = None

    # --- evaluation ---------------------------------------------------------------------------------
    def update(self, module, batch, stage: str) -> None:
        if len(batch) == 3:  # the data's slots: [S, B, ...], [S, B], [S]
            x, y, counts = batch
            logits = module.net(x.index_select(0, torch.tensor(module.member_slots, device=x.device)), None)
            data_slots = self.data_slots.to(x.device)
            y, counts = y.index_select(0, data_slots), counts.index_select(0, data_slots)  # per unit
        else:  # one split that every unit shares (a population without folds): [B, ...], [B]
            x, y = batch[0], batch[1]
            logits = module.net(x, None)
            y = y.expand(self.slots, *y.shape)
            counts = torch.full((self.slots,), len(x), device=x.device)
        scores = tasks.metric_inputs(self.task, logits)
        if self.ensemble > 1:
            scores = scores.view(self.slots, self.ensemble, *scores.shape[1:]).mean(1)
            rows = tasks.loss_of_scores(self.task, module.member_criterion, scores, y)
            real = torch.arange(y.shape[1], device=y.device) < counts[:, None]
            losses = (rows * real).sum(1) / counts.clamp(min=1)
        else:
            losses = module.member_losses(logits, y, counts)
        if not hasattr(self, "_loss_sum"):
            self._start_epoch(x.device)
        self._loss_sum += losses.detach() * counts
        self._rows += counts
        if stage != "test":  # kept for unit_metrics at the epoch's end: all units at once
            real = torch.arange(y.shape[1], device=y.device) < counts[:, None]
            self._held.append((scores.detach(), y, real))
            return
        for slot in range(self.slots):
            n = int(counts[slot])
            if n == 0:
                continue
            target = y[slot, :n].long() if self.task != "regression" else y[slot, :n]
            self.test_metrics[slot].update(scores[slot, :n].detach().cpu(), target.cpu())
            self._kept[slot].append((scores[slot, :n].detach().cpu(), y[slot, :n].cpu()))

    def _held_out_values(self, module) -> list[dict[str, float]]:
        """Per slot, this epoch's held-out metrics: all of them, or in a thin validation epoch only the
        essentials (the headline metric and the monitored one, as MLPModule.log_val_metrics says)."""
        names = tasks.METRIC_NAMES[self.task]
        if module.thin_val_epoch():
            names = [name for name in names if f"{self.held_out}/{name}" in module.val_metrics_always]
        scores, y, real = (torch.cat(parts, dim=1) for parts in zip(*self._held, strict=True))
        values = unit_metrics(self.task, scores, y, real, names, self.num_classes)
        return [{f"{self.held_out}/{name}": value for name, value in unit.items()} for unit in values]

    def _start_epoch(self, device) -> None:
        self._loss_sum = torch.zeros(self.slots, device=device)
        self._rows = torch.zeros(self.slots, device=device)
        self._held: list[tuple] = []
        self._kept: list[list] = [[] for _ in range(self.slots)]

    def end_epoch(self, stage: str, module) -> dict:
        """The epoch's values per slot (kept in `values[stage]`); in fit, each slot's watch is updated."""
        if not hasattr(self, "_loss_sum"):
            return {}
        losses = (self._loss_sum / self._rows.clamp(min=1)).tolist()
        name = self.held_out if stage == "val" else stage
        per_slot = [{f"{name}/loss": loss} for loss in losses]
        if stage != "test":
            for values, metrics in zip(per_slot, self._held_out_values(module), strict=True):
                values.update(metrics)
        else:
            for values, metrics in zip(per_slot, self.test_metrics, strict=True):
                values.update({k: float(v) for k, v in metrics.compute().items()})
                metrics.reset()
            self.predictions = [
                {"scores": torch.cat([s for s, _ in kept]).numpy(), "target": torch.cat([t for _, t in kept]).numpy()}
                for kept in self._kept
            ]
            for values, part in zip(per_slot, self.predictions, strict=True):  # null what the split cannot define
                predicted = tasks.predicted_labels(module.task, torch.from_numpy(part["scores"])).numpy()
                for name in tasks.undefined_metrics(module.task, part["target"], predicted, module.hparams.num_classes):
                    if f"test/{name}" in values:
                        values[f"test/{name}"] = None
        del self._loss_sum
        trainer = module.trainer
        if stage == "val" and trainer.state.fn == "fit" and not trainer.sanity_checking:
            train = module.member_train_loss().view(self.slots, self.ensemble).mean(1).tolist()
            for slot in range(self.slots):
                per_slot[slot]["train/loss"] = train[slot]
            self._watch(module, per_slot)
        self.values[stage] = per_slot
        return {}

    # --- early stopping and best weights, per slot -------------------------------------------------
    def _better(self, value: float, reference: float, margin: float = 0.0) -> bool:
        return value < reference - margin if self.mode == "min" else value > reference + margin

    def _watch(self, module, per_slot: list[dict]) -> None:
        epoch = module.current_epoch
        improved = []
        for slot in range(self.slots):
            if self.stopped_epoch[slot] is not None:
                continue
            value = per_slot[slot].get(self.monitor, math.nan)
            if math.isfinite(value) and self._better(value, self.best[slot]):
                self.best[slot], self.best_epoch[slot] = value, epoch
                improved.append(slot)
            if self.patience is None:
                continue
            if math.isfinite(value) and self._better(value, self.stopping_best[slot], self.min_delta):
                self.stopping_best[slot], self.wait[slot] = value, 0
            else:
                self.wait[slot] += 1
                if self.wait[slot] >= self.patience or not math.isfinite(value):
                    self.stopped_epoch[slot] = epoch
                    module.frozen |= (self.member_slots == slot).to(module.frozen.device)
        if improved:
            self._keep_best(module, improved)
        if all(e is not None for e in self.stopped_epoch):
            module.trainer.should_stop = True

    def stop(self, module, units: list[int], epoch: int) -> None:
        """Stop `units` after `epoch` (pruned, or diverged): their members are frozen from now on; the pack
        stops when every unit has."""
        for unit in units:
            if self.stopped_epoch[unit] is None:
                self.stopped_epoch[unit] = epoch
                module.frozen |= (self.member_slots == unit).to(module.frozen.device)
        if all(e is not None for e in self.stopped_epoch):
            module.trainer.should_stop = True

    def _keep_best(self, module, slots: list[int]) -> None:
        state = module.net.state_dict()
        if self.best_state is None:
            self.best_state = {name: value.detach().clone() for name, value in state.items()}
            return
        members = torch.isin(self.member_slots, torch.tensor(slots))
        for name, value in state.items():
            rows = members.to(value.device).view(-1, *[1] * (value.dim() - 1))
            self.best_state[name].copy_(torch.where(rows, value, self.best_state[name]))

    def restore_best(self, module) -> None:
        """Put each slot's best weights back (those of its best epoch): what `run.test_ckpt best` tests."""
        if self.best_state is not None:
            module.net.load_state_dict(self.best_state)

    def trained_epochs(self, slot: int, epochs: int) -> int:
        """How many epochs `slot` trained, of the `epochs` the pack ran."""
        stopped = self.stopped_epoch[slot]
        return epochs if stopped is None else stopped + 1

    # --- checkpoints (a resumed pack continues each slot's watch) --------------------------------------
    def state_dict(self) -> dict:
        keys = ("best", "best_epoch", "stopping_best", "wait", "stopped_epoch")
        return {**{k: list(getattr(self, k)) for k in keys}, "best_state": self.best_state}

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)
