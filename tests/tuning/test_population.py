"""Tuning by populations: same-shape trials trained as one packed fit, equal to their own fits, pruned member
by member, resumed after a kill (real Optuna studies over real fits of the seed data, a few epochs)."""

import itertools
import signal
from pathlib import Path

import pytest
import torch
import yaml

import trainlab
from tests.helpers import config, exit_code, run_cli
from tests.tuning.helpers import STUDY, forked_tune, kill_mid_study, leaderboard, load_study
from tests.tuning.helpers import tune_config as seed_tune_config
from trainlab.reporting.report import read_curves
from trainlab.run import QUIET

SMALL = {"trainer.max_epochs": 6, "data.init_args.val_fraction": 0.2, "run.test_ckpt": "best"}


def tune_config(name: str, space: dict, **settings) -> str:
    """The seed-experiment tune config, with these shorter fits unless `overrides` are given."""
    return seed_tune_config(name, space, **{"overrides": SMALL, **settings})


def by_values(rows: list[dict], keys: list[str]) -> dict:
    return {tuple(row[k] for k in keys): row for row in rows}


@pytest.mark.slow
def test_a_packed_grid_gives_each_trial_the_value_of_its_own_fit():
    """Members of a pack differ in lr and weight_decay (each with dropout, its masks drawn per member, and
    gradient clipping), over two shapes: one pack each. Each trial's value, epochs and test metrics are those
    of a fit of its own (`trainlab fit` with the trial's values). Members with and without dropout in one
    pack are compared in the cv test below."""
    grid = {
        "model.init_args.lr": [0.05, 0.005],
        "model.init_args.dropout": [0.3],  # per member, as the population sets it
        "model.init_args.weight_decay": [0.0, 0.01],
        "model.init_args.hidden_dims": [[8], [6, 4]],  # a shape key: two packs
    }
    overrides = {
        **SMALL,
        "data.init_args.n_samples": 400,
        "run.test_after_fit": True,
        "model.init_args.gradient_clip_val": 0.5,
    }
    assert run_cli("tune", "-c", tune_config("packed", grid, sampler="grid", population=4, overrides=overrides)) == 0
    keys = ["lr", "dropout", "weight_decay", "hidden_dims"]
    rows = by_values(leaderboard("packed"), keys)
    assert len(rows) == 8
    for values in itertools.product(*grid.values()):
        point = dict(zip(grid, values, strict=True))
        row = rows[tuple(str(v) for v in values)]
        alone = trainlab.fit(config("seed"), **QUIET, **overrides, **{"run.monitor": "val/loss"}, **point)
        assert row["state"] == "COMPLETE"
        assert float(row["val/loss"]) == pytest.approx(alone.best_score, abs=1e-4), point
        for key in ("test/loss", "test/accuracy"):
            assert float(row[key]) == pytest.approx(alone.metrics[key], abs=1e-4), (point, key)
        assert row["epochs"] == "6" and len(read_curves(alone.run_dir)["val/loss"][0]) == 6
    trials = load_study("packed").trials
    assert sorted(len(t.user_attrs["population"]) for t in trials) == [4] * 8  # a pack per shape (grid order)
    for trial in trials:  # each trial keeps a run directory of its own, as one fit would leave it
        folder = Path(trial.user_attrs["run_dir"])
        saved = yaml.safe_load((folder / "config.yaml").read_text())["model"]["init_args"]
        assert (saved["lr"], saved["weight_decay"], saved["dropout"], saved["population"]) == (
            trial.params["model.init_args.lr"],
            trial.params["model.init_args.weight_decay"],
            trial.params["model.init_args.dropout"],
            None,
        )
        assert min(read_curves(folder)["val/loss"][1]) == pytest.approx(trial.value, rel=1e-6)
        assert (folder / "metrics.json").exists() and (folder / "checkpoints" / "model.ckpt").exists()
    assert (STUDY / "packed" / "best_config.yaml").exists()


@pytest.mark.slow
def test_cv_inside_tuning_packs_trials_and_folds_and_gives_each_trial_its_per_fold_fits_values():
    """With cv in the tune config every (trial, fold) is a unit of one pack; each trial's value is the mean over
    its folds of the loss on their held-out folds, as when each fold is fitted alone (population: 1)."""
    space = {"model.init_args.lr": [0.05, 0.005], "model.init_args.dropout": [0.0, 0.3]}
    overrides = {**SMALL, "trainer.max_epochs": 4, "data.init_args.n_samples": 400}
    settings = {"sampler": "grid", "cv": {"folds": 2, "seed": 3}, "overrides": overrides}
    assert run_cli("tune", "-c", tune_config("cvpacked", space, population=8, **settings)) == 0
    assert run_cli("tune", "-c", tune_config("cvalone", space, population=1, **settings)) == 0
    packed, alone = load_study("cvpacked").trials, load_study("cvalone").trials
    assert [t.state.name for t in packed] == ["COMPLETE"] * 4 and len(alone) == 4
    assert all(len(t.user_attrs["population"]) == 4 for t in packed)  # four trials x two folds: one fit
    by_point = {tuple(sorted(t.params.items())): t for t in alone}
    for trial in packed:
        twin = by_point[tuple(sorted(trial.params.items()))]
        assert trial.value == pytest.approx(twin.value, abs=1e-4)
        assert trial.user_attrs["fold_values"] == pytest.approx(twin.user_attrs["fold_values"], abs=1e-4)
        assert trial.user_attrs["epochs"] == twin.user_attrs["epochs"]  # summed over folds, as the per-fold path
        folds = sorted(Path(trial.user_attrs["run_dir"]).glob("fold_*"))  # each fold's run directory, as alone
        assert [f.name for f in folds] == ["fold_0", "fold_1"]
        losses = [yaml.safe_load((f / "metrics.json").read_text())["test/loss"] for f in folds]
        assert trial.user_attrs["fold_values"] == pytest.approx(losses, rel=1e-9)


@pytest.mark.slow
def test_a_random_search_packs_and_prunes_members_that_then_stop_updating():
    space = {"model.init_args.lr": {"low": 1e-5, "high": 0.3, "log": True}}
    path = tune_config(
        "prune", space, sampler="random", n_trials=8, population=8, pruner="hyperband",
        overrides={**SMALL, "trainer.max_epochs": 8},
    )  # fmt: skip
    assert run_cli("tune", "-c", path) == 0
    trials = load_study("prune").trials
    assert len(trials) == 8 and len({tuple(t.user_attrs["population"]) for t in trials}) == 1  # one pack
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    assert pruned and any(t.state.name == "COMPLETE" for t in trials)
    for trial in pruned:  # pruned after the epochs it ran; its saved weights are those it stopped with
        epochs = trial.user_attrs["epochs"]
        assert 1 <= epochs < 8 and max(trial.intermediate_values) == epochs - 1
        curve = read_curves(Path(trial.user_attrs["run_dir"]))["val/loss"]
        assert curve[0] == list(range(1, epochs + 1))
        saved = torch.load(Path(trial.user_attrs["run_dir"]) / "checkpoints/model.ckpt", weights_only=True)
        assert saved["epoch"] == epochs - 1
    rows = leaderboard("prune")
    assert [r["state"] for r in rows].count("PRUNED") == len(pruned)


def test_a_diverging_member_is_pruned_alone_with_the_reason():
    path = tune_config("diverge", {"model.init_args.lr": [1.0e6, 0.01]}, sampler="grid", population=2,
                       overrides={**SMALL, "model.init_args.optimizer": "sgd"})  # fmt: skip
    assert run_cli("tune", "-c", path) == 0
    rows = {float(r["lr"]): r for r in leaderboard("diverge")}
    assert rows[0.01]["state"] == "COMPLETE" and rows[0.01]["epochs"] == "6"
    assert rows[1.0e6]["state"] == "PRUNED" and rows[1.0e6]["note"].startswith("diverged:")


@pytest.mark.slow
def test_a_kill_in_the_middle_of_a_population_resumes_without_a_lost_or_repeated_trial():
    """SIGKILL to the tuning command while its first population trains (a fork of this process, frozen and
    killed in the state seen: see tests/tuning/helpers.kill_mid_study); the same command then retries the killed trials
    and trains the rest."""
    space = {"model.init_args.lr": [0.1, 0.03, 0.01, 0.003, 0.001, 0.0003]}
    overrides = {**SMALL, "trainer.max_epochs": 30, "run.last_checkpoint_every": 0, "data.init_args.n_samples": 300}
    path = tune_config("killed", space, sampler="grid", population=3, overrides=overrides)
    process = forked_tune("-c", path)

    def first_population_training(trials):  # three trials in a pack with a last.ckpt, three not started
        states = [t.state.name for t in trials]
        training = states.count("RUNNING") == 3 and any((STUDY / "killed" / "packs").glob("*/checkpoints/last.ckpt"))
        return process.pid if training and states.count("WAITING") == 3 else None

    kill_mid_study(process, "killed", first_population_training)
    assert exit_code(process) == -signal.SIGKILL
    running = [t for t in load_study("killed").trials if t.state.name == "RUNNING"]
    assert len(running) == 3

    assert run_cli("tune", "-c", path) == 0
    trials = load_study("killed").trials
    done = [t for t in trials if t.state.name == "COMPLETE"]
    assert sorted(t.params["model.init_args.lr"] for t in done) == sorted(space["model.init_args.lr"])
    failed = [t for t in trials if t.state.name == "FAIL"]
    assert sorted(t.number for t in failed) == sorted(t.number for t in running)  # the killed ones, retried
    assert {t.user_attrs.get("retry_of") for t in done} >= {t.number for t in running}
