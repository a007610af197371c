"""The lean optimizer step trains exactly like Lightning's own steps, and the private hooks it relies on
still exist."""

import lightning.pytorch as pl
import torch

from tests.models.helpers import fit
from trainlab.models import MLPModule


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
