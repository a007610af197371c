"""The training doctor's rules (trainlab.diagnosis): each verdict from its rule, configurable thresholds,
and remedies worked out from the run."""

import pytest

from trainlab.diagnosis import DoctorOptions, History, diagnose, remedies

T = DoctorOptions()
LINEAR = dict(grad_norm=[1.0] * 10, first_layer_grad=[0.5] * 10, last_layer_grad=[0.5] * 10, update_ratio=[0.01] * 10)


def verdict(context=None, **history) -> str:
    return diagnose(History(**{**LINEAR, **history}), {"baseline_loss": 0.69, **(context or {})}, T)["verdict"]


def test_each_rule_on_its_own():
    falling = [0.6 * 0.8**i for i in range(10)]
    assert verdict(train_loss=falling, val_loss=[x + 0.05 for x in falling]) == "healthy"
    assert verdict(train_loss=falling, context={"non_finite": {"step": 3}}) == "diverged"
    deep = {"hparams": {"hidden_dims": [64] * 6}, "non_finite": {"step": 3}}
    assert verdict(train_loss=falling, context=deep) == "exploding_gradients"  # no batch norm, six layers
    assert verdict(train_loss=[0.6, 0.7, 1.5]) == "diverged"
    assert verdict(train_loss=falling, grad_norm=[1.0] * 9 + [5e3]) == "exploding_gradients"
    assert verdict(train_loss=falling, context={"dead_fraction": 0.95}) == "dead_units"
    assert verdict(train_loss=falling, first_layer_grad=[0.5] * 9 + [0.0], last_layer_grad=[0.5] * 9 + [0.0]) == (
        "dead_units"
    )
    assert verdict(train_loss=[0.6, 0.4, 0.3, 0.25, 0.25, 0.3, 0.35, 0.4, 0.4, 0.42]) == "unstable"  # rose again
    assert (
        verdict(train_loss=falling, first_layer_grad=[1e-5] * 10, last_layer_grad=[0.1] * 10) == "vanishing_gradients"
    )
    rare = {"classes": {"rarest_share": 0.05, "rarest_recall": 0.0, "monitor": "val/accuracy"}}
    assert verdict(train_loss=falling, context=rare) == "imbalance"
    assert verdict(train_loss=[0.69] * 10, update_ratio=[1e-6] * 10) == "learning_rate_too_low"
    assert verdict(train_loss=[0.69] * 10) == "underfitting"  # the weights moved, the loss did not
    stalled = [0.6, 0.5, 0.45, 0.42, 0.41, 0.41, 0.41, 0.41, 0.41, 0.41]
    assert verdict(train_loss=stalled, val_loss=stalled) == "underfitting"  # stuck at 60% of a constant's loss
    shrunk = {"weight_norm_ratio": 0.01, "hparams": {"weight_decay": 10.0}}
    assert verdict(train_loss=falling, context=shrunk) == "underfitting"
    overfit_val = [0.5, 0.4, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65]
    assert verdict(train_loss=falling, val_loss=overfit_val) == "overfitting"
    assert verdict(train_loss=falling, val_loss=overfit_val, context={"early_stopping": True}) == "healthy"
    assert verdict(train_loss=falling[:5], val_loss=overfit_val[:5]) == "healthy"  # too short to call


def test_near_zero_losses_that_rise_a_little_are_not_overfitting():
    """The issue's three-class file: validation accuracy stayed 1.0 while val/loss went from 0.008 to 0.026
    (3x, but 2% of a constant prediction's 1.1): noise, not overfitting."""
    falling = [0.5 * 0.5**i for i in range(12)]
    val = [0.3, 0.1, 0.03, 0.008, 0.01, 0.012, 0.015, 0.018, 0.02, 0.022, 0.024, 0.026]
    assert (
        diagnose(History(**LINEAR, train_loss=falling, val_loss=val), {"baseline_loss": 1.1}, T)["verdict"] == "healthy"
    )


def test_thresholds_are_configurable():
    overfit_val = [0.5, 0.4, 0.3, 0.32, 0.33, 0.33, 0.33, 0.33, 0.33, 0.33]  # 10% above its best
    falling = [0.6 * 0.8**i for i in range(10)]
    history = History(**LINEAR, train_loss=falling, val_loss=overfit_val)
    assert diagnose(history, {"baseline_loss": 0.69}, DoctorOptions(overfit_rise=0.2))["verdict"] == "healthy"
    loose = DoctorOptions(overfit_rise=0.05, overfit_floor=0.0)
    assert diagnose(history, {"baseline_loss": 0.69}, loose)["verdict"] == "overfitting"
    floored = DoctorOptions(overfit_rise=0.05, overfit_floor=0.1)  # a rise of 0.03 is under 10% of 0.69
    assert diagnose(history, {"baseline_loss": 0.69}, floored)["verdict"] == "healthy"


def test_remedies_are_worked_out_from_the_run():
    hparams = {"lr": 0.01, "hidden_dims": [256, 128], "dropout": 0.0, "weight_decay": 0.0}
    found = diagnose(
        History(**LINEAR, train_loss=[0.6, 0.3, 0.1] * 4, val_loss=[0.3] + [0.6] * 11),
        {"hparams": hparams, "early_stopping": False, "baseline_loss": 0.69},
        T,
    )
    assert found["verdict"] == "overfitting"
    text = "\n".join(found["remedies"])
    assert "run.early_stopping.patience=10" in text and "hidden_dims=[128, 64]" in text and "dropout=0.2" in text
    spike = {**LINEAR, "grad_norm": [1.0, 1.0, 1.0, 1e4]}
    exploding = diagnose(History(**spike, train_loss=[0.6] * 4), {"hparams": hparams}, T)
    assert exploding["verdict"] == "exploding_gradients"
    assert "model.init_args.lr=0.001 (now 0.01)" in exploding["remedies"][0]


@pytest.mark.parametrize("verdict_name", ["diverged", "dead_units", "unstable", "exploding_gradients", "overfitting"])
def test_no_remedy_raises_the_learning_rate_of_an_unstable_network_or_restates_the_config(verdict_name):
    hparams = {"lr": 0.01, "hidden_dims": [64], "dropout": 0.5, "weight_decay": 0.0, "batch_norm": True}
    hparams.update(gradient_clip_val=1.0, scheduler="cosine", init="kaiming")
    text = "\n".join(remedies(verdict_name, {"hparams": hparams, "early_stopping": True}))
    assert "raise the learning rate" not in text and "higher learning rate" not in text
    for already in (
        "early_stopping",
        "batch_norm=true",
        "gradient_clip_val=1.0",
        "scheduler=cosine",
        "dropout=",
        "init=",
    ):
        assert already not in text, (verdict_name, already, text)
