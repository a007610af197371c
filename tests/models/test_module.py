"""MLPModule: forward shapes, losses, optimizer and schedulers, the per-epoch held-out metrics and their names,
ensembles and population members, and the arguments it refuses."""

import re
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from torch import nn

import trainlab
from tests.helpers import LEAN, QUIET, SHORT, config, read_json, run_cli, run_dirs, scalars
from tests.models.helpers import fit
from trainlab.errors import UserError
from trainlab.models import MLPModule


@pytest.mark.parametrize(
    "task, num_classes, logits_shape",
    [("binary", 2, (1, 7, 1)), ("multiclass", 5, (1, 7, 5)), ("regression", None, (1, 7, 1))],
)
def test_forward_shapes_per_task(task, num_classes, logits_shape):
    """forward gives every member's logits [K, B, out]; scores the model's prediction per sample."""
    module = MLPModule(input_dim=3, task=task, num_classes=num_classes, hidden_dims=[8])
    assert module(torch.randn(7, 3)).shape == logits_shape
    assert module.scores(torch.randn(7, 3)).shape == ((7, 5) if task == "multiclass" else (7,))
    three = MLPModule(input_dim=3, task=task, num_classes=num_classes, hidden_dims=[8], ensemble=3)
    assert three(torch.randn(7, 3)).shape == (3, *logits_shape[1:])


def batch_for(task: str, n: int = 64):
    torch.manual_seed(1)
    x = torch.randn(n, 4)
    if task == "binary":
        y = (x[:, 0] > 0).float()
    elif task == "multiclass":
        y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    else:
        y = 3 * x[:, 0] - x[:, 1]
    return x, y


@pytest.mark.parametrize("task, num_classes", [("binary", 2), ("multiclass", 3), ("regression", None)])
@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "rmsprop"])
def test_one_optimisation_step_lowers_the_loss(task, num_classes, optimizer):
    torch.manual_seed(0)
    module = MLPModule(
        input_dim=4,
        task=task,
        num_classes=num_classes,
        hidden_dims=[16],
        optimizer=optimizer,
        lr=0.01,
        momentum=0.9 if optimizer == "sgd" else 0.0,
    )
    opt = module.configure_optimizers()
    batch = batch_for(task)
    before, _, _ = module.model_step(batch)
    before.backward()
    opt.step()
    after, _, _ = module.model_step(batch)
    assert after.item() < before.item()


def test_loss_matches_the_task_and_l1_loss_is_selectable():
    assert isinstance(MLPModule(input_dim=2, task="binary").criterion, nn.BCEWithLogitsLoss)
    assert isinstance(MLPModule(input_dim=2, task="multiclass", num_classes=3).criterion, nn.CrossEntropyLoss)
    assert isinstance(MLPModule(input_dim=2, task="regression").criterion, nn.MSELoss)
    assert isinstance(MLPModule(input_dim=2, task="regression", loss="l1").criterion, nn.L1Loss)
    assert isinstance(MLPModule(input_dim=2, task="regression", loss="huber").criterion, nn.HuberLoss)


def test_l1_norm_is_the_weights_l1_norm_and_the_penalty_shrinks_it():
    torch.manual_seed(0)
    plain = MLPModule(input_dim=4, task="binary", hidden_dims=[16], lr=0.01)
    weights = [plain.net.weight(0), plain.net.weight(1)]
    assert torch.isclose(plain.l1_norm(), sum(w.abs().sum() for w in weights))
    torch.manual_seed(0)
    penalised = MLPModule(input_dim=4, task="binary", hidden_dims=[16], lr=0.01, l1_penalty=0.01)
    fit(plain, max_epochs=5)
    fit(penalised, max_epochs=5)
    assert penalised.l1_norm() < 0.6 * plain.l1_norm()


def test_max_steps_is_exact_although_steps_are_grouped():
    trainer = fit(MLPModule(input_dim=4, task="binary"), max_epochs=10, max_steps=5)
    assert trainer.global_step == 5


def test_step_and_cosine_schedulers_step_once_per_epoch():
    import warnings

    step = MLPModule(input_dim=4, task="binary", lr=0.1, scheduler="step", step_size=1, gamma=0.5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = fit(step, max_epochs=3)
    scheduler_warnings = [str(w.message) for w in caught if "lr_scheduler" in str(w.message)]
    assert scheduler_warnings == []  # the lean step tells the scheduler that the optimizer stepped
    assert trainer.optimizers[0].rates()[0] == pytest.approx(0.1 * 0.5**3)
    cosine = MLPModule(input_dim=4, task="binary", lr=0.1, scheduler="cosine")  # T_max: the run's max_epochs
    trainer = fit(cosine, max_epochs=4)
    assert trainer.lr_scheduler_configs[0].scheduler.T_max == 4
    assert trainer.optimizers[0].rates()[0] == pytest.approx(0.0, abs=1e-12)  # a half cosine, ended


class ValLossRecorder(pl.Callback):
    def __init__(self):
        self.losses, self.lrs = [], []

    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self.losses.append(float(trainer.callback_metrics["val/loss"]))

    def on_train_epoch_end(self, trainer, pl_module):
        self.lrs.append(float(trainer.optimizers[0].rates()[0]))


@pytest.mark.parametrize("every", [1, 2])
def test_plateau_scheduler_steps_on_each_fresh_validation_loss(every):
    """Our stepping must equal torch's ReduceLROnPlateau fed the validation losses, once per validation."""
    pl.seed_everything(0)
    module = MLPModule(input_dim=4, task="binary", lr=0.3, scheduler="plateau", plateau_patience=0, gamma=0.5)
    recorder = ValLossRecorder()
    trainer = fit(module, max_epochs=12 * every, check_val_every_n_epoch=every, callbacks=[recorder])
    assert len(recorder.losses) == 12
    reference = torch.optim.lr_scheduler.ReduceLROnPlateau(
        torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.3), factor=0.5, patience=0
    )
    for loss in recorder.losses:
        reference.step(loss)
    assert trainer.optimizers[0].rates()[0] == pytest.approx(reference.get_last_lr()[0])
    assert len(set(recorder.lrs)) > 1  # the rate did change: the test has teeth


def test_optimizer_settings_reach_the_optimizer():
    module = MLPModule(
        input_dim=2, task="binary", optimizer="sgd", lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3
    )
    opt = module.configure_optimizers()
    assert opt.algorithm == "sgd" and opt.nesterov
    assert (opt.rates(), opt.momentum, opt.weight_decay) == ([0.05], [0.9], [1e-3])


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"lr": 0.0}, "model.init_args.lr"),
        ({"lr": -0.1}, "model.init_args.lr"),
        ({"loss": "mse"}, "model.init_args.loss"),
        ({"loss": "cross_entropy"}, "model.init_args.loss"),
        ({"optimizer": "adagrad"}, "model.init_args.optimizer"),
        ({"activation": "swish"}, "model.init_args.activation"),
        ({"dropout": 1.0}, "model.init_args.dropout"),
        ({"weight_decay": -1.0}, "model.init_args.weight_decay"),
        ({"nesterov": True}, "model.init_args.nesterov"),
        ({"hidden_dims": [8, 0]}, "model.init_args.hidden_dims"),
    ],
)
def test_bad_model_arguments_name_the_key(kwargs, key):
    with pytest.raises(UserError, match="^" + re.escape(key) + "="):
        MLPModule(input_dim=2, task="binary", **kwargs)


def test_validate_logs_every_validation_metric(capsys):
    """configs/seed.yaml thins per-epoch validation logging inside fit; `validate` logs everything, under the
    name of the split it evaluates (seed.yaml has no validation split: the test split)."""
    assert run_cli("fit", "-c", config("seed"), *SHORT) == 0
    (fit_run,) = run_dirs("seed")
    assert run_cli("validate", "-c", config("seed"), "--ckpt_path", fit_run / "checkpoints" / "last.ckpt", *QUIET) == 0
    validate_run = fit_run / "validate" / "version_0"
    logged = set(scalars(validate_run))
    assert {"test/loss", "test/accuracy", "test/precision", "test/recall", "test/f1", "test/auroc"} <= logged
    assert not [key for key in logged if key.startswith("val/")]


def test_full_validation_metrics_every_n_epochs_and_the_essentials_every_epoch():
    args = ["--trainer.max_epochs", "6", "--run.val_metrics_every", "3", "--run.monitor", "val/auroc", *QUIET]
    assert run_cli("fit", "-c", config("default"), *args) == 0
    (run,) = run_dirs("default")
    logged = {tag: len(values) for tag, values in scalars(run).items()}
    assert logged["train/loss"] == logged["val/loss"] == 6
    assert logged["val/accuracy"] == 6  # the headline, for the summary line
    assert logged["val/auroc"] == 6  # the monitored metric, for checkpoints and early stopping
    assert logged["val/f1"] == logged["val/precision"] == logged["val/recall"] == 2  # epochs 3 and 6


METRICS = ("accuracy", "precision", "recall", "f1", "auroc")


@pytest.mark.slow
def test_without_a_validation_split_every_per_epoch_number_is_named_test(capsys):
    """seed.yaml has no validation split: the test split is evaluated every epoch, so its curves, summary
    lines, report and diagnosis say test, never val; with a validation split they say val."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from trainlab.reporting.report import read_curves

    args = ["--trainer.max_epochs", "4", "--run.summary_every", "2", "--run.val_metrics_every", "1", *LEAN]
    assert run_cli("fit", "-c", config("seed"), *args) == 0
    (run,) = run_dirs("seed")
    out = capsys.readouterr().out
    assert "Epoch [2/4], train/loss" in out and ", test/loss " in out and "test/accuracy" in out
    tags = EventAccumulator(str(run)).Reload().Tags()["scalars"]
    assert not [t for t in tags if t.startswith("val/")]
    curves = read_curves(run)
    assert curves["test/loss"][0] == [1, 2, 3, 4]  # per epoch; the test after the fit adds no fifth point
    assert curves["test/loss"][1][-1] == pytest.approx(read_json(run / "metrics.json")["test/loss"])  # last tested
    diagnosis = read_json(run / "diagnosis.json")
    assert diagnosis["held_out"] == "test" and "best_test_loss" in diagnosis["evidence"]
    assert not [k for k in diagnosis["evidence"] if "val" in k]
    assert "val/" not in (run / "report.html").read_text()
    # a validation metric is refused where there is no validation split, with the names that exist
    assert run_cli("fit", "-c", config("seed"), "--run.monitor", "val/loss", *args) == 2
    err = capsys.readouterr().err
    assert "run.monitor" in err and "test/loss" in err and "without a validation split" in err

    assert run_cli("fit", "-c", config("seed"), "--data.init_args.val_fraction", "0.2", *args) == 0
    out = capsys.readouterr().out
    assert ", val/loss " in out and "test/loss" not in out.split("Epoch [4/4]")[1].splitlines()[0]
    assert set(read_curves(run_dirs("seed")[-1])) == {"train/loss", *(f"val/{m}" for m in ("loss", *METRICS))}


QUIET_API = {"trainer.enable_progress_bar": False, "trainer.enable_model_summary": False, "run.verbose": False}


def test_ensemble_member_k_is_the_fit_of_seed_plus_k():
    settings = {**QUIET_API, "trainer.max_epochs": 4, "run.report": False}
    ensemble = trainlab.fit(config("seed"), **settings, **{"model.init_args.ensemble": 3, "seed_everything": 7})
    alone = trainlab.fit(config("seed"), **settings, **{"seed_everything": 8})
    members = torch.load(ensemble.last_checkpoint, weights_only=True)["state_dict"]["net.flat"]
    single = torch.load(alone.last_checkpoint, weights_only=True)["state_dict"]["net.flat"]
    assert members.shape[0] == 3 and single.shape[0] == 1
    torch.testing.assert_close(members[1], single[0], rtol=0, atol=1e-5)
    assert not torch.allclose(members[0], members[1])  # members differ: their own seeds and orders


def test_an_ensemble_predicts_its_members_mean_probability_and_reports_their_spread():
    from sklearn.metrics import accuracy_score

    from trainlab.data import SyntheticDataModule
    from trainlab.models import MLPModule

    settings = {**QUIET_API, "trainer.max_epochs": 3, "model.init_args.ensemble": 4, "data.init_args.n_samples": 800}
    fitted = trainlab.fit(config("multiclass"), **settings)
    predicted = trainlab.predict(config("multiclass"), fitted.last_checkpoint, **settings)
    summary = dict(read_json(fitted.run_dir / "report.json")["summary"])
    assert summary["ensemble"].startswith("4 members; each alone: test accuracy min ")
    # predictions.csv holds the mean of the four members' class probabilities, on the test split
    module = MLPModule.load_from_checkpoint(fitted.last_checkpoint, weights_only=True).eval()
    saved = torch.load(fitted.last_checkpoint, weights_only=True)["datamodule_hyper_parameters"]
    data = SyntheticDataModule(**{k: v for k, v in saved.items() if not k.startswith("_")})
    data.setup()
    X = data.splits["test"][0]
    with torch.no_grad():
        members = torch.softmax(module(X), dim=-1)
    assert members.shape[0] == 4 and not torch.allclose(members[0], members[1])
    written = np.stack([predicted.predictions[f"probability_{k}"] for k in range(4)], axis=1)
    np.testing.assert_allclose(written, members.mean(0).numpy(), rtol=1e-5, atol=1e-6)
    tested = read_json(fitted.run_dir / "metrics.json")["test/accuracy"]
    accuracy = accuracy_score(predicted.predictions["target"], predicted.predictions["prediction"])
    assert tested == pytest.approx(accuracy, abs=1e-6)


def test_ensemble_must_be_positive_and_one_under_ddp(capsys):
    assert run_cli("fit", "-c", config("seed"), "--model.init_args.ensemble", "0") == 2
    assert "model.init_args.ensemble=0 is not allowed" in capsys.readouterr().err
    assert not Path("lightning_logs").exists()


def test_a_frozen_member_keeps_its_weights_while_the_others_train():
    module = MLPModule(2, "binary", hidden_dims=[4], population=[{"lr": 0.1}, {"lr": 0.01, "dropout": 0.2}])
    module.frozen = torch.tensor([True, False])
    optimizer = module.configure_optimizers()
    before = module.net.flat.detach().clone()
    x, y = torch.randn(2, 16, 2), torch.randint(0, 2, (2, 16)).float()
    module.net.train()
    module.member_losses(module.net(x), y, None).sum().backward()
    optimizer.active = (~module.frozen).nonzero().flatten().tolist()
    optimizer.step()
    assert torch.equal(module.net.flat[0], before[0])
    assert not torch.equal(module.net.flat[1], before[1])
    assert optimizer.member_lr == [0.1, 0.01] and module.net.dropout.tolist() == pytest.approx([0.0, 0.2])


def test_a_bad_member_setting_is_refused_naming_its_trial():
    with pytest.raises(UserError, match=r"population\[1\]\.lr"):
        MLPModule(2, "binary", population=[{"lr": 0.1}, {"lr": -1.0}])
    with pytest.raises(UserError, match=r"population\[0\]\.hidden_dims"):
        MLPModule(2, "binary", population=[{"hidden_dims": [3]}])
