"""The study: its pruner stops hopeless trials, workers share one grid, a changed search is refused, a resumed
search draws new points. Real Optuna studies over real fits (the seed data, a few epochs)."""

import os
from pathlib import Path

import pytest

from tests.helpers import run_cli
from tests.tuning.helpers import SMALL, STUDY, leaderboard, load_study, tune_config


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
