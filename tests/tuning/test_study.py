"""The study: samplers and pruners, workers sharing a grid, killed, failed and unclaimed trials retried, a
changed search refused, cv inside tuning. Real Optuna studies over real fits (the seed data, a few
epochs)."""

import json
import os
import signal
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml

from tests.helpers import exit_code, run_cli
from tests.tuning.helpers import (
    SMALL,
    STUDY,
    forked_tune,
    kill_mid_study,
    leaderboard,
    load_study,
    tune_config,
    tune_yaml,
)


@pytest.mark.slow
def test_random_search_with_ranges_and_list_choices():
    space = {
        "model.init_args.lr": {"low": 1e-3, "high": 0.1, "log": True},
        "model.init_args.hidden_dims": [[8], [16, 8]],
        "data.init_args.batch_size": {"low": 16, "high": 64, "step": 16},
    }
    path = tune_config("rand", space, sampler="random", n_trials=4, seed=3)
    assert run_cli("tune", "-c", path) == 0
    rows = leaderboard("rand")
    assert len(rows) == 4 and all(r["state"] == "COMPLETE" for r in rows)
    for row in rows:
        assert 1e-3 <= float(row["lr"]) <= 0.1
        assert int(row["batch_size"]) in (16, 32, 48, 64)
        saved = yaml.safe_load(
            (STUDY / "rand" / "trials" / f"trial_{int(row['trial']):04d}" / "config.yaml").read_text()
        )
        assert saved["model"]["init_args"]["hidden_dims"] in ([8], [16, 8])
        assert saved["data"]["init_args"]["batch_size"] == int(row["batch_size"])
    importances = yaml.safe_load((STUDY / "rand" / "importances.json").read_text())
    assert set(importances) == set(space) and sum(importances.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("population", [1, 2])
@pytest.mark.slow
def test_tpe_with_pruning_stops_hopeless_trials_early(population):
    # Plain SGD at lr 1e-5 barely moves in 8 epochs: hopeless next to lr 0.05. The median pruner judges
    # against completed trials only: in populations, from the second population on. Seed 0 draws 1e-5, 0.05,
    # then 1e-5 twice: two trials complete (one population of two), the next two are judged.
    space = {"model.init_args.lr": [0.05, 1e-5], "model.init_args.optimizer": ["sgd"]}
    settings = {"pruner": "median", "pruner_options": {"n_startup_trials": 2, "n_warmup_steps": 1}}
    path = tune_config("pruned", space, sampler="tpe", n_trials=4, seed=0, population=population, **settings)
    assert run_cli("tune", "-c", path) == 0
    rows = leaderboard("pruned")
    pruned = [r for r in rows if r["state"] == "PRUNED"]
    assert pruned, rows
    assert all(int(r["epochs"]) < SMALL["trainer.max_epochs"] for r in pruned)
    assert all(float(r["lr"]) == 1e-5 for r in pruned)
    assert rows[0]["state"] == "COMPLETE" and float(rows[0]["lr"]) == 0.05


@pytest.mark.slow
def test_two_workers_share_one_grid_without_losing_or_repeating_a_point():
    lrs = [0.2, 0.1, 0.05, 0.02, 0.01, 0.005]
    path = tune_config("pair", {"model.init_args.lr": lrs}, sampler="grid", workers=2, population=2)
    assert run_cli("tune", "-c", path) == 0
    study = load_study("pair")
    # a worker that asks just after the other took the last point gets a spare: failed, unlisted, no point
    spares = [t for t in study.trials if t.user_attrs.get("spare")]
    assert all(t.state.name == "FAIL" and not t.params for t in spares)
    trials = [t for t in study.trials if not t.user_attrs.get("spare")]
    assert sorted(t.params["model.init_args.lr"] for t in trials) == sorted(lrs)  # each point once
    assert all(t.state.name == "COMPLETE" for t in trials)
    assert len({t.user_attrs["pid"] for t in trials}) == 2  # both workers took trials
    assert {t.user_attrs["threads"] for t in trials} == {max(1, os.cpu_count() // 2)}  # the CPU shared
    assert sorted(int(row["trial"]) for row in leaderboard("pair")) == sorted(t.number for t in trials)  # no spares
    run_dirs = {Path(t.user_attrs["run_dir"]).name for t in trials}
    assert run_dirs == {p.name for p in (STUDY / "pair" / "trials").iterdir()}


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


def test_a_missing_tune_config_and_a_changed_search_are_refused(capsys):
    assert run_cli("tune", "-c", "nowhere.yaml") == 2
    assert "nowhere.yaml" in capsys.readouterr().err
    path = tune_config("same", {"model.init_args.lr": [0.1]}, sampler="grid")
    assert run_cli("tune", "-c", path) == 0
    tune_config("same", {"model.init_args.lr": [0.2]}, sampler="grid")
    assert run_cli("tune", "-c", path) == 2
    assert "different search" in capsys.readouterr().err
    assert len(load_study("same").trials) == 1


@pytest.mark.slow
def test_a_resumed_random_search_draws_new_points():
    space = {"model.init_args.lr": {"low": 1e-3, "high": 0.1, "log": True}}
    path = tune_config("more", space, sampler="random", n_trials=2, seed=4)
    assert run_cli("tune", "-c", path) == 0
    assert run_cli("tune", "-c", path, "--n_trials", "4") == 0
    lrs = [t.params["model.init_args.lr"] for t in load_study("more").trials]
    assert len(lrs) == 4 and len(set(lrs)) == 4  # the re-run did not draw the first run's points again


@pytest.mark.slow
def test_a_grid_worker_that_finds_no_point_left_takes_none():
    from trainlab.tuning.config import load_tune_config
    from trainlab.tuning.search import run_search
    from trainlab.tuning.study import GridTaken, objective

    path = tune_config("taken", {"model.init_args.lr": [0.05]}, sampler="grid")
    result = run_search(load_tune_config(path))
    study = load_study("taken")
    with pytest.raises(GridTaken):  # as if another worker had popped the last point a moment before
        study.optimize(lambda trial: objective(trial, result.search), n_trials=1)
    trials = load_study("taken").trials
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL"] and trials[1].user_attrs["spare"]
    assert [r["trial"] for r in run_search(load_tune_config(path)).leaderboard] == [0]  # spares are not listed


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
    from trainlab.tuning.study import claim, retry_dead_trials

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


@pytest.mark.slow
def test_cv_inside_tuning_scores_each_trial_by_its_mean_over_folds():
    import optuna

    body = {
        "sampler": "grid",  # lr 0.1 first, then the hopeless 1e-5: worse after its first fold than the first trial
        "population": 1,  # one fit per fold, reported fold by fold (tests/tuning/test_population.py packs them)
        "cv": {"folds": 2, "seed": 2},
        "pruner": "median",
        "pruner_options": {"n_startup_trials": 1},
        "overrides": {"trainer.max_epochs": 5, "model.init_args.optimizer": "sgd"},
        "space": {"model.init_args.lr": [0.1, 1.0e-5]},
    }
    assert run_cli("tune", "-c", tune_yaml("cvtune", body)) == 0
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend("lightning_logs/tune/cvtune/study.journal")
    )
    trials = optuna.load_study(study_name="cvtune", storage=storage).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "PRUNED"]
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    for trial in complete:
        folds = sorted(Path(trial.user_attrs["run_dir"]).glob("fold_*"))
        assert [f.name for f in folds] == ["fold_0", "fold_1"]
        losses = [json.loads((f / "metrics.json").read_text())["test/loss"] for f in folds]
        assert trial.value == pytest.approx(np.mean(losses), rel=1e-9)  # held-out folds' mean
        assert trial.user_attrs["fold_values"] == pytest.approx(losses)
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    assert pruned and all(len(t.user_attrs["fold_values"]) < 2 for t in pruned)  # stopped between folds
    assert all(t.params["model.init_args.lr"] == 1e-5 for t in pruned)
