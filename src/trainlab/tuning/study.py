"""The study: its storage, its workers, and the objective that runs a trial as `trainlab fit` does.

A trial is the base fit config with overrides: the tune config's fixed ones, run.monitor set to the tuned
metric (so the best checkpoint, early stopping and the objective agree), and the trial's values. It runs in
this Python process (or in a long-lived worker process), never in a new one: imports alone cost seconds.
Its run directory is <study>/trials/trial_NNNN, so TensorBoard's HParams view compares the trials.
"""

import os
import socket
import time
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from lightning.pytorch.callbacks import Callback

from trainlab.errors import TrainingFailed, UserError
from trainlab.run import QUIET as RUN_QUIET
from trainlab.tuning.config import TuneConfig
from trainlab.tuning.storage import open_storage

# Trials are quiet (the study has its own report), and they do not test: the choice must not see the test
# split (a tune config's overrides may ask for it).
QUIET = {**RUN_QUIET, "run.test_after_fit": False}
HOST = socket.gethostname()


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


def retry_failed_grid_points(study, grid: list[dict]) -> list[int]:
    """Grid points whose every trial failed (a full disk, a crash) are enqueued again: a point counts as
    done only when one of its trials completed or was pruned."""
    from optuna.trial import TrialState

    taken = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
    points = {}
    for trial in study.get_trials(deepcopy=False):
        index = trial.user_attrs.get("grid_point")
        if index is not None:
            points.setdefault(index, set()).add(trial.state)
    failed = sorted(i for i, states in points.items() if not states & set(taken))
    for index in failed:
        study.enqueue_trial(grid[index], user_attrs={"grid_point": index})
    return failed


def _wait_for(read, seconds: float = 30.0):
    """`read()` once it is not None: what the study's creator is writing right now (None after `seconds`)."""
    deadline = time.monotonic() + seconds
    while (value := read()) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    return value


def retry_dead_trials(study, unclaimed_after: float = 120.0) -> list[int]:
    """Trials left running by a worker that no longer lives: fail them, enqueue their values. That is a trial
    claimed by a process of this machine that has ended, or one that no worker claimed `unclaimed_after`
    seconds after it was asked for (a worker claims its trial at once: this one's was killed in between)."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    retried = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = trial.user_attrs
        if "host" not in attrs:
            asked = trial.datetime_start
            if asked is None or (datetime.now() - asked).total_seconds() < unclaimed_after:
                continue
        elif attrs["host"] != HOST or _alive(attrs.get("pid"), attrs.get("process_start")):
            continue
        try:
            study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:
            continue  # another worker (or the storage's heartbeat) failed it first, and retries it
        kept = {k: v for k, v in attrs.items() if k == "grid_point"}
        values = trial.params or trial.system_attrs.get("fixed_params", {})  # (unclaimed: not suggested yet)
        study.enqueue_trial(values, user_attrs={**kept, "retry_of": trial.number})
        retried.append(trial.number)
    return retried


def process_start(pid: int) -> str | None:
    """When a process started (Linux: /proc/<pid>/stat), so that a reused process id is not mistaken for it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid, started=None) -> bool:
    if not isinstance(pid, int):
        return True  # not ours to judge
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return started is None or process_start(pid) in (None, started)


def finished(study, search: Search) -> bool:
    from optuna.trial import TrialState

    states = [t.state for t in study.get_trials(deepcopy=False)]
    if search.config.sampler == "grid" and TrialState.WAITING not in states:
        return True  # every grid point has been taken
    if search.target is not None:
        done = sum(s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING) for s in states)
        if done >= search.target:
            return True
    return search.deadline is not None and time.time() >= search.deadline


def work(search: Search, worker: int = 0, on_trial=None) -> None:
    """One worker: run trials until the study has enough, the grid is done or the time is up."""
    if search.populations:
        from trainlab.tuning.population import work_populations

        work_populations(search, worker, on_trial)
        return
    study = open_study(search, open_storage(search.config), worker)
    while not finished(study, search):
        retry_dead_trials(study)
        callbacks = [on_trial] if on_trial else []
        try:
            study.optimize(lambda t: objective(t, search), n_trials=1, gc_after_trial=False, callbacks=callbacks)
        except GridTaken:
            return  # another worker took the last grid point between our look and our take


def claim(trial) -> None:
    """Record who runs the trial (host, process and its start), so that a dead worker's trial is retried."""
    import torch

    trial.set_user_attr("host", HOST)
    trial.set_user_attr("pid", os.getpid())
    trial.set_user_attr("process_start", process_start(os.getpid()))
    trial.set_user_attr("threads", torch.get_num_threads())


def suggest(trial, config: TuneConfig) -> dict:
    """The trial's values, drawn by the sampler (or enqueued): dotted config key -> config value."""
    params = {}
    for p in config.space:
        if p.is_choice:
            held = trial.suggest_categorical(p.key, p.encoded_choices())
        elif p.is_int:
            held = trial.suggest_int(p.key, p.low, p.high, step=p.step or 1, log=p.log)
        else:
            held = trial.suggest_float(p.key, p.low, p.high, step=p.step, log=p.log)
        params[p.key] = p.decode(held)
    return params


class GridTaken(Exception):
    """A grid worker's new trial found no waiting point: it is marked a spare (failed) and the worker ends."""


def objective(trial, search: Search) -> float:
    import optuna

    config = search.config
    if config.sampler == "grid" and "grid_point" not in trial.user_attrs:
        trial.set_user_attr("spare", True)
        raise GridTaken()
    claim(trial)
    params = suggest(trial, config)
    run_dir = trial_dir(config, trial.number)
    trial.set_user_attr("run_dir", str(run_dir))
    from trainlab.workers import device_overrides

    overrides = {**QUIET, **fit_overrides(config, search.monitor, params), **device_overrides()}
    started = time.perf_counter()
    try:
        if config.cv:
            return _cross_validated(trial, search, overrides, run_dir)
        return _fitted(trial, search, overrides, run_dir)
    except TrainingFailed as failure:  # a diverged trial is a bad setting, not a broken study
        trial.set_user_attr("stopped", f"diverged: {failure}")
        raise optuna.TrialPruned(str(failure)) from None
    finally:
        trial.set_user_attr("seconds", round(time.perf_counter() - started, 3))


def _logger_keys(save_dir: Path, name: str, version: str) -> dict:
    return {
        "trainer.logger.init_args.save_dir": str(save_dir),
        "trainer.logger.init_args.name": name,
        "trainer.logger.init_args.version": version,
    }


def _fitted(trial, search: Search, overrides: dict, run_dir: Path) -> float:
    """One fit; its value is the best `metric` over its epochs; pruning looks at every epoch."""
    from trainlab.run import run

    recorder = TrialRecorder(search.metric, search.direction, trial.params)
    callbacks = [recorder]
    if search.config.pruner != "none":
        from optuna_integration import PyTorchLightningPruningCallback

        callbacks.append(PyTorchLightningPruningCallback(trial, search.metric))
    try:
        result = run(
            "fit", search.config.base, overrides={**overrides, **_logger_keys(*_parts(run_dir))}, callbacks=callbacks
        )
    finally:
        trial.set_user_attr("epochs", recorder.epochs)
    if recorder.best is None:
        raise UserError(f"metric {search.metric!r} was never logged in trial {trial.number}; is it validated?")
    trial.set_user_attr("test_metrics", {k: v for k, v in result.metrics.items() if k.startswith("test/")})
    return recorder.best


def _cross_validated(trial, search: Search, overrides: dict, run_dir: Path) -> float:
    """One fit per fold; each fold's value is `metric` measured on its held-out fold (the fold run's test
    split), the trial's value their mean; pruning looks after every fold. The config's test split is set
    aside first and never seen (in nested CV, the outer folds do that instead)."""
    import optuna

    from trainlab.run import run

    folds, seed = search.config.cv["folds"], search.config.cv["seed"]
    outer = list(overrides.get("data.init_args.folds") or [])
    values, epochs = [], 0
    for index in range(folds):
        fold = {"k": folds, "index": index, "seed": seed, "stratify": search.task != "regression"}
        fold_keys = {
            "data.init_args.folds": [*outer, fold],
            "data.init_args.folds_exclude_test": not outer,
            "run.test_after_fit": True,
        }
        recorder = TrialRecorder(search.monitor, search.direction, trial.params, log=False)
        logger_keys = _logger_keys(run_dir.parent, run_dir.name, f"fold_{index}")
        try:
            result = run(
                "fit", search.config.base, overrides={**overrides, **fold_keys, **logger_keys}, callbacks=[recorder]
            )
        finally:
            epochs += recorder.epochs
            trial.set_user_attr("epochs", epochs)
        values.append(result.metrics[search.fold_metric])
        trial.set_user_attr("fold_values", values)
        trial.report(sum(values) / len(values), step=index)
        if index < folds - 1 and trial.should_prune():
            raise optuna.TrialPruned(f"pruned after fold {index}")
    return sum(values) / len(values)


def _parts(run_dir: Path) -> tuple[Path, str, str]:
    """(save_dir, name, version) of a trial's run directory <study>/trials/trial_NNNN."""
    return run_dir.parent.parent, run_dir.parent.name, run_dir.name


class TrialRecorder(Callback):
    """Follows the tuned metric epoch by epoch (its best is the trial's value) and logs the trial's values
    with it as TensorBoard hyperparameters, so the HParams view compares trials."""

    def __init__(self, metric: str, direction: str, params: dict, log: bool = True):
        self.metric, self.direction, self.params, self.log = metric, direction, params, log
        self.best: float | None = None
        self.epochs = 0

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or self.metric not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.metric])
        self.epochs = trainer.current_epoch + 1
        better = self.best is None or (value < self.best if self.direction == "minimize" else value > self.best)
        if better and value == value:  # NaN is never best
            self.best = value

    def on_fit_end(self, trainer, pl_module) -> None:
        self._log_hparams(trainer)

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._log_hparams(trainer)  # pruned trials take their place in the HParams view too

    def _log_hparams(self, trainer) -> None:
        if self.log and trainer.is_global_zero and trainer.logger is not None and self.best is not None:
            trainer.logger.log_hyperparams(self.params, {f"hparams/{self.metric}": self.best})
