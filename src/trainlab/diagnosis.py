"""The training doctor's reasoning: from a fit's per-epoch history and a few measurements at its end to a
verdict, its evidence, and the chapter's remedies for this run. Pure functions of plain values, so each rule
is testable on its own; benchmarks/doctor.py scores them on a labelled suite of real fits.

Verdicts, checked in this order (the first that applies wins):
  exploding_gradients  the gradient norm jumped far above its early level, or the loss went non-finite in a
                       deep network without normalisation
  diverged             the loss became non-finite, or ended far above where it started
  dead_units           most ReLU units never activate on the training split, or the gradients fell to zero
  unstable             the training loss rose well above its best, or jumps about without going down
  vanishing_gradients  the first layer's gradient norm is a tiny fraction of the last layer's
  imbalance            imbalanced classes and a model that misses the rare class: accuracy misleads
  learning_rate_too_low  the loss barely moved and the weights barely changed per epoch
  underfitting         the training loss stayed near that of a constant prediction, or stalled far above 0
  overfitting          validation loss rose well above its best (relative and absolute floors) while training
                       loss kept falling, and early stopping did not keep the best weights
  healthy              none of the above
(not_judged: no epoch completed, so there is nothing to judge.)
A network that diverged, oscillates or died is never called underfitting, and no remedy raises a learning
rate for it; no remedy restates a setting the run already has.
"""

from dataclasses import asdict, dataclass, field, replace

# When the rarest class has fewer than this many samples per sample of the commonest, accuracy can mislead
# (binary: a 20/80 split).
IMBALANCE_RATIO = 0.25


@dataclass
class DoctorOptions:
    """When each verdict applies (see the module docstring). Loss thresholds are relative to the constant
    prediction's loss (the data's own scale) or to the curve's own values, so one set serves every task.

    Args:
        every_step: also log the global gradient norm after every optimizer step (grad_norm_step/global);
            this listens to a per-step hook, which turns the fast step path off.
        exploding_jump: a gradient norm above this multiple of its median over the first epochs: exploding.
        deep_layers: a non-finite loss in a network with at least this many hidden layers and no batch norm
            is put down to exploding gradients.
        diverged_rise: final train loss above this multiple of the first epoch's: diverged.
        dead_fraction: at least this share of ReLU units never active on the training split: dead units.
        unstable_rise: final train loss above its best by this fraction of the constant prediction's loss, or
            twice its best and above it by a tenth of that: unstable.
        shrunk_weights: weights whose norm fell below this fraction of their initial norm under weight decay:
            underfitting (the decay, not the data, decides the weights).
        vanishing_ratio: median first-layer / last-layer gradient norm below this: vanishing gradients.
        minority_recall: imbalanced classes (the rarest below 1/4 of the commonest) and the rarest class's
            validation recall below this: imbalance.
        min_progress: train loss fell by less than this fraction from first to last epoch ...
        min_update_ratio: ... and the weights moved by less than this fraction per epoch: learning rate too low.
        underfit_fraction: final train loss above this fraction of a constant prediction's loss: underfitting.
        stall_fraction: ... or above this fraction while it improved by less than `stall_progress` over the
            last half of the epochs: underfitting (stalled).
        overfit_rise: final val loss above (1 + this) times its best ...
        overfit_floor: ... and above it by at least this fraction of the constant prediction's loss (near-zero
            losses are not overfitting), the best before the last quarter of epochs, train loss still falling.
        min_epochs: fewer epochs than this: too short to judge overfitting, instability or stalls.
    """

    exploding_jump: float = 100.0
    deep_layers: int = 4
    diverged_rise: float = 1.5
    dead_fraction: float = 0.9
    unstable_rise: float = 0.15
    shrunk_weights: float = 0.1
    vanishing_ratio: float = 1e-3
    minority_recall: float = 0.2
    min_progress: float = 0.02
    min_update_ratio: float = 1e-4
    underfit_fraction: float = 0.9
    stall_fraction: float = 0.5
    stall_progress: float = 0.05
    overfit_rise: float = 0.1
    overfit_floor: float = 0.05
    min_epochs: int = 8
    every_step: bool = False


@dataclass
class History:
    """What the doctor watched, one entry per epoch (val_loss may be empty: no validation)."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_epoch: list[int] = field(default_factory=list)  # the epoch (0-based) of each val_loss
    grad_norm: list[float] = field(default_factory=list)  # global L2 norm of the last step's gradients
    first_layer_grad: list[float] = field(default_factory=list)
    last_layer_grad: list[float] = field(default_factory=list)
    update_ratio: list[float] = field(default_factory=list)  # max over layers of |W_end - W_start| / |W_start|


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else float("nan")


def diagnose(history: History, context: dict, thresholds: DoctorOptions) -> dict:
    """The verdict for one fit. `context` has `baseline_loss` (a constant prediction's loss on the training
    split), `early_stopping` (bool), `non_finite` (None or the guard's report), `dead_fraction` (the share of
    ReLU units never active on the training split, or None), `weight_norm_ratio` (the weights' norm at the end
    over at the start), `classes` (for classification: the rarest class's
    share of the commonest's and its validation recall) and the model's hyperparameters under `hparams`; the
    remedies are worked out from them."""
    t, h = thresholds, history
    if h.val_loss and not h.val_epoch:  # validated every epoch
        h = replace(h, val_epoch=list(range(len(h.val_loss))))
    evidence: dict = {"epochs": len(h.train_loss)}
    if h.train_loss:
        evidence.update(
            first_train_loss=h.train_loss[0], best_train_loss=min(h.train_loss), final_train_loss=h.train_loss[-1]
        )
    baseline = context.get("baseline_loss")
    if baseline:
        evidence["constant_prediction_loss"] = baseline
    if h.val_loss:
        best = min(range(len(h.val_loss)), key=h.val_loss.__getitem__)
        held_out = context.get("held_out", "val")  # the split evaluated every epoch: val, or test without one
        evidence["best_epoch"] = h.val_epoch[best] + 1
        evidence[f"best_{held_out}_loss"], evidence[f"final_{held_out}_loss"] = h.val_loss[best], h.val_loss[-1]
        if h.train_loss and h.val_epoch[-1] < len(h.train_loss):
            evidence["final_gap"] = h.val_loss[-1] - h.train_loss[h.val_epoch[-1]]
    if h.grad_norm:
        evidence.update(max_grad_norm=max(h.grad_norm), final_grad_norm=h.grad_norm[-1])
    if h.first_layer_grad and h.last_layer_grad:
        evidence.update(
            first_layer_grad_norm=median(h.first_layer_grad), last_layer_grad_norm=median(h.last_layer_grad)
        )
    if h.update_ratio:
        evidence["median_update_ratio"] = median(h.update_ratio)
    for key in ("dead_fraction", "weight_norm_ratio", "classes"):
        if context.get(key) is not None:
            evidence[key] = context[key]

    verdict = _verdict(h, context, t, evidence)
    return {
        "verdict": verdict,
        "evidence": evidence,
        "remedies": remedies(verdict, context),
        "thresholds": asdict(t),
    }


def _verdict(h: History, context: dict, t: DoctorOptions, evidence: dict) -> str:
    hp = context.get("hparams", {})
    deep = len(hp.get("hidden_dims", [])) >= t.deep_layers and not hp.get("batch_norm")
    if h.grad_norm:
        early = median(h.grad_norm[:3])
        if early > 0 and max(h.grad_norm) > t.exploding_jump * early:
            evidence["grad_norm_jump"] = max(h.grad_norm) / early
            return "exploding_gradients"
    if context.get("non_finite"):
        evidence["non_finite"] = context["non_finite"]
        return "exploding_gradients" if deep else "diverged"
    if not h.train_loss:
        return "not_judged"
    if h.train_loss[-1] > t.diverged_rise * h.train_loss[0]:
        return "diverged"
    shrink = context.get("weight_norm_ratio")
    if shrink is not None and shrink < t.shrunk_weights and hp.get("weight_decay", 0.0) > 0:
        return "underfitting"
    dead = context.get("dead_fraction")
    collapsed = h.last_layer_grad and h.last_layer_grad[-1] == 0 and h.first_layer_grad[-1] == 0
    if (dead is not None and dead >= t.dead_fraction) or collapsed:
        return "dead_units"
    baseline = context.get("baseline_loss") or 0.0
    epochs, late = len(h.train_loss), h.train_loss[len(h.train_loss) // 2 :]
    if epochs >= t.min_epochs and baseline:
        rise = h.train_loss[-1] - min(h.train_loss)
        doubled = h.train_loss[-1] > 2 * min(h.train_loss) and rise > 0.1 * t.unstable_rise * baseline
        if rise > t.unstable_rise * baseline or doubled:
            evidence["train_loss_rise"] = rise
            return "unstable"
    if h.first_layer_grad and h.last_layer_grad:
        first, last = median(h.first_layer_grad), median(h.last_layer_grad)
        if last > 1e-6 * max(1.0, baseline) and first / last < t.vanishing_ratio:
            evidence["first_to_last_layer_grad_ratio"] = first / last
            return "vanishing_gradients"
    classes = context.get("classes")
    if classes and classes["rarest_share"] < IMBALANCE_RATIO and classes["rarest_recall"] < t.minority_recall:
        return "imbalance"
    progress = 1 - h.train_loss[-1] / h.train_loss[0] if h.train_loss[0] else 0.0
    evidence["train_loss_progress"] = progress
    if progress < t.min_progress and h.update_ratio and median(h.update_ratio) < t.min_update_ratio:
        return "learning_rate_too_low"
    if baseline and h.train_loss[-1] > t.underfit_fraction * baseline:
        return "underfitting"
    if baseline and epochs >= t.min_epochs:
        late_progress = 1 - late[-1] / late[0] if late[0] else 0.0
        if h.train_loss[-1] > t.stall_fraction * baseline and late_progress < t.stall_progress:
            evidence["late_train_loss_progress"] = late_progress
            return "underfitting"
    if h.val_loss and epochs >= t.min_epochs and not context.get("early_stopping"):
        best = min(range(len(h.val_loss)), key=h.val_loss.__getitem__)
        best_epoch = min(h.val_epoch[best], epochs - 1)
        rise = h.val_loss[-1] - h.val_loss[best]
        rose = rise > t.overfit_rise * h.val_loss[best] and rise > t.overfit_floor * baseline
        train_fell = h.train_loss[-1] < h.train_loss[best_epoch]
        if rose and train_fell and best_epoch < 0.75 * epochs:
            return "overfitting"
    return "healthy"


def remedies(verdict: str, context: dict) -> list[str]:
    """The chapter's remedies for `verdict`, with values worked out from this run's hyperparameters; a remedy
    that the run already follows is left out."""
    hp = context.get("hparams", {})
    lr = hp.get("lr", 1e-3)
    hidden = list(hp.get("hidden_dims", [64, 64]))
    key = "model.init_args"
    lower_lr = f"lower the learning rate: {key}.lr={lr / 10:g} (now {lr:g})"
    batch_norm = [] if hp.get("batch_norm") else [f"normalise layer inputs: {key}.batch_norm=true"]
    clip = [] if hp.get("gradient_clip_val") else [f"clip gradients: {key}.gradient_clip_val=1.0 (now off)"]
    if verdict in ("diverged", "exploding_gradients"):
        return [lower_lr, *clip, *batch_norm] + (["check the data for extreme values"] if verdict == "diverged" else [])
    if verdict == "dead_units":
        activation, init = hp.get("activation", "relu"), hp.get("init", "default")
        advice = [lower_lr]
        if activation == "relu":
            advice.append(f"an activation that cannot die: {key}.activation=leaky_relu (now relu)")
        if init == "default":
            advice.append(f"initialise for ReLU: {key}.init=kaiming")
        return advice + batch_norm
    if verdict == "unstable":
        schedule = [] if hp.get("scheduler") else [f"a decaying learning rate: {key}.scheduler=cosine (now none)"]
        return [lower_lr, *schedule, *clip]
    if verdict == "vanishing_gradients":
        activation, init = hp.get("activation", "relu"), hp.get("init", "default")
        advice = [f"use ReLU: {key}.activation=relu (now {activation})"] if activation in ("sigmoid", "tanh") else []
        if init == "default":
            advice.append(
                f"initialise for the activation: {key}.init={'kaiming' if activation != 'tanh' else 'xavier'}"
            )
        return (
            advice
            + batch_norm
            + [f"a shallower network: {key}.hidden_dims={hidden[: max(1, len(hidden) // 2)]} (now {hidden})"]
        )
    if verdict == "imbalance":
        classes = context.get("classes") or {}
        monitor, held_out = classes.get("monitor", ""), context.get("held_out", "val")
        advice = [
            f"monitor a metric that sees the rare class: run.monitor={held_out}/f1 or {held_out}/auroc (now {monitor})"
        ]
        if not monitor.endswith(("accuracy",)):
            advice = []
        return advice + [
            "more samples of the rare class (or resample the training split so classes are balanced)",
            "train longer or with a larger model: the model predicts the common class",
        ]
    if verdict == "learning_rate_too_low":
        return [f"raise the learning rate: {key}.lr={lr * 10:g} (now {lr:g})", "or train for more epochs"]
    if verdict == "underfitting":
        decay = hp.get("weight_decay", 0.0)
        advice = [f"less weight decay: {key}.weight_decay={decay / 100:g} (now {decay:g})"] if decay >= 0.01 else []
        advice += [
            f"a larger model: {key}.hidden_dims={[2 * w for w in hidden] or [64]} (now {hidden})",
            "train longer: double trainer.max_epochs",
        ]
        if lr < 0.01:
            advice.append(f"a higher learning rate: {key}.lr={lr * 3:g} (now {lr:g})")
        return advice + ["more informative features"]
    if verdict == "overfitting":
        dropout = hp.get("dropout", 0.0)
        decay = hp.get("weight_decay", 0.0)
        if context.get("early_stopping"):
            advice = []
        elif context.get("held_out", "val") == "test":  # stopping early on the test split would choose on it
            advice = [
                "hold out a validation split and stop early on it: data.init_args.val_fraction=0.2 "
                "run.early_stopping.patience=10 run.test_ckpt=best"
            ]
        else:
            advice = ["turn on early stopping: run.early_stopping.patience=10"]
        if dropout < 0.5:
            advice.append(f"dropout: {key}.dropout={min(0.5, max(0.2, dropout * 2)):g} (now {dropout:g})")
        advice.append(f"weight decay: {key}.weight_decay={max(1e-4, decay * 10):g} (now {decay:g})")
        if max(hidden, default=0) > 8:
            advice.append(f"a smaller network: {key}.hidden_dims={[max(1, w // 2) for w in hidden]} (now {hidden})")
        return advice + ["more training data"]
    return []
