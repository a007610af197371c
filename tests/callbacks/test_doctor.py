"""The training doctor on real runs: engineered fits that must earn their verdicts, its per-epoch logging and
warnings, and the benchmark's labelled scenarios."""

from pathlib import Path

import pytest

from tests.helpers import QUIET, config, read_json, run_cli, run_dirs


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


def test_the_doctor_can_be_turned_off():
    assert run_cli("fit", "-c", config("seed"), "--run.doctor", "null", "--trainer.max_epochs", "2", *QUIET) == 0
    assert not (run_dirs("seed")[-1] / "diagnosis.json").exists()


def benchmark_scenarios():
    """benchmarks/doctor.py's labelled scenarios (the benchmark runs them all)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "doctor_benchmark", Path(__file__).parents[2] / "benchmarks" / "doctor.py"
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
