"""What each single config value may be, in one place that imports nothing heavy.

The classes check their arguments with these rules (MLPModule, the data modules, the run options), and
`trainlab fit|validate|test|predict` checks the values a config file or the command line gives with the
same rules before it imports Lightning (seconds): a mistake is answered at once, in the same words. A few
rules relate several values of one class (Joint: val_fraction + test_fraction < 1, nesterov needs SGD with
momentum, gamma's range depends on the scheduler); the early check fills in the class's defaults for them.
"""

from collections.abc import Callable
from typing import Any, Literal, NamedTuple, get_args

Activation = Literal["relu", "leaky_relu", "gelu", "tanh", "sigmoid"]
Init = Literal["default", "xavier", "kaiming"]
Optimizer = Literal["sgd", "adam", "adamw", "rmsprop"]
Scheduler = Literal["plateau", "step", "cosine"]
Loss = Literal["auto", "bce", "cross_entropy", "mse", "l1", "huber"]
Split = Literal["train", "val", "test"]
ClipAlgorithm = Literal["norm", "value"]


class Rule(NamedTuple):
    kind: type  # the declared type: float (an int given is read as its float, as the parser does), int or list
    holds: Callable[[Any], bool]  # whether a value (None aside, where the type allows it) is allowed
    allowed: str  # what is allowed, in words


MODEL: dict[str, Rule] = {
    "lr": Rule(float, lambda v: v > 0, "a number > 0"),
    "weight_decay": Rule(float, lambda v: v >= 0, "a number >= 0"),
    "momentum": Rule(float, lambda v: v >= 0, "a number >= 0"),
    "dropout": Rule(float, lambda v: 0 <= v < 1, "a probability in [0, 1)"),
    "l1_penalty": Rule(float, lambda v: v >= 0, "a number >= 0"),
    "gradient_clip_val": Rule(float, lambda v: v is None or v > 0, "null (no clipping) or a number > 0"),
    "hidden_dims": Rule(list, lambda v: all(h >= 1 for h in v), "a list of integers >= 1"),
    "ensemble": Rule(int, lambda v: v >= 1, "an integer >= 1 (1: one model)"),
    "step_size": Rule(int, lambda v: v >= 1, "an integer >= 1 (epochs)"),
    "plateau_patience": Rule(int, lambda v: v >= 0, "an integer >= 0"),
    "cosine_epochs": Rule(int, lambda v: v is None or v >= 1, "null (the run's max_epochs) or an integer >= 1"),
}
# the settings a member of a tuning population may hold on its own (MLPModule's population)
MEMBER = ("lr", "weight_decay", "momentum", "dropout", "l1_penalty", "gradient_clip_val")

DATA: dict[str, Rule] = {
    "batch_size": Rule(int, lambda v: v >= 1, "an integer >= 1"),
    "eval_batch_size": Rule(int, lambda v: v >= 1, "an integer >= 1"),
    "val_fraction": Rule(float, lambda v: 0 <= v < 1, "a fraction in [0, 1)"),
    "test_fraction": Rule(float, lambda v: 0 < v < 1, "a fraction in (0, 1)"),
    "batches_per_step": Rule(int, lambda v: v >= 1, "an integer >= 1"),
    "seed": Rule(int, lambda v: 0 <= v < 2**32, "an integer from 0 to 2**32 - 1"),
}

RUN: dict[str, Rule] = {
    "threads": Rule(int, lambda v: v is None or v >= 1, "null or an integer >= 1"),
    "summary_every": Rule(int, lambda v: v >= 0, "an integer >= 0"),
    "val_metrics_every": Rule(int, lambda v: v >= 1, "an integer >= 1"),
    "last_checkpoint_every": Rule(float, lambda v: v >= 0, "a number of seconds >= 0 (0: every epoch)"),
}
EARLY_STOPPING: dict[str, Rule] = {
    "patience": Rule(int, lambda v: v >= 1, "an integer >= 1"),
    "min_delta": Rule(float, lambda v: v >= 0, "a number >= 0"),
}
# Trainer options that trainlab's own loop replaces: the model's keys do their work
TRAINER: dict[str, Rule] = {
    "gradient_clip_val": Rule(
        float,
        lambda v: v is None or v == 0,
        "null: trainlab clips in its own optimizer loop; set model.init_args.gradient_clip_val instead",
    ),
    "accumulate_grad_batches": Rule(
        int, lambda v: v is None or v == 1, "1: for larger effective batches raise data.init_args.batch_size"
    ),
}


class Joint(NamedTuple):
    keys: tuple[str, ...]  # the arguments it relates, in the order `value` and `holds` take them
    name: str  # what the message names, after the section
    value: Callable[..., Any]  # the value the message shows
    holds: Callable[..., bool]
    allowed: str


SPLITS = Joint(
    ("val_fraction", "test_fraction"),
    "val_fraction + test_fraction",
    lambda val, test: val + test,
    lambda val, test: val + test < 1,
    "less than 1, so that a training split remains",
)
NESTEROV = Joint(
    ("nesterov", "optimizer", "momentum"),
    "nesterov",
    lambda nesterov, optimizer, momentum: nesterov,
    lambda nesterov, optimizer, momentum: not nesterov or (optimizer == "sgd" and momentum > 0),
    "true only with optimizer sgd and momentum > 0",
)
GAMMA = Joint(
    ("gamma", "scheduler"),
    "gamma",
    lambda gamma, scheduler: gamma,
    lambda gamma, scheduler: 0 < gamma < 1 if scheduler == "plateau" else gamma > 0,
    "a factor in (0, 1) for plateau, > 0 otherwise",
)
MODEL_JOINT, DATA_JOINT = (NESTEROV, GAMMA), (SPLITS,)

# Choices jsonargparse checks from the signatures' Literal types; the early check words them as errors.py does.
MODEL_CHOICES = {
    "activation": Activation,
    "init": Init,
    "optimizer": Optimizer,
    "scheduler": Scheduler,
    "loss": Loss,
    "gradient_clip_algorithm": ClipAlgorithm,
}
DATA_CHOICES = {"predict_split": Split}


def check(where: str, rules: dict[str, Rule], values: dict) -> None:
    """Raise a UserError for the first of `values` its rule refuses (`where`: the key's section)."""
    from trainlab.errors import require

    for name, value in values.items():
        if name in rules:
            require(rules[name].holds(value), f"{where}.{name}", value, rules[name].allowed)


def check_joint(where: str, joint: Joint, values: dict) -> None:
    """Raise a UserError when the values of `joint.keys` in `values` break the rule (`where`: the section)."""
    from trainlab.errors import require

    given = [values[key] for key in joint.keys]
    require(joint.holds(*given), f"{where}.{joint.name}", joint.value(*given), joint.allowed)


def first_problem(where: str, rules: dict[str, Rule], choices: dict, values: dict) -> str | None:
    """The message for the first of `values` (as a config file or the command line gives them) that is surely
    wrong, worded as the full parser and the classes word it; None if none is. A value of another type than
    the declared one (a string for a number, say) is left to the full parser, which knows the types."""
    from trainlab.errors import UserError

    for name, value in values.items():
        if name in choices and isinstance(value, str):
            options = get_args(choices[name])
            if value not in options:
                return f"{where}.{name}: got '{value}'; allowed: {', '.join(repr(o) for o in options)}"
        rule = rules.get(name)
        if rule is None or isinstance(value, bool):
            continue
        if rule.kind is float and isinstance(value, int):
            value = float(value)  # the parser reads 0 as 0.0 for a float
        if value is not None and not isinstance(value, rule.kind):
            continue
        try:
            check(where, {name: rule}, {name: value})
        except UserError as error:
            return str(error)
        except TypeError:  # a list of something else than numbers, ...
            continue
    return None
