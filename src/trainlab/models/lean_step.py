"""The optimizer step of MLPModule's training loop: the one place training uses Lightning's private API.

In manual optimization Lightning's `manual_backward` and `LightningOptimizer.step` wrap every step in hooks,
a profiler and closures; for a small MLP that costs more than the step itself. When nothing listens to those
hooks, a single device trains and no gradient scaler is in use, a lean step calls torch directly and keeps
Lightning's step counter (trainer.global_step) with LightningOptimizer's two private hooks. Otherwise the
public path runs. tests/models/test_lean_step.py checks that both paths train bit for bit alike and that the private
hooks still exist, so a Lightning release that changes them fails loudly there, not silently in a fit.
"""

import lightning.pytorch as pl
import torch
from lightning.pytorch.strategies import SingleDeviceStrategy
from lightning.pytorch.utilities.model_helpers import is_overridden

# Hooks Lightning calls around each optimizer step; the lean step skips them, so no one may override them.
STEP_HOOKS = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")
# LightningOptimizer's private hooks around a step: the step counter and the profiler.
PRIVATE_HOOKS = ("_on_before_step", "_on_after_step")


def can_be_lean(module: pl.LightningModule, trainer: pl.Trainer) -> bool:
    """Whether `module`'s steps may skip Lightning's wrappers: nothing listens, one device, no gradient scaler."""
    listening = any(is_overridden(hook, module, pl.LightningModule) for hook in (*STEP_HOOKS, "backward")) or any(
        is_overridden(hook, callback, pl.Callback) for callback in trainer.callbacks for hook in STEP_HOOKS
    )
    scaler = getattr(trainer.precision_plugin, "scaler", None)
    return type(trainer.strategy) is SingleDeviceStrategy and scaler is None and not listening


class StepPath:
    """zero_grad, backward and step for one fit: torch's own calls when lean, Lightning's public ones otherwise."""

    def __init__(self, module: pl.LightningModule, lean: bool):
        self.module, self.lean = module, lean
        self.trained = [p for p in module.parameters() if p.requires_grad]

    def zero_grad(self, optimizer) -> None:
        if self.lean:  # optimizer.zero_grad(set_to_none=False) without its profiling wrapper: in place,
            for parameter in self.trained:  # as the pack's backward writes into this buffer (gradient_leaves)
                if parameter.grad is not None:
                    parameter.grad.zero_()
        else:
            optimizer.zero_grad(set_to_none=True)

    def backward(self, objective: torch.Tensor) -> None:
        if self.lean:
            objective.backward()
        else:
            self.module.manual_backward(objective)

    def step(self, optimizer) -> None:
        """One step of the wrapped optimizer (Lightning's LightningOptimizer around trainlab's PackedOptimizer)."""
        if self.lean:
            packed = optimizer.optimizer
            optimizer._on_before_step()  # trainer.global_step and the profiler, as optimizer.step() keeps them
            packed.update(packed.active)  # PackedOptimizer.step without torch's per-call profiling wrapper
            optimizer._on_after_step()
        else:
            optimizer.step()
