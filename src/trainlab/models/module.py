"""The LightningModule: the MLP plus the task's loss, metrics, optimizer and scheduler."""

import math
from collections.abc import Iterable

import lightning.pytorch as pl
import torch
from lightning.pytorch.strategies import SingleDeviceStrategy

from trainlab import rules, tasks
from trainlab.errors import require
from trainlab.models import divergence
from trainlab.models.evaluation import Evaluation
from trainlab.models.lean_step import StepPath, can_be_lean
from trainlab.models.mlp import ACTIVATIONS
from trainlab.models.optim import ALGORITHMS as OPTIMIZERS
from trainlab.models.optim import PackedOptimizer, clip_gradients
from trainlab.models.packed import PackedMLP
from trainlab.models.slots import SlotEvaluation
from trainlab.rules import Activation, Init, Loss, Optimizer, Scheduler

# The settings a member of a population may hold on its own: none changes a shape or the data.
MEMBER_SETTINGS = rules.MEMBER


class MLPModule(pl.LightningModule):
    """An MLP trained for one task. `input_dim`, `task` and `num_classes` come from the data module.

    Args:
        input_dim: number of input features (linked from the data).
        task: binary, multiclass or regression (linked from the data).
        num_classes: number of classes; None for regression (linked from the data).
        hidden_dims: widths of the hidden layers.
        activation: relu, leaky_relu, gelu, tanh or sigmoid.
        dropout: dropout probability after each hidden layer, in [0, 1).
        batch_norm: batch normalisation after each hidden linear layer.
        init: weight initialisation: default (PyTorch's), xavier or kaiming.
        loss: auto (bce, cross_entropy or mse by task), or l1 / huber for regression.
        optimizer: sgd, adam, adamw or rmsprop.
        lr: learning rate, > 0.
        weight_decay: L2 penalty through the optimizer, >= 0.
        momentum: momentum (sgd and rmsprop).
        nesterov: Nesterov momentum (sgd; needs momentum > 0).
        l1_penalty: coefficient of the L1 norm of the weights added to the training loss, >= 0.
        scheduler: None, plateau (ReduceLROnPlateau on val/loss), step (StepLR) or cosine (CosineAnnealingLR).
        step_size: StepLR's period in epochs.
        gamma: the factor StepLR and ReduceLROnPlateau multiply the learning rate by.
        plateau_patience: epochs without improvement before ReduceLROnPlateau lowers the rate.
        cosine_epochs: CosineAnnealingLR's T_max in epochs; None: the run's max_epochs.
        gradient_clip_val: clip gradients to this norm (or value) before each step; None: no clipping.
        gradient_clip_algorithm: norm (the global L2 norm) or value (each element).
        ensemble: train this many members at once, each from its own seed (seed_everything, + 1, ...)
            and in its own shuffled order; the model predicts their mean probability (mean value for
            regression) and is evaluated, checkpointed and stopped early as one model.
        slots: the data's slots (linked from the data: one per fold when trainlab cv packs its folds).
        seeds: each slot's first seed (set by trainlab cv); null: the run's seed_everything.
        population: the settings of each trial of a tuning population (set by trainlab tune): one mapping
            per trial from any of lr, weight_decay, momentum, dropout, l1_penalty, gradient_clip_val to its
            value (the others are this module's own). Every trial trains on every slot; each (trial, slot)
            is a unit that is evaluated, stopped and kept on its own. null: one trial, this module's settings.

    The network is a pack (trainlab.models.packed): slots x ensemble members with stacked weights, trained
    by one batched forward and backward per step; an ordinary fit is a pack of one. Training takes the
    optimizer steps itself (Lightning's manual optimization): each training_step call receives a list of
    mini-batches and steps once per mini-batch, so Lightning's per-call overhead is paid once per group
    (see TabularDataModule.batches_per_step). Gradient clipping and the learning-rate schedulers are
    therefore applied here, not by the Trainer. With several slots each slot is evaluated, stopped early
    and keeps its best weights on its own (trainlab.models.slots).
    """

    key = "model.init_args"  # where this module's arguments live in a config, for error messages

    def __init__(
        self,
        input_dim: int,
        task: tasks.Task,
        num_classes: int | None = None,
        hidden_dims: list[int] = [64, 64],  # noqa: B006 (jsonargparse shows list defaults; never mutated)
        activation: Activation = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
        init: Init = "default",
        loss: Loss = "auto",
        optimizer: Optimizer = "adam",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        nesterov: bool = False,
        l1_penalty: float = 0.0,
        scheduler: Scheduler | None = None,
        step_size: int = 30,
        gamma: float = 0.1,
        plateau_patience: int = 10,
        cosine_epochs: int | None = None,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: rules.ClipAlgorithm = "norm",
        ensemble: int = 1,
        slots: int = 1,
        seeds: list[int] | None = None,
        population: list[dict] | None = None,
    ):
        super().__init__()
        k = self.key
        require(task in tasks.TASKS, f"{k}.task", task, "binary, multiclass or regression")
        require(input_dim >= 1, f"{k}.input_dim", input_dim, "an integer >= 1")
        if task == "multiclass":
            require(
                num_classes is not None and num_classes >= 2,
                f"{k}.num_classes",
                num_classes,
                "an integer >= 2 for multiclass",
            )
        require(activation in ACTIVATIONS, f"{k}.activation", activation, f"one of {', '.join(ACTIVATIONS)}")
        require(optimizer in OPTIMIZERS, f"{k}.optimizer", optimizer, f"one of {', '.join(OPTIMIZERS)}")
        require(slots >= 1, f"{k}.slots", slots, "an integer >= 1")
        require(
            (slots == 1 and not population) or scheduler != "plateau",
            f"{k}.scheduler",
            scheduler,
            "step, cosine or null when folds train as one pack (plateau watches one validation loss; --no-pack)",
        )
        require(seeds is None or len(seeds) == slots, f"{k}.seeds", seeds, f"null or one seed per slot ({slots})")
        require(
            population is None or (isinstance(population, list) and len(population) >= 1),
            f"{k}.population",
            population,
            "null or a non-empty list of per-trial settings",
        )
        own = {"lr": lr, "weight_decay": weight_decay, "momentum": momentum, "dropout": dropout}
        own.update(l1_penalty=l1_penalty, gradient_clip_val=gradient_clip_val)
        shapes = {"hidden_dims": hidden_dims, "ensemble": ensemble, "step_size": step_size}
        rules.check(k, rules.MODEL, {**shapes, "plateau_patience": plateau_patience, "cosine_epochs": cosine_epochs})
        _check_settings(k, own, optimizer, nesterov)
        for index, entry in enumerate(population or []):
            where = f"{k}.population[{index}]"
            require(isinstance(entry, dict), where, entry, f"a mapping from {', '.join(MEMBER_SETTINGS)} to values")
            for name in entry:
                require(
                    name in MEMBER_SETTINGS, f"{where}.{name}", entry[name], f"a key of {', '.join(MEMBER_SETTINGS)}"
                )
            _check_settings(where, {**own, **entry}, optimizer, nesterov)
        rules.check_joint(k, rules.GAMMA, {"gamma": gamma, "scheduler": scheduler})
        fitting = tasks.LOSSES[task]
        loss = fitting[0] if loss == "auto" else loss
        require(loss in fitting, f"{k}.loss", loss, f"for task {task}: auto or {', '.join(fitting)}")
        self.save_hyperparameters()
        self.automatic_optimization = False  # training_step steps the optimizer once per mini-batch

        self.task = task
        base = seeds if seeds is not None else [torch.initial_seed() % 2**31] * slots
        # Members in order (trial, slot, ensemble member); a unit is one (trial, slot): unit = trial * slots + slot.
        self.units = len(population or [None]) * slots
        self.member_units = [unit for unit in range(self.units) for _ in range(ensemble)]
        self.member_slots = [unit % slots for unit in self.member_units]  # the data slot each member trains on
        self.member_seeds = [base[unit % slots] + e for unit in range(self.units) for e in range(ensemble)]
        self.net = PackedMLP(
            self.member_seeds,
            input_dim,
            tasks.output_dim(task, num_classes),
            hidden_dims,
            activation,
            self.member_settings("dropout"),
            batch_norm,
            init,
        )
        self.criterion = tasks.make_loss(loss)
        self.member_criterion = tasks.make_loss(loss, reduction="none")
        # One unit is evaluated as one model (its values logged through Lightning); several units each on
        # their own (trainlab.models.slots).
        self.evaluation = Evaluation(task, num_classes) if self.units == 1 else SlotEvaluation(self)
        self.diverged: dict[int, str] = {}  # population units stopped by a non-finite loss: why
        # The split Lightning's validation loop evaluates every epoch, and the name its numbers are logged under:
        # "val", or "test" when the data has no validation split (see name_held_out).
        self.held_out = "val"
        self._steps: StepPath | None = None  # set when training starts
        self.frozen = torch.zeros(self.members, dtype=torch.bool)  # members stopped early (several slots)
        self.log_val_metrics()

    @property
    def members(self) -> int:
        return len(self.member_seeds)

    @property
    def slot_evaluation(self) -> SlotEvaluation | None:
        """The per-unit evaluation of a pack of several units; None for one unit."""
        return self.evaluation if self.units > 1 else None

    def member_settings(self, name: str) -> list:
        """Each member's value of one of MEMBER_SETTINGS: its trial's (population), else the module's own."""
        trials, slots = self.hparams.population or [{}], self.hparams.slots
        return [trials[unit // slots].get(name, self.hparams[name]) for unit in self.member_units]

    def unit_settings(self, unit: int) -> dict:
        """The hyperparameters of `unit` trained alone: its trial's settings, one slot, no population."""
        trials = self.hparams.population or [{}]
        return {**self.hparams, **trials[unit // self.hparams.slots], "slots": 1, "seeds": None, "population": None}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Every member's logits: [K, B, out] for x [B, in] (shared) or [K, B, in] (one batch per member)."""
        return self.net(x)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """What the model predicts for x [B, in]: the members' mean probability (binary), class
        probabilities (multiclass) or value (regression)."""
        return tasks.metric_inputs(self.task, self.net(x)).mean(0)

    def model_step(self, batch):
        """Shared by evaluation and prediction: (loss, scores, targets) of the whole model on (x, y, ...)."""
        x, y = batch[0], batch[1]
        logits = self.net(x)  # not self(x): LightningModule.__call__ costs more than this model's forward
        if self.members == 1:  # the loss from the logits (numerically the best)
            logits = logits[0]
            return self.criterion(tasks.loss_inputs(self.task, logits), y), tasks.metric_inputs(self.task, logits), y
        scores = tasks.metric_inputs(self.task, logits).mean(0)
        return tasks.loss_of_scores(self.task, self.member_criterion, scores, y).mean(), scores, y

    def member_losses(self, logits: torch.Tensor, y: torch.Tensor, counts: torch.Tensor | None) -> torch.Tensor:
        """Each member's mean training loss on its own rows: [K]. `counts` (or None: all) are the real rows."""
        members, rows = y.shape[0], y.shape[1]
        if self.task == "multiclass":
            losses = self.member_criterion(logits.reshape(members * rows, -1), y.reshape(-1)).view(members, rows)
        else:
            losses = self.member_criterion(logits.squeeze(-1), y)
        if counts is None:
            return losses.mean(1)
        real = torch.arange(rows, device=y.device) < counts[:, None]
        return (losses * real).sum(1) / counts.clamp(min=1)

    def training_step(self, batches, batch_idx):
        """One optimizer step per mini-batch of `batches` (each member's batches side by side: [K, B, ...]);
        the epoch's mean loss is logged as train/loss (the members' mean)."""
        optimizer = self.optimizers()
        trainer = self.trainer
        if trainer.max_steps >= 0:  # max_steps stays exact although one call takes several steps
            batches = batches[: max(trainer.max_steps - trainer.global_step, 0)]
        if not batches:
            return
        steps = self._steps
        epoch = self._epoch  # a plain dict: assigning module attributes costs microseconds each, per step
        loss_before, rows_before = epoch["loss"].sum(), epoch["rows"].sum()
        moving = self._moving  # the members that train this epoch (None: all of them)
        for x, y, counts in batches:
            if moving is None:
                losses = self.member_losses(self.net(x, counts), y, counts)
            else:  # members that stopped cost nothing: the others run alone, their losses put back in place
                part = None if counts is None else counts.index_select(0, moving)
                running = self.net(x.index_select(0, moving), part, moving)
                running = self.member_losses(running, y.index_select(0, moving), part)
                losses = torch.zeros(self.members, dtype=running.dtype, device=running.device)
                losses = losses.index_copy(0, moving, running)
            objective = losses.sum()  # each member's gradient is its own loss's
            if not divergence.finite_everywhere(self, objective):  # checked before the step: a bad one is never taken
                if self.hparams.population is None:
                    divergence.fail(self, losses, optimizer, epoch["last"])
                losses = divergence.stop_units(self, losses)
                self._any_frozen = True
                objective = losses.sum()
            steps.zero_grad(optimizer)
            if self._l1 is not None:
                l1 = self._l1 if moving is None else self._l1.index_select(0, moving)
                objective = objective + (l1 * self.net.l1_norms(moving)).sum()
            steps.backward(objective)
            if self._clip is not None:
                clip_gradients(self.net.flat.grad, self._clip, self.hparams.gradient_clip_algorithm)
            if counts is None and not self._any_frozen:
                optimizer.optimizer.active = None  # every member moves
            else:
                stepping = ~self.frozen.cpu() if counts is None else (counts.cpu() > 0) & ~self.frozen.cpu()
                optimizer.optimizer.active = stepping.nonzero().flatten().tolist()
            steps.step(optimizer)
            losses = losses.detach()
            if counts is None and moving is None:  # every member trained on a full batch (two ops, not four)
                epoch["loss"].add_(losses, alpha=y.shape[1])
                epoch["rows"].add_(y.shape[1])
            else:  # train/loss: the mean over the rows of the members that train
                rows = torch.full_like(losses, y.shape[1]) if counts is None else counts.to(losses.dtype)
                rows = rows if moving is None else rows * self._trains
                epoch["loss"] += losses * rows
                epoch["rows"] += rows
            epoch["last"] = losses
        # train/loss: the mean over every member's training rows; Lightning averages the groups' values
        # weighted by their rows at the epoch's end (under DDP over every rank's rows too)
        rows = epoch["rows"].sum() - rows_before
        mean = (epoch["loss"].sum() - loss_before) / rows
        self.log("train/loss", mean, on_step=False, on_epoch=True, batch_size=int(rows), sync_dist=True)

    def on_train_epoch_start(self):
        last = self._epoch["last"] if hasattr(self, "_epoch") else None
        zeros = torch.zeros(self.members, device=self.device)
        self._epoch = {"loss": zeros, "rows": zeros.clone(), "last": last}
        self._any_frozen = bool(self.frozen.any())
        self.net.resting = self.frozen.tolist()  # a stopped member's dropout masks would never be used
        self._trains = (~self.frozen).to(self.device, torch.float32)  # 1 for a member that trains this epoch
        self._moving = (~self.frozen).nonzero().flatten().to(self.device) if self._any_frozen else None

    def member_train_loss(self) -> torch.Tensor:
        """This epoch's mean training loss of each member so far: [K]."""
        return self._epoch["loss"] / self._epoch["rows"].clamp(min=1)

    # A resumed fit continues the random streams (the members' dropout generators, torch's own for anything
    # else) where the checkpoint left them, so that on the CPU with a fixed seed it ends exactly where an
    # uninterrupted fit would (the data order is a function of (seeds, epoch)); stopped members stay frozen.
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["torch_rng_state"] = torch.get_rng_state()
        checkpoint["dropout_rng_states"] = self.net.generator_states()
        checkpoint["frozen"] = self.frozen.tolist()
        if self.slot_evaluation is not None:
            checkpoint["slots"] = self.slot_evaluation.state_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        resuming = self._trainer is not None and self.trainer.state.fn == "fit"
        if resuming and "torch_rng_state" in checkpoint:
            torch.set_rng_state(checkpoint["torch_rng_state"])
        if resuming and "dropout_rng_states" in checkpoint:
            self.net.set_generator_states(checkpoint["dropout_rng_states"])
        if resuming and "frozen" in checkpoint:
            self.frozen = torch.tensor(checkpoint["frozen"], dtype=torch.bool)
        if self.slot_evaluation is not None and "slots" in checkpoint:
            self.slot_evaluation.load_state_dict(checkpoint["slots"])

    def on_train_start(self):
        trainer = self.trainer
        scaler = getattr(trainer.precision_plugin, "scaler", None)
        # In manual optimization a gradient scaler unscales inside optimizer.step(), after we would clip.
        require(
            self.hparams.gradient_clip_val is None or scaler is None,
            f"{self.key}.gradient_clip_val",
            self.hparams.gradient_clip_val,
            "null under 16-bit mixed precision; clip with bf16-mixed or 32-true",
        )
        self._steps = StepPath(self, lean=can_be_lean(self, trainer))  # see trainlab.models.lean_step
        self.net.write_gradients_in_place = self._steps.lean  # one device, nothing hooked on the parameters
        l1, clip = self.member_settings("l1_penalty"), self.member_settings("gradient_clip_val")
        self._l1 = torch.tensor(l1, device=self.device) if any(v > 0 for v in l1) else None
        # a member without clipping among clipped ones is clipped to inf: its gradient is left exactly as it is
        unclipped = all(v is None for v in clip)
        self._clip = None if unclipped else torch.tensor([math.inf if v is None else v for v in clip])
        self.frozen = self.frozen.to(self.device)

    def check_devices(self, trainer: pl.Trainer) -> None:
        """A pack of several members trains on one device (data parallelism would shard each member's rows)."""
        require(
            self.members == 1 or type(trainer.strategy) is SingleDeviceStrategy,
            f"{self.key}.ensemble",
            self.hparams.ensemble,
            f"1 with trainer.strategy {type(trainer.strategy).__name__} (a pack of members trains on one device; "
            "run several packs side by side with --workers instead)",
        )

    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        """Batches already on the device (the CPU, or data kept on the accelerator) stay as they are: Lightning's
        generic walk through a group of mini-batches costs more than a small model's step."""
        first = batch[0][0] if isinstance(batch, list) else batch[0]
        if first.device == device:
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def setup(self, stage: str) -> None:
        data = self.trainer.datamodule if self._trainer is not None else None
        if data is not None and hasattr(data, "serve_members"):
            data.serve_members(list(zip(self.member_slots, self.member_seeds, strict=True)))
        if data is not None and hasattr(data, "validation_split"):
            self.name_held_out(data.validation_split)

    def l1_norm(self) -> torch.Tensor:
        """The L1 norm of the linear layers' weights (not biases, not batch norm), summed over members."""
        return self.net.l1_norms().sum()

    # Manual optimization: Lightning leaves the schedulers to us. Epoch schedulers step after each training
    # epoch; ReduceLROnPlateau steps on each validation's fresh val/loss (see on_validation_epoch_end).
    def _schedulers(self, plateau: bool) -> list:
        schedulers = self.lr_schedulers()
        schedulers = schedulers if isinstance(schedulers, list) else [schedulers] if schedulers else []
        return [s for s in schedulers if isinstance(s, torch.optim.lr_scheduler.ReduceLROnPlateau) == plateau]

    def on_train_epoch_end(self):
        for scheduler in self._schedulers(plateau=False):
            scheduler.step()

    def name_held_out(self, split: str) -> None:
        """Log the per-epoch evaluation under the name of the split it runs on: `split` is "val", or "test"
        when the data has no validation split (the chapter's setup: the test set evaluated every epoch), so
        that no curve, summary or diagnosis calls the test split "val"."""
        if split != self.held_out:
            self.held_out = split
            self.evaluation.name_held_out(split)

    def log_val_metrics(self, every: int = 1, always: Iterable[str] = ()) -> None:
        """Log the full set of held-out metrics every `every` epochs only; the held-out loss, the headline
        metric (val/accuracy or val/r2, or test/... without a validation split) and the metrics in `always`
        (the monitored one) every epoch.

        Lightning's bookkeeping costs about 0.3 ms per logged value per epoch, and updating and resetting
        the full set of metrics about 0.3 ms more than the essentials alone: on small data, where an epoch takes a few
        milliseconds, a thin epoch is a large saving."""
        self.val_metrics_every, self._always = every, list(always)

    @property
    def val_metrics_always(self) -> set[str]:
        """The held-out metrics logged every epoch (see log_val_metrics)."""
        return {f"{self.held_out}/{tasks.HEADLINE[self.task]}", *self._always}

    def thin_val_epoch(self) -> bool:
        """Whether this validation logs only the essentials (see log_val_metrics): within fit, not last."""
        trainer, epoch = self.trainer, self.current_epoch + 1
        return trainer.state.fn == "fit" and epoch % self.val_metrics_every != 0 and epoch != trainer.max_epochs

    def _log_epoch(self, stage: str) -> dict:
        """The epoch's values, logged through Lightning (several units return none: each keeps its own)."""
        values = self.evaluation.end_epoch(stage, self)
        self.log_dict(values)
        return values

    def validation_step(self, batch, batch_idx):
        self.evaluation.update(self, batch, "val")

    def on_validation_epoch_end(self):
        values = self._log_epoch("val")
        if self.trainer.state.fn == "fit" and not self.trainer.sanity_checking:
            for scheduler in self._schedulers(plateau=True):
                scheduler.step(values["val/loss"])  # plateau needs a validation split (refused without one)

    def test_step(self, batch, batch_idx):
        self.evaluation.update(self, batch, "test")

    def on_test_epoch_end(self):
        self._log_epoch("test")

    def predict_step(self, batch, batch_idx):
        """Per sample: its index in the split, the scores (probability, class probabilities or value), the
        predicted label, and the target."""
        x, y, index = batch
        scores = self.scores(x)
        return {"index": index, "scores": scores, "prediction": tasks.predicted_labels(self.task, scores), "target": y}

    def monitorable(self) -> list[str]:
        """The metric keys a checkpoint or early stopping can watch."""
        return ["train/loss", f"{self.held_out}/loss"] + [f"{self.held_out}/{m}" for m in tasks.METRIC_NAMES[self.task]]

    def configure_optimizers(self):
        h = self.hparams

        def each(name: str) -> list[float]:
            return [float(value) for value in self.member_settings(name)]

        # torch's algorithm, member by member, on the pack's one parameter tensor (see models/optim.py)
        optimizer = PackedOptimizer(
            self.net.flat,
            h.optimizer,
            lr=each("lr"),
            weight_decay=each("weight_decay"),
            momentum=each("momentum") if h.optimizer in ("sgd", "rmsprop") else [0.0] * self.members,
            nesterov=h.nesterov,
        )
        if h.scheduler is None:
            return optimizer
        sched = torch.optim.lr_scheduler
        if h.scheduler == "plateau":
            scheduler = sched.ReduceLROnPlateau(optimizer, factor=h.gamma, patience=h.plateau_patience)
        if h.scheduler == "step":
            scheduler = sched.StepLR(optimizer, step_size=h.step_size, gamma=h.gamma)
        elif h.scheduler == "cosine":
            epochs = h.cosine_epochs or self.trainer.max_epochs
            require(
                epochs is not None and epochs >= 1,
                f"{self.key}.cosine_epochs",
                h.cosine_epochs,
                "an integer >= 1 when trainer.max_epochs does not bound the run",
            )
            scheduler = sched.CosineAnnealingLR(optimizer, T_max=epochs)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


def _check_settings(where: str, values: dict, optimizer: str, nesterov: bool) -> None:
    """The member settings' own rules (a module's, or one trial's of a population)."""
    rules.check(where, rules.MODEL, values)
    rules.check_joint(where, rules.NESTEROV, {**values, "optimizer": optimizer, "nesterov": nesterov})
