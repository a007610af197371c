"""A model's evaluation builds each stage's metrics when the stage first evaluates."""

import pytest

from tests.models.helpers import fit
from trainlab.models import MLPModule


def test_a_stage_builds_its_metrics_when_it_first_evaluates_and_a_thin_epoch_only_the_essentials():
    module = MLPModule(input_dim=4, task="binary", hidden_dims=[8])
    module.log_val_metrics(every=3, always=["val/auroc"])
    trainer = fit(module, max_epochs=4, num_sanity_val_steps=0)
    evaluation = module.evaluation
    # a fit validates: epochs 1, 2 and 4 thin (the essentials), 3 in full; 4 is the last, so in full too
    assert set(evaluation.metrics) == {"val", "val_thin"}
    assert set(evaluation.metrics["val_thin"]) == {"val/accuracy", "val/auroc"}  # the headline, the monitored
    assert set(trainer.callback_metrics) >= {"val/loss", "val/precision", "val/f1"}
    trainer.test(module, datamodule=trainer.datamodule, verbose=False)
    assert set(evaluation.metrics) == {"val", "val_thin", "test"}
    assert set(trainer.callback_metrics) == {
        f"test/{n}" for n in ("loss", "accuracy", "precision", "recall", "f1", "auroc")
    }


@pytest.mark.parametrize("split", ["test", "val"])
def test_the_per_epoch_split_names_its_metrics(split):
    module = MLPModule(input_dim=4, task="regression", hidden_dims=[8])
    trainer = fit(module, data={"generator": "regression", "val_fraction": 0.0 if split == "test" else 0.2})
    assert module.held_out == split
    assert {k.split("/")[0] for k in trainer.callback_metrics} == {"train", split}
    assert set(module.evaluation.metrics["val"]) == {f"{split}/{n}" for n in ("mse", "rmse", "mae", "r2")}
