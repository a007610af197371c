"""The study: what a search is (Search, a trial's overrides and run directory) and its Optuna study, created
or resumed: the sampler, the pruner, the grid enqueued once, a different search under the same name refused.
The workers and their trials are tuning/objective.py's; retrying lost work is tuning/recovery.py's.
"""

import os
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from trainlab.errors import UserError
from trainlab.tuning.config import TuneConfig
from trainlab.tuning.recovery import HOST, retry_dead_trials, retry_failed_grid_points


@dataclass
class Search:
    """What every worker needs to know (picklable: workers are separate processes)."""

    config: TuneConfig
    metric: str  # what trials are ranked on: a val/ metric (the held-out folds' with cv)
    direction: str  # minimize or maximize
    max_epochs: int
    task: str = "binary"
    deadline: float | None = None  # time.time() after which no trial starts
    packable: bool = False  # whether trials may train as populations (see tuning/population.py)
    # the name the trials' fits log `metric` under: itself, or test/... when cv trials have no validation
    # split inside their training folds (each fold's run then evaluates its held-out fold every epoch)
    monitor: str = ""

    def __post_init__(self):
        self.monitor = self.monitor or self.metric

    @property
    def fold_metric(self) -> str:
        """With cv: the key of `metric` on a fold's held-out part (the fold run's test split)."""
        return "test/" + self.metric.split("/", 1)[1]

    @property
    def populations(self) -> bool:
        """Whether trials train as populations (tuning/population.py) rather than one fit each."""
        return self.packable and self.config.population > 1

    @property
    def folds_as_steps(self) -> bool:
        """Whether a trial reports once per fold (cv, one fit per fold) rather than once per epoch."""
        return bool(self.config.cv) and not self.populations

    @property
    def target(self) -> int | None:
        """How many finished trials the study aims for."""
        if self.config.sampler == "grid":
            return min(self.config.n_trials or len(self.config.grid()), len(self.config.grid()))
        return self.config.n_trials


def fit_overrides(config: TuneConfig, metric: str, params: dict) -> dict:
    """The overrides that turn the base config into this trial's (and into best_config.yaml)."""
    return {"run.monitor": metric, "run.mode": config.mode, **config.overrides, **params}


def trial_dir(config: TuneConfig, number: int) -> Path:
    return config.study_dir / "trials" / f"trial_{number:04d}"


def open_study(search: Search, storage, worker: int = 0, create: bool = False):
    """The study, loaded (created when missing). With create=True: (study, whether this call created it);
    among several processes starting at once exactly one creates it (the storage refuses a second)."""
    import optuna

    config = search.config
    settings = {
        "study_name": config.name,
        "storage": storage,
        "direction": search.direction,
        "pruner": make_pruner(config, search.folds_as_steps, search.max_epochs),
    }
    if not create:
        study, created = optuna.create_study(**settings, load_if_exists=True), None
    else:
        try:
            study, created = optuna.create_study(**settings), True
        except optuna.exceptions.DuplicatedStudyError:
            study, created = optuna.create_study(**settings, load_if_exists=True), False
    study.sampler = make_sampler(config, worker, len(study.trials))
    return study if created is None else (study, created)


def make_sampler(config: TuneConfig, worker: int, trials_so_far: int):
    """A seeded sampler whose seed differs per worker, per resume and (on a shared storage) per machine, so
    that workers and re-runs never draw the same points again; a fresh one-worker study is reproducible."""
    import optuna

    seed = config.seed + 1000 * worker + trials_so_far
    if config.storage is not None:
        seed += zlib.crc32(f"{HOST}:{os.getpid()}".encode())
    seed %= 2**32
    if config.sampler == "tpe":
        # Trials running elsewhere (other workers, other machines, the rest of a population) count as lies.
        liar = config.workers > 1 or config.storage is not None or config.population > 1
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=liar)
    return optuna.samplers.RandomSampler(seed=seed)  # for a grid, unused: its points are enqueued


def make_pruner(config: TuneConfig, per_fold: bool, max_epochs: int):
    """The pruner. A trial reports once per epoch (up to `max_epochs`), or once per fold (`per_fold`: cv with
    one fit per fold)."""
    import optuna

    resource = config.cv["folds"] if per_fold else max_epochs
    defaults = {
        "none": (optuna.pruners.NopPruner, {}),
        "median": (optuna.pruners.MedianPruner, {"n_startup_trials": 3, "n_warmup_steps": 0 if per_fold else 5}),
        "hyperband": (
            optuna.pruners.HyperbandPruner,
            {"min_resource": 1, "max_resource": resource if resource > 0 else "auto"},
        ),
    }
    kind, options = defaults[config.pruner]
    try:
        return kind(**{**options, **config.pruner_options})
    except (TypeError, ValueError) as error:
        raise UserError(
            f"pruner_options={config.pruner_options!r} is not allowed for {config.pruner}: {error}"
        ) from None


def prepare_study(search: Search, storage):
    """Create the study (or find it, to resume), refuse a different search under its name, enqueue a grid,
    and fail and retry the trials whose worker died. Workers starting together (one command on each of
    several machines) agree: the one that creates the study enqueues the grid, the others wait for it."""
    import optuna

    config = search.config
    stale = trial_dir(config, 0).parent
    if config.name not in optuna.study.get_all_study_names(storage) and stale.is_dir() and any(stale.iterdir()):
        raise UserError(
            f"{stale} holds trials of an earlier study named {config.name!r} whose storage is gone; "
            "delete that directory or choose another name"
        )
    study, created = open_study(search, storage, create=True)
    signature = config.space_signature() + f" {search.metric} {search.direction}"
    if created:
        study.set_user_attr("search", signature)
    else:
        saved = _wait_for(lambda: study.user_attrs.get("search"))
        if saved is None:  # its creator stopped before saying: adopt it
            study.set_user_attr("search", signature)
        elif saved != signature:
            raise UserError(
                f"study {config.name!r} exists with a different search (base, overrides, space, sampler or metric); "
                f"choose another name, or delete {config.study_dir} to start over"
            )
    if config.sampler == "grid" and (created or _wait_for(lambda: study.user_attrs.get("grid_enqueued")) is None):
        # Enqueued points are popped by one worker each: parallel workers never repeat a point. A creator
        # that died while enqueuing left some out: they are added now.
        present = {t.user_attrs.get("grid_point") for t in study.trials}
        grid = config.grid()
        for index in grid_order(config):
            if index not in present:
                study.enqueue_trial(grid[index], user_attrs={"grid_point": index})
        study.set_user_attr("grid_enqueued", True)
    retry_dead_trials(study)
    if config.sampler == "grid":
        retry_failed_grid_points(study, config.grid())
    return study


def grid_order(config: TuneConfig) -> list[int]:
    """The order a grid's points are enqueued in: the grid's own, or for populations with the keys that
    change shapes varying slowest, so that the trials asked together mostly share a shape (and a pack)."""
    indices = list(range(len(config.grid())))
    if config.population == 1:
        return indices
    from trainlab.tuning.population import shape_of

    return sorted(indices, key=lambda index: shape_of(config, index))


def _wait_for(read, seconds: float = 30.0):
    """`read()` once it is not None: what the study's creator is writing right now (None after `seconds`)."""
    deadline = time.monotonic() + seconds
    while (value := read()) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    return value
