"""Helpers for the model tests."""

import lightning.pytorch as pl

from trainlab.data import SyntheticDataModule


def fit(module, data: dict | None = None, **trainer_options):
    """A real, quiet Lightning fit of `module` on a small synthetic dataset (240 training samples);
    returns the trainer."""
    options = dict(
        max_epochs=3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer = pl.Trainer(**{**options, **trainer_options})
    trainer.fit(module, datamodule=SyntheticDataModule(n_samples=400, n_features=4, n_informative=3, **(data or {})))
    return trainer
