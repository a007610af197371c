"""Tuning by populations: the trials asked together that share a shape train as one packed fit.

A worker asks Optuna for up to `population` trials at once (ask-and-tell) and groups them by the values of
the keys that change a shape or the data (hidden_dims, optimizer, batch_size, max_epochs, ...). The trials
of a group differ only in member settings (lr, weight_decay, momentum, dropout, l1_penalty,
gradient_clip_val): they train as one fit of the base config whose model holds one unit per trial
(model.init_args.population), each with its own settings, evaluation, early stopping and best weights
(models/slots.py) and its own run directory trials/trial_NNNN (callbacks/slots.py). After every epoch each
running unit reports its value to its trial; a unit the pruner prunes is frozen and its trial told PRUNED
with the epochs it ran; the fit ends when every unit has stopped. A trial alone in its group runs as with
`population: 1` (one fit). The pack's own run (config.yaml, last.ckpt) is packs/pack_NNNN.
"""

import json
import math
import time

from lightning.pytorch.callbacks import Callback

from trainlab.models.module import MEMBER_SETTINGS
from trainlab.tuning.config import TuneConfig
from trainlab.tuning.study import (
    QUIET,
    Search,
    claim,
    finished,
    fit_overrides,
    objective,
    open_study,
    retry_dead_trials,
    suggest,
    trial_dir,
)

PACKABLE = {f"model.init_args.{name}": name for name in MEMBER_SETTINGS}  # config key -> population key


def shape_of(config: TuneConfig, index: int) -> tuple:
    """Grid point `index`'s position among the choices of the keys a pack cannot vary (its shape)."""
    point = config.grid()[index]
    return tuple(p.encoded_choices().index(point[p.key]) for p in config.space if p.key not in PACKABLE)


def shape_key(params: dict) -> str:
    return json.dumps({k: v for k, v in params.items() if k not in PACKABLE}, sort_keys=True)


def work_populations(search: Search, worker: int = 0, on_trial=None) -> None:
    """One worker: populations until the study has enough, the grid is done or the time is up."""
    from trainlab.tuning.storage import open_storage

    study = open_study(search, open_storage(search.config), worker)
    while not finished(study, search):
        retry_dead_trials(study)
        asked = ask_population(study, search)
        if not asked:
            return
        groups: dict[str, list] = {}
        for trial, params in asked:
            groups.setdefault(shape_key(params), []).append((trial, params))
        pending = list(groups.values())
        while pending:
            group = pending.pop(0)
            try:
                if len(group) == 1:
                    run_alone(study, search, group[0][0], on_trial)
                else:
                    PopulationFit(study, search, group, on_trial).run()
            except BaseException:  # the groups not yet run are failed too, not left running
                from optuna.trial import TrialState

                for trial, _ in (pair for rest in pending for pair in rest):
                    study.tell(trial, state=TrialState.FAIL)
                raise


def ask_population(study, search: Search) -> list[tuple]:
    """Up to `population` new trials (trial, values), each claimed by this process."""
    from optuna.trial import TrialState

    asked = []
    grid = search.config.sampler == "grid"
    while len(asked) < search.config.population and not finished(study, search):
        if grid and not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            break  # every point is taken: asking now would only make a spare trial
        trial = study.ask()
        if grid and "grid_point" not in trial.user_attrs:
            trial.set_user_attr("spare", True)  # another worker took the last point (see study.GridTaken)
            study.tell(trial, state=TrialState.FAIL)
            break
        claim(trial)
        asked.append((trial, suggest(trial, search.config)))
    return asked


def run_alone(study, search: Search, trial, on_trial=None) -> None:
    """One trial as one fit (the per-trial path), told as Study.optimize would."""
    import optuna
    from optuna.trial import TrialState

    try:
        value = objective(trial, search)
    except optuna.TrialPruned:
        frozen = study.tell(trial, state=TrialState.PRUNED)
    except BaseException:
        study.tell(trial, state=TrialState.FAIL)
        raise
    else:
        frozen = study.tell(trial, value)
    if on_trial is not None:
        on_trial(study, frozen)


class PopulationFit(Callback):
    """One packed fit of a group of same-shape trials; as a callback, it reports, prunes and tells."""

    def __init__(self, study, search: Search, group: list[tuple], on_trial=None):
        self.study, self.search, self.on_trial = study, search, on_trial
        self.trials = [trial for trial, _ in group]
        self.params = [params for _, params in group]
        self.told: set[int] = set()  # units whose trial is finished in the study
        self.stopping: dict[int, tuple] = {}  # units stopped this epoch, to tell once their curve is logged
        self._beat = -math.inf  # when the running trials last recorded a heartbeat

    def overrides(self) -> dict:
        from trainlab.workers import device_overrides

        config = self.search.config
        shared = {k: v for k, v in self.params[0].items() if k not in PACKABLE}
        population = [{PACKABLE[k]: v for k, v in params.items() if k in PACKABLE} for params in self.params]
        return {
            **QUIET,
            **fit_overrides(config, self.search.monitor, shared),
            **device_overrides(),
            "model.init_args.population": population,
            "trainer.logger.init_args.save_dir": str(config.study_dir),
            "trainer.logger.init_args.name": "packs",
            "trainer.logger.init_args.version": f"pack_{self.trials[0].number:04d}",
        }

    def run(self) -> None:
        from optuna.trial import TrialState

        from trainlab.callbacks.slots import SlotRuns
        from trainlab.lightning_cli import override_args, run_lightning_cli

        config = self.search.config
        folders = [trial_dir(config, trial.number) for trial in self.trials]
        for trial, folder in zip(self.trials, folders, strict=True):
            trial.set_user_attr("run_dir", str(folder))
            trial.set_user_attr("population", [t.number for t in self.trials])
        self.runs = SlotRuns(config.study_dir, "trials", [folder.name for folder in folders])
        overrides = self.overrides()
        self.testing = bool(overrides.get("run.test_after_fit"))
        self.started = time.perf_counter()
        try:
            cli = run_lightning_cli(["fit", "-c", str(config.base), *override_args(overrides)], [self.runs, self])
        except BaseException:
            for unit in range(len(self.trials)):
                if unit not in self.told:
                    self.study.tell(self.trials[unit], state=TrialState.FAIL)
            raise
        module = cli.model
        for unit in range(len(self.trials)):
            if unit not in self.told:
                self._tell(unit, module, cli.trainer.current_epoch)

    # --- during the fit -------------------------------------------------------------------------------
    def on_validation_end(self, trainer, pl_module) -> None:
        """Every running unit reports this epoch's value; then the pruner judges each (all values in)."""
        if trainer.sanity_checking:
            return
        self._heartbeat()
        slots, epoch, metric = pl_module.slot_evaluation, trainer.current_epoch, self.search.metric
        reported = []
        for unit, trial in enumerate(self.trials):
            if unit in self.told or unit in self.stopping:
                continue
            if unit in pl_module.diverged:
                self.stopping[unit] = ("diverged",)
                continue
            stopped = slots.stopped_epoch[unit]
            if stopped is not None and stopped < epoch:
                continue  # stopped early before: told at the end
            trial.report(slots.values["val"][unit][metric], step=epoch)
            if stopped is None:
                reported.append(unit)
        if self.search.config.pruner == "none":
            return
        pruned = [unit for unit in reported if self.trials[unit].should_prune()]
        slots.stop(pl_module, pruned, epoch)
        self.stopping.update({unit: ("pruned",) for unit in pruned})

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        """Units stopped this epoch are told now: their run directory holds this epoch's curve already."""
        for unit in sorted(self.stopping):
            self._tell(unit, pl_module, trainer.current_epoch + 1)
        self.stopping.clear()

    def on_fit_end(self, trainer, pl_module) -> None:
        """The units still open log their hyperparameters; untested, they are written with their best weights."""
        for unit in sorted(self.stopping):
            self._tell(unit, pl_module, trainer.current_epoch)
        self.stopping.clear()
        open_units = [unit for unit in range(len(self.trials)) if unit not in self.told]
        for unit in open_units:
            self._log_hparams(unit, pl_module)
        if not self.testing:
            pl_module.slot_evaluation.restore_best(pl_module)
            for unit in open_units:
                self._write(unit, trainer, pl_module)

    def _heartbeat(self) -> None:
        """On a storage with heartbeats (PostgreSQL), the running trials say they live (Study.optimize's thread
        does this for one trial), so another machine fails and retries them only once this process is gone."""
        from optuna.storages._heartbeat import is_heartbeat_enabled

        storage = self.study._storage
        if not is_heartbeat_enabled(storage) or time.monotonic() - self._beat < storage.get_heartbeat_interval() / 2:
            return
        self._beat = time.monotonic()
        for unit, trial in enumerate(self.trials):
            if unit not in self.told:
                storage.record_heartbeat(trial._trial_id)

    # --- a unit's end ---------------------------------------------------------------------------------
    def _tell(self, unit: int, pl_module, epochs: int) -> None:
        """Finish `unit`'s trial: PRUNED (pruned or diverged), COMPLETE with its best value, or FAIL."""
        from optuna.trial import TrialState

        trial, slots = self.trials[unit], pl_module.slot_evaluation
        trial.set_user_attr("epochs", slots.trained_epochs(unit, epochs))
        trial.set_user_attr("seconds", round(time.perf_counter() - self.started, 3))
        best = slots.best[unit]
        if unit in pl_module.diverged:
            trial.set_user_attr("stopped", f"diverged: {pl_module.diverged[unit]}")
            state = TrialState.PRUNED
        elif unit in self.stopping:
            state = TrialState.PRUNED
        else:
            state = TrialState.COMPLETE if math.isfinite(best) else TrialState.FAIL
        if state == TrialState.PRUNED:  # as a pruned fit's run directory: its curve, values and weights so far
            self._log_hparams(unit, pl_module)
            self._write(unit, pl_module.trainer, pl_module)
        elif self.testing and "test" in slots.values:
            test = {k: v for k, v in slots.values["test"][unit].items() if k.startswith("test/")}
            trial.set_user_attr("test_metrics", test)
        self.told.add(unit)
        if state == TrialState.COMPLETE:
            frozen = self.study.tell(trial, best)
        else:
            frozen = self.study.tell(trial, state=state)
        if self.on_trial is not None:
            self.on_trial(self.study, frozen)

    def _log_hparams(self, unit: int, pl_module) -> None:
        best = pl_module.slot_evaluation.best[unit]
        if math.isfinite(best):  # as TrialRecorder: the HParams view compares the trials' values
            self.runs.loggers[unit].log_hyperparams(self.trials[unit].params, {f"hparams/{self.search.metric}": best})

    def _write(self, unit: int, trainer, pl_module) -> None:
        self.runs.write_unit(trainer, pl_module, unit)
        self.runs.loggers[unit].finalize("success")
        self.runs.done.add(unit)
