"""Lost work retried: a study killed mid-way continues, a failed grid point is trained again, a trial whose
worker died before claiming it is failed and enqueued again. Real Optuna studies over real fits (the seed
data, a few epochs)."""

import signal

import optuna
import pytest

from tests.helpers import exit_code, run_cli
from tests.tuning.helpers import SMALL, forked_tune, kill_mid_study, load_study, tune_config


@pytest.mark.slow
def test_a_study_killed_mid_way_continues_where_it_was():
    lrs = [0.1, 0.05, 0.02]  # one done, one killed while it trains, the rest not started
    path = tune_config(  # one fit per trial (population 1): tests/tuning/test_population.py kills a population
        "killed", {"model.init_args.lr": lrs}, sampler="grid", population=1
    )
    process = forked_tune("-c", path)

    def one_done_one_training(trials):  # the command itself (it runs its trials), once one is done, one training
        states = [t.state.name for t in trials]
        training = [t for t in trials if t.state.name == "RUNNING" and "run_dir" in t.user_attrs]
        return process.pid if states.count("COMPLETE") >= 1 and training else None

    kill_mid_study(process, "killed", one_done_one_training)
    assert exit_code(process) == -signal.SIGKILL
    before = {t.number: t for t in load_study("killed").trials}
    done_before = {n: t.value for n, t in before.items() if t.state.name == "COMPLETE"}
    killed = [n for n, t in before.items() if t.state.name == "RUNNING"]
    assert len(killed) == 1

    assert run_cli("tune", "-c", path) == 0
    after = {t.number: t for t in load_study("killed").trials}
    for number, value in done_before.items():  # kept, not re-run
        assert after[number].state.name == "COMPLETE" and after[number].value == value
    assert after[killed[0]].state.name == "FAIL"
    retry = [t for t in after.values() if t.user_attrs.get("retry_of") == killed[0]]
    assert len(retry) == 1 and retry[0].state.name == "COMPLETE"
    assert retry[0].params == before[killed[0]].params
    complete = [t.params["model.init_args.lr"] for t in after.values() if t.state.name == "COMPLETE"]
    assert sorted(complete) == sorted(lrs)  # every grid point once, the killed one included


@pytest.mark.slow
def test_a_failed_grid_point_is_retried_by_the_next_run():
    """A point whose trial failed (a crash, a full disk) is not done: the next run trains it."""
    from trainlab.tuning.checks import check_search
    from trainlab.tuning.config import load_tune_config
    from trainlab.tuning.storage import open_storage
    from trainlab.tuning.study import prepare_study

    overrides = {**SMALL, "trainer.max_epochs": 2}
    path = tune_config("retry", {"model.init_args.lr": [0.1, 0.01]}, sampler="grid", overrides=overrides)
    config = load_tune_config(path)
    study = prepare_study(check_search(config), open_storage(config))  # the grid, enqueued
    crashed = study.ask()  # a worker takes a point and crashes on it
    study.tell(crashed, state=optuna.trial.TrialState.FAIL)
    assert run_cli("tune", "-c", path) == 0
    states = sorted((t.user_attrs["grid_point"], t.state.name) for t in load_study("retry").trials)
    point = crashed.user_attrs["grid_point"]
    assert states == sorted([(point, "FAIL"), (point, "COMPLETE"), (1 - point, "COMPLETE")])


def test_a_trial_whose_worker_died_before_claiming_it_is_failed_and_its_grid_point_enqueued_again():
    """A worker killed between Optuna's ask and trainlab's claim leaves a running trial that names no worker:
    once it is older than any claim takes it is failed and its values enqueued again; a claimed trial of a
    living process is left alone."""
    from trainlab.tuning.recovery import claim, retry_dead_trials

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for index, lr in enumerate((0.1, 0.01)):
        study.enqueue_trial({"model.init_args.lr": lr}, user_attrs={"grid_point": index})
    orphan, claimed = study.ask(), study.ask()
    claim(claimed)  # this process: alive
    assert retry_dead_trials(study) == []  # just asked: its worker may be claiming it at this moment
    assert retry_dead_trials(study, unclaimed_after=0) == [orphan.number]
    states = {t.number: t.state.name for t in study.trials}
    assert states[orphan.number] == "FAIL" and states[claimed.number] == "RUNNING"
    (again,) = [t for t in study.trials if t.state.name == "WAITING"]
    assert again.user_attrs == {"grid_point": 0, "retry_of": orphan.number}
    assert again.system_attrs["fixed_params"] == {"model.init_args.lr": 0.1}
