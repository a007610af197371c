import re

import lightning.pytorch as pl
import pytest
import torch
from torch import nn

from trainlab.data import SyntheticDataModule
from trainlab.errors import UserError
from trainlab.models import MLP, MLPModule


def test_mlp_with_one_hidden_layer_is_the_chapters_simple_classifier():
    mlp = MLP(2, 1, [10])
    kinds = [type(layer) for layer in mlp]
    assert kinds == [nn.Linear, nn.ReLU, nn.Linear]
    assert (mlp[0].in_features, mlp[0].out_features, mlp[2].out_features) == (2, 10, 1)
    assert sum(p.numel() for p in mlp.parameters()) == 41  # 2*10 + 10 + 10*1 + 1


def test_mlp_options_build_the_layers_they_name():
    mlp = MLP(4, 3, [8, 6], activation="tanh", dropout=0.2, batch_norm=True)
    kinds = [type(layer) for layer in mlp]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.Tanh, nn.Dropout] * 2 + [nn.Linear]
    assert mlp(torch.randn(5, 4)).shape == (5, 3)


@pytest.mark.parametrize("init", ["xavier", "kaiming"])
def test_weight_init_options(init):
    torch.manual_seed(0)
    default = MLP(50, 1, [200])
    torch.manual_seed(0)
    custom = MLP(50, 1, [200], init=init)
    first = custom[0]
    assert torch.count_nonzero(first.bias) == 0
    bound = (6 / (50 + 200)) ** 0.5 if init == "xavier" else (6 / 50) ** 0.5
    assert first.weight.abs().max() <= bound
    assert first.weight.abs().max() > 0.9 * bound  # uses its range, unlike PyTorch's default 1/sqrt(50)
    assert not torch.equal(default[0].weight, first.weight)


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


def test_gradient_clipping_bounds_every_step():
    torch.manual_seed(0)
    module = MLPModule(input_dim=4, task="binary", hidden_dims=[16], optimizer="sgd", lr=1.0, gradient_clip_val=1e-3)
    before = torch.cat([p.detach().flatten().clone() for p in module.parameters()])
    trainer = fit(module, {"batch_size": 32}, max_epochs=1)
    after = torch.cat([p.detach().flatten() for p in module.parameters()])
    steps = trainer.global_step
    assert steps == 8  # 240 training samples in batches of 32: one optimizer step per mini-batch
    assert (after - before).norm() <= steps * 1e-3 * 1.0001  # each SGD step moves at most lr * clip


class ListensToBackward(pl.Callback):
    def on_before_backward(self, trainer, pl_module, loss):
        self.seen = getattr(self, "seen", 0) + 1


def test_lean_steps_train_exactly_like_lightnings_own_steps():
    """Without listeners MLPModule calls torch directly; with one it uses manual_backward and
    optimizer.step. Same seed, same data: the weights must come out bit for bit the same."""
    weights = []
    for callbacks in ([], [ListensToBackward()]):
        pl.seed_everything(0)
        module = MLPModule(input_dim=4, task="binary", hidden_dims=[16], gradient_clip_val=0.5, l1_penalty=1e-3)
        trainer = fit(module, callbacks=callbacks)
        assert module._steps.lean == (not callbacks)
        assert trainer.global_step == 24  # 240 samples in batches of 32, 3 epochs
        weights.append(torch.cat([p.detach().flatten() for p in module.parameters()]))
    assert callbacks[0].seen == 24
    assert torch.equal(weights[0], weights[1])


def test_lightnings_private_step_hooks_the_lean_step_relies_on_still_exist():
    """trainlab.models.lean_step calls LightningOptimizer's private hooks: a Lightning release that renames or
    removes them must fail here, by name, not in the middle of a user's fit (the step count they keep is
    checked by test_lean_steps_train_exactly_like_lightnings_own_steps)."""
    from lightning.pytorch.core.optimizer import LightningOptimizer

    from trainlab.models.lean_step import PRIVATE_HOOKS

    optimizer = LightningOptimizer(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1))
    missing = [name for name in PRIVATE_HOOKS if not callable(getattr(optimizer, name, None))]
    assert not missing, f"Lightning no longer has LightningOptimizer.{missing}: update trainlab/models/lean_step.py"


def test_batch_norm_trains_when_a_lone_sample_would_end_the_epoch():
    # 240 training samples in batches of 239: the one left over joins the batch before it
    module = MLPModule(input_dim=4, task="binary", hidden_dims=[8], batch_norm=True)
    trainer = fit(module, {"batch_size": 239}, max_epochs=2)
    assert trainer.global_step == 2


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
