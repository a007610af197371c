"""The training doctor: each verdict from its rule, and engineered real runs that must earn theirs."""

import math
from pathlib import Path

import pytest
import torch

from conftest import QUIET, config, read_json, run_cli, run_dirs
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


def fit_and_diagnose(name: str, *args: str) -> dict:
    assert run_cli("fit", "-c", config(name), "--run.test_after_fit", "false", *args, *QUIET) == 0
    return read_json(run_dirs(name)[-1] / "diagnosis.json")


def test_a_sound_run_is_healthy_and_the_doctor_logs_gradients():
    found = fit_and_diagnose("seed", "--trainer.max_epochs", "30")
    assert found["verdict"] == "healthy", found
    assert len(found["history"]["grad_norm"]) == 30 and found["warnings"] == []
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = EventAccumulator(str(run_dirs("seed")[-1])).Reload().Tags()["scalars"]
    assert {"grad_norm/global", "grad_norm/linear0", "grad_norm/linear1", "update_ratio/linear0"} <= set(tags)


def test_every_step_logging_when_asked():
    fit_and_diagnose("seed", "--run.doctor.every_step", "true", "--trainer.max_epochs", "2")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dirs("seed")[-1])).Reload()
    assert len(events.Scalars("grad_norm_step/global")) == 50  # 25 steps per epoch, 2 epochs


def test_a_tiny_learning_rate_is_called_out():
    found = fit_and_diagnose("seed", "--model.init_args.lr", "1e-6", "--trainer.max_epochs", "5")
    assert found["verdict"] == "learning_rate_too_low"
    assert found["remedies"][0] == "raise the learning rate: model.init_args.lr=1e-05 (now 1e-06)"


def test_a_deep_sigmoid_stack_has_vanishing_gradients():
    found = fit_and_diagnose(
        "default",
        "--model.init_args.hidden_dims",
        "[32,32,32,32,32,32,32,32,32,32]",
        "--model.init_args.activation",
        "sigmoid",
        "--trainer.max_epochs",
        "5",
    )
    assert found["verdict"] == "vanishing_gradients"
    assert found["evidence"]["first_to_last_layer_grad_ratio"] < 1e-3


@pytest.mark.slow
def test_a_wide_network_on_a_tiny_noisy_training_set_overfits():
    found = fit_and_diagnose(
        "default",
        "--data.init_args.n_samples",
        "150",
        "--data.init_args.flip_y",
        "0.3",
        "--model.init_args.hidden_dims",
        "[256,256,256]",
        "--model.init_args.dropout",
        "0",
        "--model.init_args.weight_decay",
        "0",
        "--trainer.max_epochs",
        "200",
        "--run.early_stopping",
        "null",
        "--data.init_args.batch_size",
        "16",
    )
    assert found["verdict"] == "overfitting"
    evidence = found["evidence"]
    assert evidence["best_epoch"] < 50 and evidence["final_val_loss"] > 2 * evidence["best_val_loss"]


def test_a_failed_fit_ends_the_progress_bar_line_before_its_message(capsys):
    args = ["--model.init_args.optimizer", "sgd", "--model.init_args.lr", "1e30", "--trainer.max_epochs", "3"]
    assert run_cli("fit", "-c", config("regression"), *args, "--trainer.enable_progress_bar", "true") == 3
    captured = capsys.readouterr()
    assert "Training" in captured.out and captured.out.endswith("\n")  # the bar's line is ended
    assert captured.err.strip().splitlines()[-1].startswith("trainlab: training failed: the training loss became")


def test_a_huge_learning_rate_stops_at_the_first_non_finite_loss(capsys):
    # SGD at lr 0.02 trains; the step schedule raises it ten-thousandfold after two epochs: the third diverges
    args = ["--model.init_args.optimizer", "sgd", "--model.init_args.lr", "0.02", "--model.init_args.scheduler"]
    args += [
        "step",
        "--model.init_args.step_size",
        "2",
        "--model.init_args.gamma",
        "10000",
        "--trainer.max_epochs",
        "6",
    ]
    args += ["--run.last_checkpoint_every", "0"]  # last.ckpt at every epoch's end
    assert run_cli("fit", "-c", config("regression"), *args, *QUIET) == 3
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("trainlab: training failed: the training loss became")
    assert "the learning rate (200 now, 0.02 configured) is likely too high" in err  # after the step schedule
    (run,) = run_dirs("regression")
    found = read_json(run / "diagnosis.json")
    assert found["verdict"] == "diverged"
    report = found["evidence"]["non_finite"]
    assert report["loss"] in ("inf", "-inf", "nan") and math.isfinite(report["last_finite_loss"])
    # the kept checkpoint is the last good epoch, and its weights are finite
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert report["epoch"] == 3 and checkpoint["epoch"] + 1 == 2  # epochs count from 1 here, from 0 in Lightning
    assert all(torch.isfinite(w).all() for w in checkpoint["state_dict"].values())


def test_the_guard_stops_before_the_step_that_would_spoil_the_weights():
    """The weights after the stop equal those of the same seeded run stopped by max_steps one step
    earlier: the step with the non-finite loss was never taken."""
    import lightning.pytorch as pl

    from trainlab.data import SyntheticDataModule
    from trainlab.errors import TrainingFailed
    from trainlab.models import MLPModule

    def run(max_steps=-1):
        pl.seed_everything(42)
        module = MLPModule(input_dim=10, task="regression", hidden_dims=[64, 64], optimizer="sgd", lr=0.1)
        trainer = pl.Trainer(
            max_epochs=50,
            max_steps=max_steps,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        data = SyntheticDataModule(generator="friedman1", n_samples=2000, n_features=10, noise=1.0, batch_size=64)
        try:
            trainer.fit(module, datamodule=data)
        except TrainingFailed as failure:
            return module, failure.report
        return module, None

    stopped, report = run()
    assert report is not None  # lr 0.1 with plain SGD diverges on this data
    steps_taken = report["step"] - 1
    assert steps_taken > 0
    reference, _ = run(max_steps=steps_taken)
    for a, b in zip(stopped.parameters(), reference.parameters(), strict=True):
        assert torch.isfinite(a).all() and torch.equal(a, b)


def test_validation_every_other_epoch_is_paired_with_its_epoch():
    found = fit_and_diagnose(
        "default",
        "--trainer.max_epochs",
        "10",
        "--trainer.check_val_every_n_epoch",
        "2",
        "--run.early_stopping",
        "null",
    )
    assert found["history"]["val_epoch"] == [1, 3, 5, 7, 9]
    assert found["evidence"]["best_epoch"] % 2 == 0  # 1-based: validated epochs are 2, 4, ...


def test_balanced_classes_are_not_flagged(capsys):
    found = fit_and_diagnose(
        "multiclass",
        "--data.init_args.n_classes",
        "6",
        "--data.init_args.n_informative",
        "6",
        "--run.monitor",
        "val/accuracy",
        "--trainer.max_epochs",
        "1",
    )
    assert found["warnings"] == [] and "warning" not in capsys.readouterr().err


def test_accuracy_on_imbalanced_classes_is_flagged(capsys):
    found = fit_and_diagnose(
        "default",
        "--data.init_args.weights",
        "[0.92,0.08]",
        "--run.monitor",
        "val/accuracy",
        "--trainer.max_epochs",
        "2",
    )
    assert "trainlab: warning: run.monitor=val/accuracy on imbalanced classes" in capsys.readouterr().err
    assert found["warnings"] and "val/f1 or val/auroc" in found["warnings"][0]


def test_a_mode_against_the_metric_is_refused(capsys):
    assert run_cli("fit", "-c", config("default"), "--run.monitor", "val/accuracy", "--run.mode", "min") == 2
    assert (
        "run.mode='min' is not allowed: auto or max: val/accuracy is better when it is higher"
        in capsys.readouterr().err
    )


def test_the_doctor_can_be_turned_off():
    assert run_cli("fit", "-c", config("seed"), "--run.doctor", "null", "--trainer.max_epochs", "2", *QUIET) == 0
    assert not (run_dirs("seed")[-1] / "diagnosis.json").exists()


def benchmark_scenarios():
    """benchmarks/doctor.py's labelled scenarios (the benchmark runs them all)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "doctor_benchmark", Path(__file__).parents[1] / "benchmarks" / "doctor.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "name",
    [
        "healthy/blobs-near-zero-loss",
        "underfit/heavy-weight-decay",
        "lr-too-high/seed-lr50",
        "lr-too-high/unstable-rmsprop",
        "exploding/deep-sgd-classifier",
        "imbalance/rare-class",
    ],
)
def test_the_doctor_is_right_on_labelled_scenarios(name):
    """A representative subset of the benchmark's suite (its README table quotes all of them)."""
    row = benchmark_scenarios().diagnose_scenario(name)
    assert row["verdict"] == row["truth"], row["evidence"]
