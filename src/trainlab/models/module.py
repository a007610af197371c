"""The LightningModule: the MLP plus the task's loss, metrics, optimizer and scheduler."""

from typing import Literal

import lightning.pytorch as pl
import torch

from trainlab import tasks
from trainlab.errors import require
from trainlab.models.mlp import ACTIVATIONS, MLP, Activation, Init

Optimizer = Literal["sgd", "adam", "adamw", "rmsprop"]
Scheduler = Literal["plateau", "step", "cosine"]
Loss = Literal["auto", "bce", "cross_entropy", "mse", "l1", "huber"]
OPTIMIZERS = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
}
STAGES = ("train", "val", "test")


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
        cosine_epochs: CosineAnnealingLR's T_max in epochs.
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
        cosine_epochs: int = 100,
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
        require(all(h >= 1 for h in hidden_dims), f"{k}.hidden_dims", hidden_dims, "a list of integers >= 1")
        require(activation in ACTIVATIONS, f"{k}.activation", activation, f"one of {', '.join(ACTIVATIONS)}")
        require(0 <= dropout < 1, f"{k}.dropout", dropout, "a probability in [0, 1)")
        require(optimizer in OPTIMIZERS, f"{k}.optimizer", optimizer, f"one of {', '.join(OPTIMIZERS)}")
        require(lr > 0, f"{k}.lr", lr, "a number > 0")
        require(weight_decay >= 0, f"{k}.weight_decay", weight_decay, "a number >= 0")
        require(momentum >= 0, f"{k}.momentum", momentum, "a number >= 0")
        require(
            not nesterov or (optimizer == "sgd" and momentum > 0),
            f"{k}.nesterov",
            nesterov,
            "true only with optimizer sgd and momentum > 0",
        )
        require(l1_penalty >= 0, f"{k}.l1_penalty", l1_penalty, "a number >= 0")
        fitting = tasks.LOSSES[task]
        loss = fitting[0] if loss == "auto" else loss
        require(loss in fitting, f"{k}.loss", loss, f"for task {task}: auto or {', '.join(fitting)}")
        self.save_hyperparameters()

        self.task = task
        self.net = MLP(
            input_dim, tasks.output_dim(task, num_classes), hidden_dims, activation, dropout, batch_norm, init
        )
        self.criterion = tasks.make_loss(task, loss)
        metrics = tasks.make_metrics(task, num_classes)
        # One collection per stage; torchmetrics keeps their states apart.
        self.metrics = torch.nn.ModuleDict({s: metrics.clone(prefix=f"{s}/") for s in ("val", "test")})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def model_step(self, batch):
        """Shared by every stage: (loss, metric inputs, targets)."""
        x, y = batch[0], batch[1]
        logits = self(x)
        loss = self.criterion(tasks.loss_inputs(self.task, logits), y)
        return loss, tasks.metric_inputs(self.task, logits), y

    def training_step(self, batch, batch_idx):
        loss, _, _ = self.model_step(batch)
        self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=len(batch[0]))
        if self.hparams.l1_penalty > 0:
            weights = [p for name, p in self.net.named_parameters() if name.endswith("weight")]
            loss = loss + self.hparams.l1_penalty * sum(w.abs().sum() for w in weights)
        return loss

    def _evaluate(self, batch, stage: str):
        loss, scores, y = self.model_step(batch)
        self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True, batch_size=len(y))
        metrics = self.metrics[stage]
        metrics.update(scores, y.long() if self.task != "regression" else y)
        self.log_dict(metrics, on_step=False, on_epoch=True)

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, "val")

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, "test")

    def predict_step(self, batch, batch_idx):
        """Per sample: its index in the split, the scores (probability, class probabilities or value), the
        predicted label, and the target."""
        x, y, index = batch
        scores = tasks.metric_inputs(self.task, self(x))
        return {"index": index, "scores": scores, "prediction": tasks.predicted_labels(self.task, scores), "target": y}

    def monitorable(self) -> list[str]:
        """The metric keys a checkpoint or early stopping can watch."""
        return ["train/loss", "val/loss"] + [f"val/{m}" for m in tasks.METRIC_NAMES[self.task]]

    def configure_optimizers(self):
        h = self.hparams
        kwargs = {"lr": h.lr, "weight_decay": h.weight_decay}
        if h.optimizer in ("sgd", "rmsprop"):
            kwargs["momentum"] = h.momentum
        if h.optimizer == "sgd":
            kwargs["nesterov"] = h.nesterov
        optimizer = OPTIMIZERS[h.optimizer](self.parameters(), **kwargs)
        if h.scheduler is None:
            return optimizer
        sched = torch.optim.lr_scheduler
        if h.scheduler == "plateau":
            scheduler = sched.ReduceLROnPlateau(optimizer, factor=h.gamma, patience=h.plateau_patience)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": "val/loss"}}
        if h.scheduler == "step":
            scheduler = sched.StepLR(optimizer, step_size=h.step_size, gamma=h.gamma)
        else:
            scheduler = sched.CosineAnnealingLR(optimizer, T_max=h.cosine_epochs)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
