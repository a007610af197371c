"""Running a search: a time budget ends an open-ended one; a killed worker costs only its trial, the results
are still written and the next run retries it."""

from datetime import timedelta
from pathlib import Path

import pytest

from tests.helpers import exit_code, run_cli
from tests.tuning.helpers import SMALL, STUDY, forked_tune, kill_mid_study, load_study, tune_config


@pytest.mark.slow
def test_a_time_budget_ends_an_open_ended_search():
    space = {"model.init_args.lr": {"low": 1e-3, "high": 0.1, "log": True}}
    overrides = {**SMALL, "trainer.max_epochs": 2}  # populations of four, each one packed fit, until 1 s is spent
    path = tune_config("budget", space, sampler="random", timeout=1, population=4, overrides=overrides)
    assert run_cli("tune", "-c", path) == 0
    trials = load_study("budget").trials
    assert len(trials) >= 2 and all(t.state.name == "COMPLETE" for t in trials)
    first = trials[0].datetime_start  # the budget starts just before the first trial; none begins after it
    assert all(t.datetime_start <= first + timedelta(seconds=1) for t in trials)


@pytest.mark.slow
def test_a_killed_worker_costs_only_its_trial_and_the_next_run_retries_it():
    """SIGKILL (the OOM killer) to one of two workers while it trains the last points: the other finishes the
    grid, the command ends in one line with exit 5 and writes the leaderboard, and the same command then trains
    the lost points: each lost trial failed, retried once with its values."""
    lrs = [0.3, 0.1, 0.03, 0.01]
    path = tune_config("kill", {"model.init_args.lr": lrs}, sampler="grid", workers=2, population=2)
    process = forked_tune("-c", path)

    def a_worker_training_a_trial(trials):  # once every point is taken (no worker asks for one again)
        training = [t for t in trials if t.state.name == "RUNNING" and "run_dir" in t.user_attrs]
        waiting = any(t.state.name == "WAITING" for t in trials)
        return training[0].user_attrs["pid"] if training and not waiting else None

    seen = kill_mid_study(process, "kill", a_worker_training_a_trial)
    worker = a_worker_training_a_trial(seen)
    assert worker != process.pid  # one of the command's workers, not the command
    lost = [t.number for t in seen if t.state.name == "RUNNING" and t.user_attrs.get("pid") == worker]
    code = exit_code(process)
    err = Path("err.log").read_text()
    assert code == 5, err[-2000:]
    assert err.strip().splitlines()[-1].startswith("trainlab: error: 1 job(s) lost") and "Traceback" not in err
    assert (STUDY / "kill" / "leaderboard.csv").exists()
    trials = load_study("kill").trials  # the killed worker's trials are left running; every other one is done
    assert {t.number for t in trials if t.state.name != "COMPLETE" and not t.user_attrs.get("spare")} == set(lost)
    # (failed and retried already in the rare case where the other worker asked for points again after the kill)
    assert all(trials[number].state.name in ("RUNNING", "FAIL") for number in lost)
    assert run_cli("tune", "-c", path) == 0
    trials = load_study("kill").trials
    done = [t for t in trials if t.state.name == "COMPLETE"]
    assert sorted(t.params["model.init_args.lr"] for t in done) == sorted(lrs)  # every point, once
    for number in lost:
        assert trials[number].state.name == "FAIL"
        assert [t.params for t in done if t.user_attrs.get("retry_of") == number] == [trials[number].params]
