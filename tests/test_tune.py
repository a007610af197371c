"""trainlab tune: real Optuna studies over real fits (small ones: the seed data, a few epochs)."""

import contextlib
import csv
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import optuna
import pytest
import yaml

import trainlab
from conftest import config, exit_code, fork_trainlab, run_cli
from trainlab.reporting.report import read_curves

STUDY = Path("lightning_logs/tune")
SMALL = {"trainer.max_epochs": 8, "data.init_args.val_fraction": 0.2, "run.test_ckpt": "best"}


def tune_config(name: str, space: dict, overrides: dict = SMALL, **settings) -> str:
    """A tune config over the seed experiment, written to the test's directory."""
    path = Path(f"{name}.yaml")
    body = {"base": config("seed"), "metric": "val/loss", "overrides": overrides, "space": space, **settings}
    path.write_text(yaml.safe_dump(body))
    return str(path)


def leaderboard(name: str) -> list[dict]:
    with open(STUDY / name / "leaderboard.csv", newline="") as f:
        return list(csv.DictReader(f))


def load_study(name: str):
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(STUDY / name / "study.journal"))
    )
    return optuna.load_study(study_name=name, storage=storage)


def forked_tune(*args: str):
    """`trainlab tune ARGS` in a forked process (see conftest.fork_trainlab), its output in out.log and err.log."""
    return fork_trainlab("tune", *args)


def kill_mid_study(process: multiprocessing.Process, name: str, target) -> list:
    """SIGKILL the process `target(trials)` names (a pid, or None while the study is not there yet), once it
    does: frozen first (SIGSTOP) and the study read again, so that the kill lands in the state that was seen
    (the trial that was running is still running) however fast the trials are. Returns that state's trials.
    Not while the journal's lock is taken: a killed holder's lock would stall the others for Optuna's grace
    period (30 s) and the next run for trainlab's (10 s)."""
    journal = STUDY / name / "study.journal"
    lock = journal.with_name("study.journal.lock")
    deadline = time.monotonic() + 120
    frozen = None
    try:
        while True:
            assert process.is_alive() and time.monotonic() < deadline, Path("err.log").read_text()[-2000:]
            try:
                pid = target(load_study(name).trials) if journal.exists() else None
            except KeyError:  # the study is not in the journal yet
                pid = None
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGSTOP)
                except ProcessLookupError:  # it ended just now
                    continue
                frozen = pid
                trials = load_study(name).trials
                if target(trials) == pid and not os.path.lexists(lock):
                    os.kill(pid, signal.SIGKILL)
                    return trials
                os.kill(pid, signal.SIGCONT)
                frozen = None
            time.sleep(0.05)
    except BaseException:
        for pid in {frozen, process.pid} - {None}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        raise


@pytest.mark.slow
def test_grid_over_three_learning_rates_runs_three_trials_ranked_and_resumes_without_rerunning(capsys):
    overrides = {**SMALL, "run.test_after_fit": True}  # trials test only when asked
    path = tune_config("lr", {"model.init_args.lr": [0.1, 0.01, 0.001]}, sampler="grid", overrides=overrides)
    assert run_cli("tune", "-c", path) == 0
    rows = leaderboard("lr")
    assert [r["state"] for r in rows] == ["COMPLETE"] * 3
    assert sorted(float(r["lr"]) for r in rows) == [0.001, 0.01, 0.1]
    values = [float(r["val/loss"]) for r in rows]
    assert values == sorted(values)  # ranked, best (lowest loss) first
    for row in rows:  # each trial is a real run: its value is the best val/loss its TensorBoard curve holds
        run_dir = STUDY / "lr" / "trials" / f"trial_{int(row['trial']):04d}"
        saved = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert saved["model"]["init_args"]["lr"] == float(row["lr"])
        assert saved["run"]["monitor"] == "val/loss"
        assert min(read_curves(run_dir)["val/loss"][1]) == pytest.approx(float(row["val/loss"]), rel=1e-6)
        assert "test/accuracy" in row and (run_dir / "metrics.json").exists()
    assert {p.name for p in (STUDY / "lr" / "plots").glob("*.png")} >= {
        "optimization_history.png",
        "slices.png",
        "learning_curves.png",
    }
    assert "best: trial" in capsys.readouterr().out

    # The same command again: the study is complete, nothing is re-run.
    assert run_cli("tune", "-c", path) == 0
    assert len(load_study("lr").trials) == 3
    assert leaderboard("lr") == rows
    assert len(list((STUDY / "lr" / "trials").iterdir())) == 3


def test_best_config_reproduces_the_best_trial():
    path = tune_config("best", {"model.init_args.lr": [0.03, 0.003]}, sampler="grid")
    tuned = trainlab.tune(path)  # the Python API: the same study as `trainlab tune -c`
    best = leaderboard("best")[0]
    assert tuned.best_value == pytest.approx(float(best["val/loss"]))
    assert tuned.best_params == {"model.init_args.lr": float(best["lr"])}
    saved = STUDY / "best" / "best_config.yaml"
    assert tuned.best_config == saved
    assert yaml.safe_load(saved.read_text())["model"]["init_args"]["lr"] == float(best["lr"])
    result = trainlab.fit(str(saved), trainer__enable_progress_bar=False, run__report=False)
    assert result.best_score == pytest.approx(float(best["val/loss"]), rel=1e-6)
    assert result.run_dir.parts[:2] == ("lightning_logs", "seed")  # the base config's own logger, not the trial's


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
    path = tune_config(  # one fit per trial (population 1): tests/test_population.py kills a population
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


BAD = [
    ({"space": {"model.init_args.nope": [1, 2]}}, "model.init_args.nope"),
    ({"space": {"model.init_args.lr": {"low": 0.1, "high": 0.01}}}, "low 0.1 >= high 0.01"),
    ({"space": {"model.init_args.lr": {"low": 0.0, "high": 0.1, "log": True}}}, "log scale"),
    ({"space": {"model.init_args.lr": []}}, "non-empty list"),
    ({"space": {"model.init_args.dropout": [0.1, 1.5]}}, "dropout"),
    ({"space": {"model.init_args.optimizer": ["adam", "lbfgs"]}}, "lbfgs"),
    ({"sampler": "bayesian"}, "sampler='bayesian'"),
    ({"pruner": "asha"}, "pruner='asha'"),
    ({"storage": "postgresql://nobody@127.0.0.1:1/none"}, "--storage"),
    ({"storage": "sqlite:////no/such/folder/study.db"}, "--storage"),
    ({"sampler": "grid", "space": {"model.init_args.lr": {"low": 0.001, "high": 0.1}}}, "a grid must be finite"),
    ({"overrides": {"trainer.max_epochs": 5}}, "val_fraction > 0"),
    ({"metric": "val/r2"}, "metric='val/r2'"),
    ({"space": {"data.init_args.seed": [1, 2]}}, "trials must see the same data and splits"),
    ({"metric": "val/accuracy", "mode": "min"}, "run.mode='min' is not allowed: auto or max"),
    ({"colour": "blue"}, "unknown key 'colour'"),
]


@pytest.mark.parametrize(("change", "named"), BAD, ids=[b[1] for b in BAD])
def test_bad_tune_config_is_refused_before_any_trial(change, named, capsys):
    settings = {"sampler": "random", "n_trials": 2, "space": {"model.init_args.lr": [0.1, 0.01]}, **change}
    path = tune_config("bad", **settings)
    assert run_cli("tune", "-c", path) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("trainlab: error:") and "\n" not in err and "Traceback" not in err
    assert named in err
    assert not (STUDY / "bad" / "trials").exists()  # nothing ran


EARLY = [
    ({"space": {"model.init_args.nope": [1, 2]}}, "space.model.init_args.nope=1: model.init_args: Option 'nope'"),
    ({"space": {"model.init_args.dropout": [0.1, 1.5]}}, "space.model.init_args.dropout=1.5: model.init_args.dropout"),
    ({"space": {"model.init_args.optimizer": ["adam", "lbfgs"]}}, "space.model.init_args.optimizer='lbfgs': "),
    ({"overrides": {"trainer.max_epoch": 3}}, "base seed.yaml with overrides: trainer: Option 'max_epoch' is not"),
    ({"overrides": {"data.init_args.batch_size": 0}}, "base seed.yaml with overrides: data.init_args.batch_size=0"),
]


@pytest.mark.slow
def test_a_tune_configs_bad_key_or_value_is_answered_before_lightning_is_imported_in_the_checks_words():
    from trainlab.tuning.checks import check_search
    from trainlab.tuning.config import early_problem, load_tune_config

    for change, expected in EARLY:
        path = tune_config("early", **{"space": {"model.init_args.lr": [0.1, 0.01]}, "sampler": "grid", **change})
        config = load_tune_config(path)
        early = early_problem(config)
        with pytest.raises(Exception) as full:
            check_search(config)
        assert early is not None and early.startswith(expected) and early == str(full.value), (early, full.value)
    assert (
        early_problem(load_tune_config(tune_config("fine", {"model.init_args.lr": [0.1, 0.01]}, sampler="grid")))
        is None
    )
    code = "import sys; from trainlab.cli import main; main(sys.argv[1:])"
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, "tune", "-c", path], capture_output=True, text=True
    )
    assert done.returncode == 2 and expected in done.stderr and "lightning" not in done.stderr, done.stderr[-300:]


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
def test_a_storage_url_holds_the_study_and_trials_log_hyperparameters_for_tensorboard():
    path = tune_config("shared", {"model.init_args.lr": [0.05, 0.01]}, sampler="grid")
    assert run_cli("tune", "-c", path, "--storage", "sqlite:///shared.db") == 0
    assert not (STUDY / "shared" / "study.journal").exists()
    study = optuna.load_study(study_name="shared", storage="sqlite:///shared.db")
    assert len(study.trials) == 2 and all(t.state.name == "COMPLETE" for t in study.trials)
    assert run_cli("tune", "-c", path, "--storage", "sqlite:///shared.db") == 0  # resumes: nothing new
    assert len(optuna.load_study(study_name="shared", storage="sqlite:///shared.db").trials) == 2

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for trial in study.trials:
        events = EventAccumulator(trial.user_attrs["run_dir"]).Reload()
        hparams = events.PluginTagToContent("hparams")
        assert "_hparams_/session_start_info" in hparams
        assert b"model.init_args.lr" in hparams["_hparams_/session_start_info"]
        assert events.Scalars("hparams/val/loss")[0].value == pytest.approx(trial.value)


def test_workers_share_the_cpu_or_own_a_gpu_each():
    from trainlab.workers import shares

    assert shares(2, gpus=0, cpus=2) == [{"threads": 1, "gpu": None}] * 2
    assert shares(3, gpus=2, cpus=16) == [{"threads": 5, "gpu": 0}, {"threads": 5, "gpu": 1}, {"threads": 5, "gpu": 0}]
    assert shares(4, gpus=0, cpus=2)[0]["threads"] == 1


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
def test_a_torn_journal_tail_is_dropped_with_a_warning_and_the_study_goes_on(capsys):
    """A writer killed mid-line leaves a torn record; the next run drops it (one warning naming the file)
    instead of failing to read the study, and the search completes."""
    overrides = {**SMALL, "trainer.max_epochs": 2}
    path = tune_config("torn", {"model.init_args.lr": [0.1, 0.01]}, sampler="grid", overrides=overrides, n_trials=1)
    assert run_cli("tune", "-c", path) == 0
    journal = STUDY / "torn" / "study.journal"
    with open(journal, "ab") as f:
        f.write(b'{"op_code": 5, "worker_id": "x", "trial_id": 1, "sta')  # torn: no end, no newline
    capsys.readouterr()
    path = tune_config("torn", {"model.init_args.lr": [0.1, 0.01]}, sampler="grid", overrides=overrides)
    assert run_cli("tune", "-c", path) == 0
    err = capsys.readouterr().err
    assert f"trainlab: warning: {journal}: dropped 1 torn record(s)" in err and "Traceback" not in err
    assert sorted(r["state"] for r in leaderboard("torn")) == ["COMPLETE", "COMPLETE"]
    assert journal.read_bytes().endswith(b"\n")


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
