"""The training doctor's reasoning: from a fit's per-epoch history to a verdict, its evidence, and the
chapter's remedies for this run. Pure functions of plain values, so each rule is testable on its own.

Verdicts, checked in this order (the first that applies wins):
  diverged             the loss became non-finite, or ended far above where it started
  exploding_gradients  the global gradient norm exceeded `exploding_norm`
  vanishing_gradients  the first layer's gradient norm is below `vanishing_ratio` times the last layer's
  learning_rate_too_low  the loss barely moved and the weights barely changed per epoch
  underfitting         the training loss stayed near that of a constant prediction
  overfitting          validation loss rose well above its best while training loss kept falling
  plateau              the training loss stopped improving for the second half, still far from a good fit
  healthy              none of the above
(not_judged: no epoch completed, so there is nothing to judge.)
"""

from dataclasses import asdict, dataclass, field, replace


@dataclass
class DoctorOptions:
    """When each verdict applies (see the module docstring); every ratio is relative, so that one set of
    thresholds serves every loss scale.

    Args:
        every_step: also log the global gradient norm after every optimizer step (grad_norm_step/global);
            this listens to a per-step hook, which turns the fast step path off.
        diverged_rise: final train loss above this multiple of the first epoch's: diverged.
        exploding_norm: a global gradient norm above this: exploding gradients.
        vanishing_ratio: median first-layer / last-layer gradient norm below this: vanishing gradients.
        min_progress: train loss fell by less than this fraction from first to last epoch ...
        min_update_ratio: ... and the weights moved by less than this fraction per epoch: learning rate too low.
        underfit_fraction: final train loss above this fraction of a constant prediction's loss: underfitting.
        overfit_rise: final val loss above (1 + this) times its best, the best before the last quarter of
            epochs, and train loss still falling after the best epoch: overfitting.
        plateau_progress: train loss improved by less than this fraction over the second half of training ...
        plateau_fraction: ... while above this fraction of a constant prediction's loss: plateau.
        min_epochs: fewer epochs than this: too short to judge overfitting or plateaus.
    """

    diverged_rise: float = 1.5
    exploding_norm: float = 1e3
    vanishing_ratio: float = 1e-3
    min_progress: float = 0.02
    min_update_ratio: float = 1e-4
    underfit_fraction: float = 0.9
    overfit_rise: float = 0.1
    plateau_progress: float = 0.01
    plateau_fraction: float = 0.5
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
    split), `early_stopping` (bool), `non_finite` (None or the guard's report) and the model's hyperparameters
    under `hparams`; the remedies are worked out from them."""
    t, h = thresholds, history
    if h.val_loss and not h.val_epoch:  # validated every epoch
        h = replace(h, val_epoch=list(range(len(h.val_loss))))
    evidence: dict = {"epochs": len(h.train_loss)}
    if h.train_loss:
        evidence.update(first_train_loss=h.train_loss[0], final_train_loss=h.train_loss[-1])
    baseline = context.get("baseline_loss")
    if baseline:
        evidence["constant_prediction_loss"] = baseline
    if h.val_loss:
        best = min(range(len(h.val_loss)), key=h.val_loss.__getitem__)
        evidence.update(best_epoch=h.val_epoch[best] + 1, best_val_loss=h.val_loss[best], final_val_loss=h.val_loss[-1])
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

    verdict = _verdict(h, context, t, evidence)
    return {
        "verdict": verdict,
        "evidence": evidence,
        "remedies": remedies(verdict, context),
        "thresholds": asdict(t),
    }


def _verdict(h: History, context: dict, t: DoctorOptions, evidence: dict) -> str:
    if context.get("non_finite"):
        evidence["non_finite"] = context["non_finite"]
        return "diverged"
    if h.train_loss and h.train_loss[-1] > t.diverged_rise * h.train_loss[0]:
        return "diverged"
    if h.grad_norm and max(h.grad_norm) > t.exploding_norm:
        return "exploding_gradients"
    if h.first_layer_grad and h.last_layer_grad:
        first, last = median(h.first_layer_grad), median(h.last_layer_grad)
        if last > 0 and first / last < t.vanishing_ratio:
            evidence["first_to_last_layer_grad_ratio"] = first / last
            return "vanishing_gradients"
    if not h.train_loss:
        return "not_judged"
    progress = 1 - h.train_loss[-1] / h.train_loss[0] if h.train_loss[0] else 0.0
    evidence["train_loss_progress"] = progress
    if progress < t.min_progress and h.update_ratio and median(h.update_ratio) < t.min_update_ratio:
        return "learning_rate_too_low"
    baseline = context.get("baseline_loss")
    if baseline and h.train_loss[-1] > t.underfit_fraction * baseline:
        return "underfitting"
    epochs = len(h.train_loss)
    if h.val_loss and epochs >= t.min_epochs:
        best = min(range(len(h.val_loss)), key=h.val_loss.__getitem__)
        best_epoch = min(h.val_epoch[best], epochs - 1)
        rose = h.val_loss[-1] > (1 + t.overfit_rise) * h.val_loss[best]
        train_fell = h.train_loss[-1] < h.train_loss[best_epoch]
        if rose and train_fell and best_epoch < 0.75 * epochs:
            return "overfitting"
    if epochs >= t.min_epochs and baseline:
        half = h.train_loss[epochs // 2]
        late_progress = 1 - h.train_loss[-1] / half if half else 0.0
        if late_progress < t.plateau_progress and h.train_loss[-1] > t.plateau_fraction * baseline:
            return "plateau"
    return "healthy"


def remedies(verdict: str, context: dict) -> list[str]:
    """The chapter's remedies for `verdict`, with values worked out from this run's hyperparameters."""
    hp = context.get("hparams", {})
    lr = hp.get("lr", 1e-3)
    hidden = list(hp.get("hidden_dims", [64, 64]))
    key = "model.init_args"
    if verdict == "diverged" or verdict == "exploding_gradients":
        clip = hp.get("gradient_clip_val")
        return [
            f"lower the learning rate: {key}.lr={lr / 10:g} (now {lr:g})",
            f"clip gradients: {key}.gradient_clip_val=1.0" + (f" (now {clip:g})" if clip else " (now off)"),
            f"normalise layer inputs: {key}.batch_norm=true"
            if not hp.get("batch_norm")
            else "check the data for extreme values",
        ]
    if verdict == "vanishing_gradients":
        activation, init = hp.get("activation", "relu"), hp.get("init", "default")
        advice = [f"use ReLU: {key}.activation=relu (now {activation})"] if activation in ("sigmoid", "tanh") else []
        if init == "default":
            advice.append(
                f"initialise for the activation: {key}.init={'kaiming' if activation != 'tanh' else 'xavier'}"
            )
        if not hp.get("batch_norm"):
            advice.append(f"normalise layer inputs: {key}.batch_norm=true")
        return advice + [f"a shallower network: {key}.hidden_dims={hidden[: max(1, len(hidden) // 2)]} (now {hidden})"]
    if verdict == "learning_rate_too_low":
        return [f"raise the learning rate: {key}.lr={lr * 10:g} (now {lr:g})", "or train for more epochs"]
    if verdict == "underfitting":
        return [
            f"a larger model: {key}.hidden_dims={[2 * w for w in hidden] or [64]} (now {hidden})",
            "train longer: double trainer.max_epochs",
            f"a higher learning rate: {key}.lr={lr * 3:g} (now {lr:g}), or another optimizer",
            "more informative features",
        ]
    if verdict == "overfitting":
        stop = (
            "early stopping was on"
            if context.get("early_stopping")
            else "turn on early stopping: run.early_stopping.patience=10"
        )
        dropout = hp.get("dropout", 0.0)
        decay = hp.get("weight_decay", 0.0)
        return [
            stop + " (and test the best checkpoint: run.test_ckpt=best)",
            f"dropout: {key}.dropout={min(0.5, max(0.2, dropout * 2)):g} (now {dropout:g})",
            f"weight decay: {key}.weight_decay={max(1e-4, decay * 10):g} (now {decay:g})",
            f"a smaller network: {key}.hidden_dims={[max(1, w // 2) for w in hidden]} (now {hidden})",
            "more training data",
        ]
    if verdict == "plateau":
        return [
            f"a learning-rate schedule: {key}.scheduler=plateau or cosine (now {hp.get('scheduler')})",
            f"another optimizer or learning rate: {key}.optimizer=adam, {key}.lr={lr * 3:g}",
            f"a larger model: {key}.hidden_dims={[2 * w for w in hidden]}",
        ]
    return []
