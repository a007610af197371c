"""What a trial is, and the worker that runs trials until the study has enough: a trial runs as `trainlab fit`
does, one fit (or one per fold with cv); trials that train together as populations are tuning/population.py's.

A trial is the base fit config with overrides: the tune config's fixed ones, run.monitor set to the tuned
metric (so the best checkpoint, early stopping and the objective agree), and the trial's values. It runs in
this Python process (or in a long-lived worker process), never in a new one: imports alone cost seconds.
Its run directory is <study>/trials/trial_NNNN, so TensorBoard's HParams view compares the trials.
"""

import time
from pathlib import Path

from lightning.pytorch.callbacks import Callback

from trainlab.errors import TrainingFailed, UserError
from trainlab.run import QUIET as RUN_QUIET
from trainlab.tuning.config import TuneConfig
from trainlab.tuning.recovery import claim, retry_dead_trials
from trainlab.tuning.storage import open_storage
from trainlab.tuning.study import Search, fit_overrides, open_study, trial_dir

# Trials are quiet (the study has its own report), and they do not test: the choice must not see the test
# split (a tune config's overrides may ask for it).
QUIET = {**RUN_QUIET, "run.test_after_fit": False}


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
