"""A tune config: which fit config to tune, the search space over its dotted keys, and how to search.

    base: ../seed.yaml                  # any config `trainlab fit` runs (relative to this file)
    metric: val/loss                    # what trials are ranked on; default: the base config's run.monitor
    mode: auto                          # min or max; auto takes the metric's natural direction
    sampler: tpe                        # grid, random or tpe (Bayesian)
    seed: 0
    n_trials: 30                        # the study's total; grid: the whole grid unless set
    timeout: null                       # seconds of this command's search; with n_trials, whichever ends first
    pruner: hyperband                   # none, median or hyperband
    pruner_options: {}                  # passed to Optuna's pruner
    workers: 1                          # processes on this machine sharing the study
    population: 32                      # trials asked at once; those of one shape train as one packed fit
    storage: null                       # an Optuna storage URL; default: a journal file in the study directory
    output_dir: lightning_logs/tune     # the study directory is output_dir/name
    name: null                          # the study's name; default: this file's name
    overrides: {trainer.max_epochs: 50} # fixed for every trial
    cv: null                            # {folds: K, seed: 0}: a trial's value is its mean over K folds
    space:
      model.init_args.lr: {low: 1.0e-4, high: 0.1, log: true}   # a float range
      data.init_args.batch_size: {low: 16, high: 128, step: 16}  # an int range (low and high are ints)
      model.init_args.hidden_dims: [[32], [64, 32]]              # choices (a list, or {choices: [...]})

Everything here is checked without Lightning; what needs the base config is checked in tuning.checks.
"""

import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trainlab.errors import UserError, require

SAMPLERS = ("grid", "random", "tpe")
PRUNERS = ("none", "median", "hyperband")
MODES = ("auto", "min", "max")
RANGE_KEYS = {"low", "high", "log", "step", "type"}
# Trials asked at once (each worker). On a CPU a step of the chapter's small MLPs is mostly overhead: a pack of
# 32 costs about 1.5x one of them, and fewer, fuller packs pay a fit's fixed cost (config, setup) fewer times.
DEFAULT_POPULATION = 32
SERVING_KEYS = ("batch_size", "batches_per_step", "eval_batch_size", "on_device", "scale")


@dataclass(frozen=True)
class Param:
    """One dimension of the search space: a range (low, high, log, step) or a list of choices."""

    key: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    is_int: bool = False
    choices: tuple = ()

    @property
    def is_choice(self) -> bool:
        return bool(self.choices)

    def grid_values(self) -> list:
        """Every value a grid tries: the choices, or the range walked in steps."""
        if self.is_choice:
            return list(self.choices)
        step = self.step or 1
        count = int(math.floor((self.high - self.low) / step + 1e-9)) + 1
        values = [self.low + i * step for i in range(count)]
        return [int(v) for v in values] if self.is_int else [round(v, 12) for v in values]

    def extremes(self) -> list:
        """The values that checking the space tries: every choice, or both ends of the range."""
        return [plain(c) for c in self.choices] if self.is_choice else [self.low, self.high]

    def encoded_choices(self) -> list:
        """Optuna's categorical values must be scalars: a list choice (hidden_dims) is kept as its JSON text."""
        return [json.dumps(plain(c)) if isinstance(c, tuple) else c for c in self.choices]

    def decode(self, value):
        """The config value for a value Optuna holds for this parameter."""
        if self.is_choice:
            return plain(self.choices[self.encoded_choices().index(value)])
        return value


@dataclass
class TuneConfig:
    path: Path
    base: Path
    space: list[Param]
    name: str
    metric: str | None = None
    mode: str = "auto"
    sampler: str = "tpe"
    seed: int = 0
    n_trials: int | None = None
    timeout: float | None = None
    pruner: str = "none"
    pruner_options: dict = field(default_factory=dict)
    workers: int = 1
    population: int = DEFAULT_POPULATION
    storage: str | None = None
    output_dir: Path = Path("lightning_logs/tune")
    overrides: dict[str, Any] = field(default_factory=dict)
    cv: dict | None = None  # {folds: K, seed: S}

    @property
    def study_dir(self) -> Path:
        return self.output_dir / self.name

    def grid(self) -> list[dict]:
        """Every combination of the grid as Optuna's parameters, in order (the last key varies fastest)."""
        keys = [p.key for p in self.space]
        combinations = itertools.product(*(p.encoded_choices() for p in self.space))
        return [dict(zip(keys, values, strict=True)) for values in combinations]

    def space_signature(self) -> str:
        """The search as a string (base, fixed overrides, sampler, space, cv): a study re-run with a different
        one is refused, since its trials would not be comparable."""
        search = {
            "base": hashlib.sha256(self.base.read_bytes()).hexdigest(),  # its content: paths differ per machine
            "overrides": self.overrides,
            "sampler": self.sampler,
            "space": [vars(p) for p in self.space],
            "cv": self.cv,
        }
        return json.dumps(search, sort_keys=True, default=list)


KNOWN_KEYS = {
    "base", "space", "name", "metric", "mode", "sampler", "seed", "n_trials", "timeout", "pruner",
    "pruner_options", "workers", "population", "storage", "output_dir", "overrides", "cv",
}  # fmt: skip


def early_problem(config: "TuneConfig") -> str | None:
    """What tuning.checks would refuse in the base config with the overrides, or with a value at an end of the
    space, that trainlab.early_checks finds without Lightning (seconds): the first such problem, in
    tuning.checks' words; None if there is none."""
    from trainlab.early_checks import check_early, override_args

    tries = [(f"base {config.base.name} with overrides", {})]
    tries += [(f"space.{p.key}={value!r}", {p.key: value}) for p in config.space for value in p.extremes()]
    for where, params in tries:
        problem = check_early(["fit", "-c", str(config.base), *override_args({**config.overrides, **params})])
        if problem is not None:
            return f"{where}: {problem}"
    return None


def load_tune_config(path: str | Path, **settings) -> TuneConfig:
    """Read and check a tune config; `settings` (workers, storage, n_trials, timeout, ...) replace its own."""
    path = Path(path)
    require(path.is_file(), "-c", str(path), "a tune config file (YAML)")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise UserError(f"{path}: not valid YAML: {str(error).splitlines()[0]}") from None
    require(isinstance(raw, dict), str(path), type(raw).__name__, "a mapping with base and space")
    raw.update({k: v for k, v in settings.items() if v is not None})
    for key in raw:
        if key not in KNOWN_KEYS:
            raise UserError(f"{path}: unknown key {key!r}; the keys are {', '.join(sorted(KNOWN_KEYS))}")

    require("base" in raw, f"{path}: base", None, "the path of a fit config (relative to the tune config)")
    base = (path.parent / str(raw["base"])).resolve()
    require(base.is_file(), "base", raw["base"], f"a fit config file; {base} does not exist")
    space = raw.get("space")
    require(isinstance(space, dict) and space, "space", space, "a mapping from dotted config keys to ranges or choices")
    config = TuneConfig(
        path=path,
        base=base,
        space=[parse_param(key, spec) for key, spec in space.items()],
        name=str(raw.get("name") or path.stem),
        metric=raw.get("metric"),
        mode=raw.get("mode", "auto"),
        sampler=raw.get("sampler", "tpe"),
        seed=raw.get("seed", 0),
        n_trials=raw.get("n_trials"),
        timeout=raw.get("timeout"),
        pruner=str(raw.get("pruner", "none")).lower() if raw.get("pruner") is not None else "none",
        pruner_options=raw.get("pruner_options") or {},
        workers=raw.get("workers", 1),
        population=raw.get("population", DEFAULT_POPULATION),
        storage=raw.get("storage"),
        output_dir=Path(raw.get("output_dir", "lightning_logs/tune")),
        overrides=raw.get("overrides") or {},
        cv=raw.get("cv"),
    )
    _check(config)
    if config.sampler == "grid":  # a grid is a list of choices per key; ranges become their steps
        config.space = [p if p.is_choice else Param(p.key, choices=tuple(p.grid_values())) for p in config.space]
    return config


def _check(config: TuneConfig) -> None:
    require(config.sampler in SAMPLERS, "sampler", config.sampler, f"one of {', '.join(SAMPLERS)}")
    require(config.pruner in PRUNERS, "pruner", config.pruner, f"one of {', '.join(PRUNERS)}")
    require(isinstance(config.pruner_options, dict), "pruner_options", config.pruner_options, "a mapping")
    require(config.mode in MODES, "mode", config.mode, f"one of {', '.join(MODES)}")
    require(config.metric is None or isinstance(config.metric, str), "metric", config.metric, "a metric name")
    require(_is_int(config.seed), "seed", config.seed, "an integer")
    require(_is_int(config.workers) and config.workers >= 1, "workers", config.workers, "an integer >= 1")
    require(
        _is_int(config.population) and config.population >= 1,
        "population",
        config.population,
        "an integer >= 1 (trials asked at once; 1: one fit per trial)",
    )
    require(
        config.n_trials is None or (_is_int(config.n_trials) and config.n_trials >= 1),
        "n_trials",
        config.n_trials,
        "an integer >= 1",
    )
    require(
        config.timeout is None or (_is_number(config.timeout) and config.timeout > 0),
        "timeout",
        config.timeout,
        "a number of seconds > 0",
    )
    require(isinstance(config.overrides, dict), "overrides", config.overrides, "a mapping from dotted keys to values")
    require(config.storage is None or isinstance(config.storage, str), "storage", config.storage, "a storage URL")
    require("/" not in config.name and config.name not in ("", ".", ".."), "name", config.name, "a name without /")
    if config.cv is not None:
        require(isinstance(config.cv, dict), "cv", config.cv, "{folds: K, seed: S} or null")
        for key in config.cv:
            if key not in ("folds", "seed"):
                raise UserError(f"cv: unknown key {key!r}; allowed: folds, seed")
        folds, seed = config.cv.get("folds"), config.cv.setdefault("seed", 0)
        require(_is_int(folds) and folds >= 2, "cv.folds", folds, "an integer >= 2")
        require(_is_int(seed), "cv.seed", seed, "an integer")
    for p in config.space:  # trials are compared on one validation split: none may change the data itself
        option = p.key.removeprefix("data.init_args.")
        if p.key.startswith("data.") and option not in SERVING_KEYS:
            served = ", ".join(f"data.init_args.{k}" for k in SERVING_KEYS)
            raise UserError(
                f"space.{p.key}: trials must see the same data and splits to be compared; the data keys a "
                f"search may change are how batches are served: {served}"
            )
    if config.sampler == "grid":
        for p in config.space:
            require(
                p.is_choice or p.step is not None or p.is_int,
                f"space.{p.key}",
                "a continuous range",
                "choices or a range with a step: a grid must be finite",
            )
    else:
        require(
            config.n_trials is not None or config.timeout is not None,
            "n_trials",
            None,
            f"a number of trials or a timeout: a {config.sampler} search has no end of its own",
        )


def parse_param(key: str, spec) -> Param:
    where = f"space.{key}"
    require(isinstance(key, str) and "." in key, "space", key, "dotted config keys such as model.init_args.lr")
    if isinstance(spec, dict) and "choices" in spec:
        require(set(spec) == {"choices"}, where, spec, "{choices: [...]} with nothing else")
        spec = spec["choices"]
    if isinstance(spec, list):
        require(len(spec) > 0, where, spec, "a non-empty list of choices")
        return Param(key, choices=tuple(_frozen(v) for v in spec))
    require(isinstance(spec, dict), where, spec, "a list of choices or a range {low, high, log, step}")
    for name in spec:
        if name not in RANGE_KEYS:
            raise UserError(f"{where}: unknown range key {name!r}; allowed: {', '.join(sorted(RANGE_KEYS))}")
    low, high = spec.get("low"), spec.get("high")
    require(_is_number(low) and _is_number(high), where, spec, "low and high numbers")
    if low >= high:
        raise UserError(f"{where}: low {low} >= high {high}; a range needs low < high")
    log, step, kind = spec.get("log", False), spec.get("step"), spec.get("type")
    require(kind in (None, "int", "float"), f"{where}.type", kind, "int or float")
    is_int = kind == "int" or (kind is None and _is_int(low) and _is_int(high) and (step is None or _is_int(step)))
    require(isinstance(log, bool), f"{where}.log", log, "true or false")
    if log and low <= 0:
        raise UserError(f"{where}: low {low} on a log scale; a log-scale range needs low > 0")
    require(step is None or (_is_number(step) and step > 0), f"{where}.step", step, "a number > 0")
    require(not (log and step is not None), where, "log with step", "either log or step, not both")
    if is_int:
        require(_is_int(low) and _is_int(high), where, spec, "integer low and high for an int range")
        return Param(key, low=int(low), high=int(high), log=log, step=int(step) if step else None, is_int=True)
    return Param(key, low=float(low), high=float(high), log=log, step=float(step) if step else None)


def _frozen(value):
    """Choices are kept hashable (lists become tuples); decode() turns them back."""
    return tuple(_frozen(v) for v in value) if isinstance(value, list) else value


def plain(value):
    """A choice as the config holds it (tuples back to lists)."""
    return [plain(v) for v in value] if isinstance(value, tuple) else value


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
