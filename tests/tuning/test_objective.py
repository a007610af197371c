"""What a trial is: values drawn from ranges and list choices, a grid worker that finds no point left, cv inside
tuning (a trial's value is its mean over the held-out folds). Real Optuna studies over real fits (the seed
data, a few epochs)."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.helpers import run_cli
from tests.tuning.helpers import STUDY, leaderboard, load_study, tune_config, tune_yaml


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


@pytest.mark.slow
def test_a_grid_worker_that_finds_no_point_left_takes_none():
    from trainlab.tuning.config import load_tune_config
    from trainlab.tuning.objective import GridTaken, objective
    from trainlab.tuning.search import run_search

    path = tune_config("taken", {"model.init_args.lr": [0.05]}, sampler="grid")
    result = run_search(load_tune_config(path))
    study = load_study("taken")
    with pytest.raises(GridTaken):  # as if another worker had popped the last point a moment before
        study.optimize(lambda trial: objective(trial, result.search), n_trials=1)
    trials = load_study("taken").trials
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL"] and trials[1].user_attrs["spare"]
    assert [r["trial"] for r in run_search(load_tune_config(path)).leaderboard] == [0]  # spares are not listed


@pytest.mark.slow
def test_cv_inside_tuning_scores_each_trial_by_its_mean_over_folds():

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
    trials = load_study("cvtune").trials
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
