"""Training on arrays in memory, with no run directory: ArrayDataModule, MLPModule and a Lightning Trainer
that writes and prints nothing (no logger, checkpoint, progress bar or model summary unless asked), the
result returned as plain values. The scikit-learn estimators (trainlab.sklearn) train through here."""

import logging
import math
import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping

from trainlab import callback_factories, tasks
from trainlab.callbacks import EpochSummary
from trainlab.callbacks.doctor import TrainingDoctor
from trainlab.data.arrays import ArrayDataModule
from trainlab.data.table import Encoder
from trainlab.models import MLPModule


@dataclass
class ArrayFit:
    """What a fit leaves, in plain values (no Lightning object): enough to predict and to pickle.

    Attributes:
        encoder: the fitted imputation and one-hot encoding of the feature columns.
        scaler_mean, scaler_scale: the standardisation of the encoded features (None: not scaled).
        network: PackedMLP's arguments, to rebuild the network.
        state: the network's state_dict (with early stopping, that of the best validation loss).
        history: the doctor's per-epoch history (train_loss, val_loss, val_epoch, gradient norms, ...).
        diagnosis: the doctor's verdict, evidence and remedies.
        epochs: the epochs trained.
        best_epoch: with early stopping, the (0-based) epoch whose weights were kept; else None.
    """

    encoder: Encoder
    scaler_mean: np.ndarray | None
    scaler_scale: np.ndarray | None
    network: dict
    state: dict[str, torch.Tensor]
    history: dict[str, list]
    diagnosis: dict
    epochs: int
    best_epoch: int | None


class WeightedMLPModule(MLPModule):
    """MLPModule whose training loss weights each row: its training targets come as (target, weight) pairs
    (ArrayDataModule with sample_weight), the weights relative to their mean, so that equal weights train
    exactly as no weights. Evaluation (early stopping's validation loss) is unweighted."""

    def member_losses(self, logits: torch.Tensor, y: torch.Tensor, counts: torch.Tensor | None) -> torch.Tensor:
        target, weight = y[..., 0], y[..., 1]
        members, rows = target.shape
        if self.task == "multiclass":
            flat = logits.reshape(members * rows, -1)
            losses = self.member_criterion(flat, target.long().reshape(-1)).view(members, rows)
        else:
            losses = self.member_criterion(logits.squeeze(-1), target)
        losses = losses * weight
        if counts is None:
            return losses.mean(1)
        real = torch.arange(rows, device=y.device) < counts[:, None]
        return (losses * real).sum(1) / counts.clamp(min=1)


class BestWeights(pl.Callback):
    """Keeps a copy, in memory, of the network's weights at the lowest val/loss so far (no checkpoint file)."""

    def __init__(self):
        self.loss, self.epoch, self.state = math.inf, None, None

    def on_validation_end(self, trainer, pl_module):
        loss = float(trainer.callback_metrics["val/loss"])
        if loss < self.loss:
            self.loss, self.epoch = loss, trainer.current_epoch
            self.state = {name: value.detach().clone() for name, value in pl_module.net.state_dict().items()}


def fit_arrays(
    table,
    y: np.ndarray,
    task: str,
    num_classes: int | None,
    model: dict,
    data: dict,
    max_epochs: int,
    accelerator: str = "cpu",
    patience: int | None = None,
    val_fraction: float = 0.0,
    seed: int = 0,
    data_seed: int | None = None,
    verbose: int = 0,
    log_dir: str | None = None,
    sample_weight: np.ndarray | None = None,
) -> ArrayFit:
    """Train MLPModule(**model) on (table, y) for `max_epochs`. `seed` seeds the network's initialisation
    and dropout masks, `data_seed` (default: `seed`) the batch order and the validation split. With
    `patience`, `val_fraction` of the rows is held out and training stops after `patience` epochs without a
    lower val/loss, keeping the best epoch's weights. `data` holds TabularDataModule's arguments
    (batch_size, batches_per_step, ...). `verbose` >= 1 prints a summary line every 10 epochs; `log_dir`
    gets TensorBoard curves. `sample_weight` weights each row's training loss."""
    datamodule = ArrayDataModule(
        table,
        y,
        task,
        num_classes,
        val_fraction if patience else 0.0,
        sample_weight,
        seed=seed if data_seed is None else data_seed,
        **data,
    )
    module_class = MLPModule if sample_weight is None else WeightedMLPModule
    module = module_class(datamodule.num_features, task, num_classes, seeds=[seed], **model)
    # val/loss (the monitor) every epoch; the full set of validation metrics once, at the end
    module.log_val_metrics(every=max_epochs, always=["val/loss"])
    doctor = TrainingDoctor(monitor="val/loss", early_stopping=patience is not None, verbose=False, write=False)
    callbacks = [doctor]
    best = None
    if patience is not None:
        best = BestWeights()
        callbacks += [EarlyStopping(monitor="val/loss", mode="min", patience=patience), best]
    if verbose:
        callbacks.append(EpochSummary(10))
    logger = False
    if log_dir is not None:
        from lightning.pytorch.loggers import TensorBoardLogger

        logger = TensorBoardLogger(log_dir, name="trainlab", default_hp_metric=False)
    callback_factories.install()  # third-party callbacks looked up once per process, not per fit
    with _quiet(verbose):
        trainer = pl.Trainer(
            accelerator=accelerator,
            devices=1,
            max_epochs=max_epochs,
            logger=logger,
            callbacks=callbacks,
            enable_checkpointing=False,
            enable_model_summary=False,
            enable_progress_bar=False,
            num_sanity_val_steps=0,
            limit_val_batches=1.0 if patience is not None else 0,  # no validation loop without early stopping
            log_every_n_steps=1,
        )
        trainer.fit(module, datamodule=datamodule)
    if best is not None and best.state is not None:
        module.net.load_state_dict(best.state)
    h = module.hparams
    scaler = datamodule.scaler
    return ArrayFit(
        encoder=datamodule.encoder,
        scaler_mean=scaler.mean_ if scaler is not None else None,
        scaler_scale=scaler.scale_ if scaler is not None else None,
        network={
            "seeds": module.member_seeds,
            "input_dim": h.input_dim,
            "output_dim": tasks.output_dim(task, num_classes),
            "hidden_dims": list(h.hidden_dims),
            "activation": h.activation,
            "dropout": h.dropout,
            "batch_norm": h.batch_norm,
            "init": h.init,
        },
        state={name: value.detach().cpu().clone() for name, value in module.net.state_dict().items()},
        history={key: list(values) for key, values in vars(doctor.history).items()},
        diagnosis=doctor.diagnosis,
        epochs=len(doctor.history.train_loss),
        best_epoch=best.epoch if best is not None else None,
    )


@contextmanager
def _quiet(verbose: int):
    """Lightning's notices (the devices it found, advice about loader workers) are not shown to an
    estimator's user; verbose >= 2 shows them."""
    if verbose >= 2:
        yield
        return
    log = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            # In-memory batches need no loader workers; they are already on the device they train on.
            warnings.filterwarnings("ignore", ".*does not have many workers.*")
            warnings.filterwarnings("ignore", ".*overridden `transfer_batch_to_device` in `LightningModule`.*")
            warnings.filterwarnings("ignore", ".*isinstance.treespec, LeafSpec.*")
            yield
    finally:
        log.setLevel(level)
