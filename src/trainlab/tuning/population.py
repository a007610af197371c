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
from trainlab.tuning.objective import QUIET, finished, objective, suggest
from trainlab.tuning.recovery import claim, retry_dead_trials
from trainlab.tuning.study import Search, fit_overrides, open_study, trial_dir

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
                if len(group) == 1 and not search.config.cv:  # with cv, a lone trial's folds still pack
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
            trial.set_user_attr("spare", True)  # another worker took the last point (see objective.GridTaken)
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
    """One packed fit of a group of same-shape trials; as a callback, it reports, prunes and tells.

    With cv in the tune config every trial trains on every fold: the pack's units are (trial, fold), unit =
    trial * folds + fold (MLPModule's population x slots), each fold a slot holding exactly the data of that
    fold's own run in the per-trial path. A trial reports the mean over its folds of the per-epoch metric, is
    pruned as a whole, and its value is the mean over its folds of the metric on their held-out folds."""

    def __init__(self, study, search: Search, group: list[tuple], on_trial=None):
        self.study, self.search, self.on_trial = study, search, on_trial
        self.trials = [trial for trial, _ in group]
        self.params = [params for _, params in group]
        self.folds = search.config.cv["folds"] if search.config.cv else 1  # units (slots) per trial
        self.told: set[int] = set()  # trials finished in the study
        self.stopping: dict[int, tuple] = {}  # trials stopped this epoch, to tell once their curves are logged
        self._beat = -math.inf  # when the running trials last recorded a heartbeat

    def units_of(self, index: int) -> range:
        """The pack's units that train trial `index` (one per fold)."""
        return range(index * self.folds, (index + 1) * self.folds)

    def overrides(self) -> dict:
        from trainlab.workers import device_overrides

        config = self.search.config
        shared = {k: v for k, v in self.params[0].items() if k not in PACKABLE}
        population = [{PACKABLE[k]: v for k, v in params.items() if k in PACKABLE} for params in self.params]
        overrides = {
            **QUIET,
            **fit_overrides(config, self.search.monitor, shared),
            **device_overrides(),
            "model.init_args.population": population,
            "trainer.logger.init_args.save_dir": str(config.study_dir),
            "trainer.logger.init_args.name": "packs",
            "trainer.logger.init_args.version": f"pack_{self.trials[0].number:04d}",
        }
        if config.cv:  # the folds of objective._cross_validated as slots; nested CV's outer fold stays outside them
            outer = list(overrides.get("data.init_args.folds") or [])
            stratify = self.search.task != "regression"
            folds = [
                {"k": self.folds, "index": index, "seed": config.cv["seed"], "stratify": stratify}
                for index in range(self.folds)
            ]
            overrides.update(
                {
                    "data.init_args.folds": outer,
                    "data.init_args.member_folds": folds,
                    "data.init_args.folds_exclude_test": not outer,
                    "run.test_after_fit": True,  # a fold's value is its held-out fold's (its test split)
                }
            )
        return overrides

    def run(self) -> None:
        from optuna.trial import TrialState

        from trainlab.callbacks.slots import SlotRuns
        from trainlab.lightning_cli import override_args, run_lightning_cli

        config = self.search.config
        folders = [trial_dir(config, trial.number) for trial in self.trials]
        for trial, folder in zip(self.trials, folders, strict=True):
            trial.set_user_attr("run_dir", str(folder))
            trial.set_user_attr("population", [t.number for t in self.trials])
        # a unit's run directory: the trial's own, or (with cv) its fold's inside it, as the per-trial path's
        versions = [
            folder.name if not config.cv else f"{folder.name}/fold_{fold}"
            for folder in folders
            for fold in range(self.folds)
        ]
        self.runs = SlotRuns(config.study_dir, "trials", versions)
        overrides = self.overrides()
        self.testing = bool(overrides.get("run.test_after_fit"))
        self.started = time.perf_counter()
        try:
            cli = run_lightning_cli(["fit", "-c", str(config.base), *override_args(overrides)], [self.runs, self])
        except BaseException:
            for index in range(len(self.trials)):
                if index not in self.told:
                    self.study.tell(self.trials[index], state=TrialState.FAIL)
            raise
        module = cli.model
        for index in range(len(self.trials)):
            if index not in self.told:
                self._tell(index, module, cli.trainer.current_epoch)

    # --- during the fit -------------------------------------------------------------------------------
    def on_validation_end(self, trainer, pl_module) -> None:
        """Every running trial reports this epoch's value (its folds' mean); then the pruner judges each."""
        if trainer.sanity_checking:
            return
        self._heartbeat()
        slots, epoch, monitor = pl_module.slot_evaluation, trainer.current_epoch, self.search.monitor
        reported = []
        for index, trial in enumerate(self.trials):
            if index in self.told or index in self.stopping:
                continue
            units = self.units_of(index)
            if any(unit in pl_module.diverged for unit in units):
                slots.stop(pl_module, list(units), epoch)  # a diverged fold ends its trial
                self.stopping[index] = ("diverged",)
                continue
            stopped = [slots.stopped_epoch[unit] for unit in units]
            if all(s is not None and s < epoch for s in stopped):
                continue  # stopped early before: told at the end
            values = [slots.values["val"][unit][monitor] for unit in units]
            trial.report(sum(values) / len(values), step=epoch)
            if any(s is None for s in stopped):
                reported.append(index)
        if self.search.config.pruner == "none":
            return
        pruned = [index for index in reported if self.trials[index].should_prune()]
        slots.stop(pl_module, [unit for index in pruned for unit in self.units_of(index)], epoch)
        self.stopping.update({index: ("pruned",) for index in pruned})

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        """Trials stopped this epoch are told now: their run directories hold this epoch's curves already."""
        for index in sorted(self.stopping):
            self._tell(index, pl_module, trainer.current_epoch + 1)
        self.stopping.clear()

    def on_fit_end(self, trainer, pl_module) -> None:
        """The trials still open log their hyperparameters; untested, they are written with their best weights."""
        for index in sorted(self.stopping):
            self._tell(index, pl_module, trainer.current_epoch)
        self.stopping.clear()
        open_trials = [index for index in range(len(self.trials)) if index not in self.told]
        for index in open_trials:
            self._log_hparams(index, pl_module)
        if not self.testing:
            pl_module.slot_evaluation.restore_best(pl_module)
            for index in open_trials:
                self._write(index, trainer, pl_module)

    def _heartbeat(self) -> None:
        """On a storage with heartbeats (PostgreSQL), the running trials say they live (Study.optimize's thread
        does this for one trial), so another machine fails and retries them only once this process is gone."""
        from optuna.storages._heartbeat import is_heartbeat_enabled

        storage = self.study._storage
        if not is_heartbeat_enabled(storage) or time.monotonic() - self._beat < storage.get_heartbeat_interval() / 2:
            return
        self._beat = time.monotonic()
        for index, trial in enumerate(self.trials):
            if index not in self.told:
                storage.record_heartbeat(trial._trial_id)

    # --- a trial's end --------------------------------------------------------------------------------
    def _value(self, index: int, pl_module) -> tuple[float, list[float]]:
        """Trial `index`'s value: its unit's best monitored value; with cv, the mean over its folds of the
        metric on their held-out folds (and those values)."""
        slots = pl_module.slot_evaluation
        if not self.search.config.cv:
            return slots.best[index], []
        tested = slots.values.get("test")
        folds = [tested[unit].get(self.search.fold_metric) if tested else None for unit in self.units_of(index)]
        if any(v is None for v in folds):
            return math.nan, []
        return sum(folds) / len(folds), folds

    def _tell(self, index: int, pl_module, epochs: int) -> None:
        """Finish trial `index`: PRUNED (pruned or diverged), COMPLETE with its value, or FAIL."""
        from optuna.trial import TrialState

        trial, slots = self.trials[index], pl_module.slot_evaluation
        units = self.units_of(index)
        trial.set_user_attr("epochs", sum(slots.trained_epochs(unit, epochs) for unit in units))
        trial.set_user_attr("seconds", round(time.perf_counter() - self.started, 3))
        diverged = [pl_module.diverged[unit] for unit in units if unit in pl_module.diverged]
        value, fold_values = (math.nan, []) if index in self.stopping else self._value(index, pl_module)
        if diverged:
            trial.set_user_attr("stopped", f"diverged: {diverged[0]}")
            state = TrialState.PRUNED
        elif index in self.stopping:
            state = TrialState.PRUNED
        else:
            state = TrialState.COMPLETE if math.isfinite(value) else TrialState.FAIL
        if state == TrialState.PRUNED:  # as a pruned fit's run directory: its curve, values and weights so far
            self._log_hparams(index, pl_module)
            self._write(index, pl_module.trainer, pl_module)
        elif self.testing and "test" in slots.values and not self.search.config.cv:
            test = {k: v for k, v in slots.values["test"][index].items() if k.startswith("test/")}
            trial.set_user_attr("test_metrics", test)
        if fold_values:
            trial.set_user_attr("fold_values", fold_values)
        self.told.add(index)
        if state == TrialState.COMPLETE:
            frozen = self.study.tell(trial, value)
        else:
            frozen = self.study.tell(trial, state=state)
        if self.on_trial is not None:
            self.on_trial(self.study, frozen)

    def _log_hparams(self, index: int, pl_module) -> None:
        best = pl_module.slot_evaluation.best[index]
        if not self.search.config.cv and math.isfinite(best):  # as TrialRecorder (fold runs log none)
            self.runs.loggers[index].log_hyperparams(self.trials[index].params, {f"hparams/{self.search.metric}": best})

    def _write(self, index: int, trainer, pl_module) -> None:
        for unit in self.units_of(index):
            self.runs.write_unit(trainer, pl_module, unit)
            self.runs.loggers[unit].finalize("success")
            self.runs.done.add(unit)
