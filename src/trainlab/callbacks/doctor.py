"""The training doctor: watches every fit once per epoch and ends it with a verdict (see diagnosis.py)."""

import warnings

import lightning.pytorch as pl
import torch

from trainlab import tasks
from trainlab.callbacks.console import console_print
from trainlab.callbacks.outputs import run_dir
from trainlab.diagnosis import IMBALANCE_RATIO, DoctorOptions, History, diagnose
from trainlab.errors import TrainingFailed, TrainlabWarning
from trainlab.io import write_json_atomic


class TrainingDoctor(pl.Callback):
    """Per epoch, from the last step's gradients and the epoch's weight change (no per-step hooks, so the
    fast training path stays on): the global and per-layer gradient norms and the update-to-weight ratio
    per layer, logged to TensorBoard under grad_norm/ and update_ratio/. At the end of a fit (or when the
    loss turns non-finite) the verdict goes to diagnosis.json and the console."""

    def __init__(
        self,
        thresholds: DoctorOptions | None = None,
        monitor: str = "val/loss",
        early_stopping: bool = False,
        verbose: bool = True,
        write: bool = True,
    ):
        self.thresholds = thresholds or DoctorOptions()
        self.verbose = verbose  # print the verdict
        self.write = write  # write diagnosis.json into the run directory (else the verdict stays in .diagnosis)
        self.monitor = monitor
        self.early_stopping = early_stopping
        self.diagnosis: dict | None = None

    # --- the history survives a resume: it is part of the checkpoint ---------------------------------
    @property
    def state_key(self) -> str:
        return "TrainingDoctor"  # the same for StepwiseDoctor, so a resume may switch between them

    def setup(self, trainer, pl_module, stage):
        if stage == "fit":  # before a checkpoint's state is loaded into it
            self.history = History()
            self.path = run_dir(trainer) / "diagnosis.json" if self.write else None  # every rank: a collective

    def state_dict(self) -> dict:
        return {"history": vars(self.history)} if hasattr(self, "history") else {}

    def load_state_dict(self, state_dict: dict) -> None:
        if "history" in state_dict:
            self.history = History(**state_dict["history"])

    # --- before training: what the data says about the configuration --------------------------------
    def on_fit_start(self, trainer, pl_module):
        self.warnings: list[str] = []
        self.diagnosis = None
        self._weights_at_epoch_start: list[torch.Tensor] = []
        self._grads: dict[str, float] = {}
        self._validated = False
        self.initial_weight_norm = float(pl_module.net.flat.detach().norm())
        data = trainer.datamodule
        self.baseline_loss = None
        if data is not None and "train" in getattr(data, "splits", {}):
            y = data.splits["train"][1]
            self.baseline_loss = constant_prediction_loss(pl_module, y)
            if pl_module.task != "regression" and self.monitor.endswith("accuracy"):
                counts = torch.bincount(y.long(), minlength=data.num_classes)
                if counts.min() < IMBALANCE_RATIO * counts.max():
                    self.warnings.append(
                        f"run.monitor={self.monitor} on imbalanced classes (the rarest is {counts.min() / len(y):.0%} "
                        "of the training samples): accuracy can look good while the rare class is missed; "
                        f"monitor {pl_module.held_out}/f1 or {pl_module.held_out}/auroc"
                    )
        if trainer.is_global_zero:  # a warning, not a print: the CLI shows it as one line, a library user as usual
            for warning in self.warnings:
                warnings.warn(warning, TrainlabWarning, stacklevel=1)

    # --- per epoch -----------------------------------------------------------------------------------
    def on_train_epoch_start(self, trainer, pl_module):
        self._weights_at_epoch_start = [w.detach().clone() for w in linear_weights(pl_module)]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        # After each Lightning step (a group of optimizer steps): the last one before the epoch ends wins.
        # Read here because Lightning clears gradients before validating (on_validation_model_zero_grad).
        grads = linear_weights(pl_module, gradients=True)
        if grads is None:
            return
        weight_norms = torch._foreach_norm(grads)
        norms = torch.stack([*weight_norms, global_grad_norm(pl_module)]).tolist()
        self._grads = {f"grad_norm/linear{i}": norm for i, norm in enumerate(norms[:-1])}
        self._grads["grad_norm/global"] = norms[-1]

    def on_train_epoch_end(self, trainer, pl_module):
        values, self._grads = self._grads, {}
        if not values:
            return  # no step this epoch
        layers = linear_weights(pl_module)
        before = self._weights_at_epoch_start
        changes = torch._foreach_norm(torch._foreach_sub([w.detach() for w in layers], before))
        ratios = torch.stack(changes) / (torch.stack(torch._foreach_norm(before)) + 1e-12)
        for i, ratio in enumerate(ratios.tolist()):  # one host synchronisation for all layers
            values[f"update_ratio/linear{i}"] = ratio
        h = self.history
        h.grad_norm.append(values["grad_norm/global"])
        h.first_layer_grad.append(values["grad_norm/linear0"])
        h.last_layer_grad.append(values[f"grad_norm/linear{len(layers) - 1}"])
        h.update_ratio.append(max(values[f"update_ratio/linear{i}"] for i in range(len(layers))))
        metrics = trainer.callback_metrics  # read once per epoch: computing it costs a fraction of a millisecond
        if "train/loss" in metrics:
            h.train_loss.append(float(metrics["train/loss"]))
        held_out_loss = f"{pl_module.held_out}/loss"  # val/loss, or test/loss without a validation split
        if self._validated and held_out_loss in metrics:
            h.val_loss.append(float(metrics[held_out_loss]))
            h.val_epoch.append(trainer.current_epoch)
        self._validated = False
        if trainer.logger is not None:
            trainer.logger.log_metrics(values, step=trainer.global_step)

    def on_validation_end(self, trainer, pl_module):
        self._validated = not trainer.sanity_checking  # this epoch's held-out loss is fresh

    # --- the verdict ---------------------------------------------------------------------------------
    def on_fit_end(self, trainer, pl_module):
        self._conclude(trainer, pl_module, non_finite=None)

    def on_exception(self, trainer, pl_module, exception):
        if isinstance(exception, TrainingFailed):
            self._conclude(trainer, pl_module, non_finite=exception.report)

    def _conclude(self, trainer, pl_module, non_finite):
        context = {
            "baseline_loss": self.baseline_loss,
            "early_stopping": self.early_stopping,
            "non_finite": non_finite,
            "hparams": dict(pl_module.hparams),
            "held_out": pl_module.held_out,
        }
        data = trainer.datamodule
        if non_finite is None and data is not None and getattr(data, "splits", None):
            context["dead_fraction"] = dead_relu_fraction(pl_module, data.splits["train"][0])
            context["classes"] = rare_class(pl_module, data, self.monitor)
            context["weight_norm_ratio"] = float(pl_module.net.flat.detach().norm()) / max(
                self.initial_weight_norm, 1e-12
            )
        self.diagnosis = {
            **diagnose(self.history, context, self.thresholds),
            "warnings": self.warnings,
            "held_out": pl_module.held_out,  # the split behind the history's val_loss: val, or test without one
        }
        if not trainer.is_global_zero:
            return
        if self.path is not None:
            write_json_atomic(self.path, {**self.diagnosis, "history": vars(self.history)})
        if not self.verbose:
            return
        lines = [f"Diagnosis: {self.diagnosis['verdict']}"]
        lines += [f"  remedy: {remedy}" for remedy in self.diagnosis["remedies"]]
        console_print(trainer, "\n".join(lines))


class StepwiseDoctor(TrainingDoctor):
    """The doctor, plus the global gradient norm after every optimizer step (run.doctor.every_step)."""

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        if trainer.logger is not None:
            norm = float(global_grad_norm(pl_module))
            trainer.logger.log_metrics({"grad_norm_step/global": norm}, step=trainer.global_step)


def dead_relu_fraction(pl_module, X: torch.Tensor, rows: int = 4096) -> float | None:
    """The share of hidden ReLU units (every member's) that no training sample (up to `rows` of them)
    activates: a dead unit passes no gradient and never recovers. None for other activations."""
    if pl_module.hparams.activation != "relu" or not pl_module.hparams.hidden_dims:
        return None
    net, alive = pl_module.net, []
    original = net.activation

    def watched(h: torch.Tensor) -> torch.Tensor:  # h: [members, rows, units], before the activation
        alive.append((h > 0).any(dim=1))
        return original(h)

    was_training = net.training
    net.eval()
    net.activation = watched
    try:
        with torch.inference_mode():
            net(X[:rows].to(pl_module.device))
    finally:
        net.activation = original
        net.train(was_training)
    return float(1 - torch.cat(alive, dim=-1).float().mean())


def rare_class(pl_module, data, monitor: str) -> dict | None:
    """For imbalanced classes: the rarest class's share of the commonest's in the training split and its recall
    on the validated split (what accuracy hides); None for balanced classes and regression."""
    from trainlab.callbacks.scoring import score_split

    if pl_module.task == "regression":
        return None
    counts = torch.bincount(data.splits["train"][1].long(), minlength=data.num_classes)
    rarest, share = int(counts.argmin()), float(counts.min() / counts.max().clamp_min(1))
    if share >= IMBALANCE_RATIO:
        return None  # balanced enough: no need to score the validated split
    scored = score_split(data, pl_module, data.validation_split)
    mask = scored.y.astype(int) == rarest
    recall = float((scored.predicted[mask] == rarest).mean()) if mask.any() else None
    return (
        {"rarest": rarest, "rarest_share": share, "rarest_recall": recall, "monitor": monitor}
        if recall is not None
        else None
    )


def global_grad_norm(pl_module) -> torch.Tensor:
    grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def linear_weights(pl_module, gradients: bool = False) -> list[torch.Tensor] | None:
    """Each linear layer's weights (all members: [K, out, in]), or their gradients (None before any)."""
    net = pl_module.net
    source = net.flat.grad if gradients else net.flat
    if source is None:
        return None
    return [net.weight(index, source) for index in range(len(net.layers))]


def constant_prediction_loss(pl_module, y: torch.Tensor) -> float:
    """The training loss of the best constant prediction (the class prior, or the mean / median target):
    the level a model that learnt nothing reaches."""
    y = y.to(pl_module.device)
    with torch.no_grad():
        if pl_module.task == "binary":
            p = y.float().mean().clamp(1e-6, 1 - 1e-6)
            logits = torch.full((len(y), 1), float(torch.log(p / (1 - p))), device=y.device)
        elif pl_module.task == "multiclass":
            counts = torch.bincount(y.long(), minlength=pl_module.hparams.num_classes).float() + 1e-6
            logits = torch.log(counts / counts.sum()).expand(len(y), -1)
        else:
            centre = y.median() if pl_module.hparams.loss in ("l1", "huber") else y.mean()
            logits = torch.full((len(y), 1), float(centre), device=y.device)
        return float(pl_module.criterion(tasks.loss_inputs(pl_module.task, logits), y))
