"""What a non-finite training loss does to MLPModule's fit. It is caught before the optimizer step it would
take, so the weights stay the last finite ones. One model (or a pack of folds or ensemble members) stops with
TrainingFailed: the numbers, and the chapter's remedy (a lower learning rate, gradient clipping). In a tuning
population it ends only the unit it came from (a bad setting of one trial); the others go on."""

import math

import torch

from trainlab.errors import TrainingFailed


def finite_everywhere(module, total: torch.Tensor) -> bool:
    """Whether every member's loss is finite on every rank (so that all ranks stop together). On the CPU this
    costs nothing; on a GPU it is one host synchronisation per step."""
    finite = math.isfinite(total.item())  # the members' summed loss: finite if each one is
    if not module._steps.lean and module.trainer.world_size > 1:  # a lean step runs on one device only
        finite = module.trainer.strategy.reduce_boolean_decision(finite, all=True)
    return finite


def stop_units(module, losses: torch.Tensor) -> torch.Tensor:
    """Freeze each unit with a non-finite loss before the step it would take, and record why in
    `module.diverged`. Returns the losses with those units' rows zeroed."""
    bad = ~torch.isfinite(losses)
    for member in bad.nonzero().flatten().tolist():
        unit = module.member_units[member]
        if unit not in module.diverged:
            module.diverged[unit] = (
                f"the training loss became {losses[member].item()} at epoch {module.current_epoch + 1}, "
                f"step {module.trainer.global_step + 1}"
            )
            module.slot_evaluation.stop(module, [unit], module.current_epoch)
    return torch.where(bad, torch.zeros_like(losses), losses)


def fail(module, losses: torch.Tensor, optimizer, last_loss: torch.Tensor | None) -> None:
    """Stop the fit with TrainingFailed: which member, when, the last finite loss and the learning rate."""
    trainer, key = module.trainer, module.key
    member = int((~torch.isfinite(losses)).nonzero()[0])
    lr_now, lr = optimizer.param_groups[0]["lr"] * module.hparams.lr, module.hparams.lr
    value = losses[member].item()
    last = float(last_loss[member]) if last_loss is not None else None
    report = {
        "loss": value,
        "epoch": module.current_epoch + 1,
        "step": trainer.global_step + 1,
        "last_finite_loss": last,
        "lr": lr_now,
    }
    rate = f"{lr_now:g}" if lr_now == lr else f"{lr_now:g} now, {lr:g} configured"
    who = f" of member {member} (slot {module.member_slots[member]})" if module.members > 1 else ""
    raise TrainingFailed(
        f"the training loss{who} became {value} at epoch {report['epoch']}, step {report['step']} (the last "
        f"finite loss was {last}); the learning rate ({rate}) is likely too high for this model: try "
        f"{key}.lr={lr / 10:g} and {key}.gradient_clip_val=1.0. The weights were not updated with "
        "it: checkpoints/last.ckpt, if the run wrote one, holds a good epoch (at most "
        "run.last_checkpoint_every seconds of training before this one)",
        report,
    )
