"""Where a study lives: a journal file (a torn tail is dropped), an SQLite URL, and a real PostgreSQL server
(started here on loopback; .ci/run installs PostgreSQL) that two `trainlab tune` processes share, as workers
on two machines would."""

import csv
import glob
import importlib
import itertools
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import types
from pathlib import Path

import optuna
import pytest
import yaml

from tests.helpers import config, fork_trainlab, run_cli
from tests.tuning.helpers import SMALL, STUDY, leaderboard, tune_config
from trainlab.tuning.recovery import HOST


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


def postgres_bin() -> Path | None:
    found = shutil.which("initdb") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))), None)
    return Path(found).resolve().parent if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_server():
    """A PostgreSQL server for this module's tests (initdb costs a second or more): its URL without a database."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (.ci/run installs it)")
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # the server refuses root
    folder = Path(tempfile.mkdtemp(prefix="trainlab-pg-"))
    folder.chmod(0o755)
    data = folder / "data"
    data.mkdir()
    if as_user:
        shutil.chown(data, "postgres", "postgres")
    port = free_port()
    subprocess.run(
        [*as_user, bin_dir / "initdb", "-D", data, "-A", "trust", "-U", "trainlab"], check=True, capture_output=True
    )
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"  # a throwaway server
    # The server outlives pg_ctl: it must not hold our pipes open (it logs to a file instead).
    start = [*as_user, bin_dir / "pg_ctl", "-D", data, "-o", options, "-l", data / "server.log", "-w", "start"]
    subprocess.run(start, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield f"postgresql://trainlab@127.0.0.1:{port}"
    finally:
        subprocess.run([*as_user, bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


DATABASES = itertools.count()


@pytest.fixture
def postgres_url(postgres_server):
    """A new, empty database of its own for each test."""
    import psycopg

    name = f"test{next(DATABASES)}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    return f"{postgres_server}/{name}"


# What `trainlab tune` imports as it runs (its checks, fits and plots)
PRELOADED = ["trainlab.lightning_cli", "trainlab.tuning.search", "trainlab.tuning.checks", "trainlab.tuning.results"]
PRELOADED += ["matplotlib.pyplot", "optuna.visualization.matplotlib"]


def forked_tune(*args: str, cwd: str) -> multiprocessing.Process:
    """`trainlab tune ARGS` in directory `cwd`, in a process of its own: a fork of this one, which starts at once
    (a new interpreter spends ~5 s importing Lightning; tests/test_cli.py runs the console script itself). Its
    output goes to cwd/worker.log; its exit code is the command's."""
    for module in PRELOADED:  # imported once, here: the forks start with them (and this process uses them too)
        importlib.import_module(module)
    return fork_trainlab("tune", *args, stdout="worker.log", stderr=None, cwd=cwd)


@pytest.mark.slow
def test_two_tuning_processes_share_a_study_in_postgresql(postgres_url):
    """Two machines' workers, one trial at a time (population 1) on one and three at once (a packed fit) on the
    other: each grid point is trained exactly once, both take part, a worker that asks in the instant the other
    takes the last point gets a spare, and the command run again finds nothing to do and lists the study."""
    lrs = [0.2, 0.1, 0.05, 0.02, 0.01, 0.005]
    body = {
        "base": config("seed"),
        "name": "shared",
        "sampler": "grid",
        "overrides": {"trainer.max_epochs": 8, "data.init_args.val_fraction": 0.2},
        "space": {"model.init_args.lr": lrs},
    }
    Path("tune.yaml").write_text(yaml.safe_dump(body))
    command = ["-c", "../tune.yaml", "--storage", postgres_url]
    # Separate processes with separate output folders, one database.
    workers = {}
    for name, population in (("a", 1), ("b", 3)):
        Path(name).mkdir()
        workers[name] = forked_tune(*command, "--population", str(population), cwd=name)
    for name, worker in workers.items():
        worker.join(timeout=300)
        if worker.is_alive():  # no fork outlives its test
            worker.kill()
        assert worker.exitcode == 0, (Path(name) / "worker.log").read_text()[-3000:]

    study = optuna.load_study(study_name="shared", storage=postgres_url)
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert sorted(t.params["model.init_args.lr"] for t in done) == sorted(lrs)  # each exactly once
    spares = [t for t in study.trials if t not in done]
    assert all(t.user_attrs.get("spare") for t in spares) and len(spares) <= 1  # none asks once none is left
    by_worker = {name: [t for t in done if t.user_attrs["pid"] == w.pid] for name, w in workers.items()}
    assert all(by_worker.values()) and {t.user_attrs["host"] for t in done} == {HOST}  # both took some
    assert not any("population" in t.user_attrs for t in by_worker["a"])  # one fit per trial
    packs = [t.user_attrs.get("population", [t.number]) for t in by_worker["b"]]  # a trial left alone: its own fit
    assert all(len(pack) <= 3 for pack in packs) and any(len(pack) > 1 for pack in packs)
    study_trials = len(study.trials)

    # Re-running the command finds nothing left to do and writes the whole study's leaderboard.
    os.chdir("a")
    assert run_cli("tune", *command) == 0
    with open("lightning_logs/tune/shared/leaderboard.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["state"] == "COMPLETE"]
    assert len(optuna.load_study(study_name="shared", storage=postgres_url).trials) == study_trials
    assert sorted(int(r["trial"]) for r in rows) == sorted(t.number for t in done)
    by_number = {t.number: t.value for t in done}
    assert all(float(r["val/loss"]) == pytest.approx(by_number[int(r["trial"])]) for r in rows)
    assert [float(r["val/loss"]) for r in rows] == sorted(float(r["val/loss"]) for r in rows)


def _open_at(url: str, start: float) -> None:
    """Open the storage at `start` (every process at the same instant), as `trainlab tune --storage` does."""
    from trainlab.tuning.storage import open_storage

    while time.time() < start:
        time.sleep(0.001)
    open_storage(types.SimpleNamespace(storage=url, study_dir=None))


@pytest.mark.slow
def test_several_processes_creating_the_schema_at_the_same_instant_all_succeed(postgres_url):
    """A new database: Optuna's schema is created by whichever process comes first; the others retry
    (PostgreSQL refuses a second CREATE at the same moment with a duplicate key). The processes are forks of
    this one, with Optuna, SQLAlchemy and psycopg already imported: they all reach the database at once."""
    import optuna.storages._rdb.models  # noqa: F401
    import psycopg  # noqa: F401
    import sqlalchemy  # noqa: F401

    start = time.time() + 0.5  # after every process has started
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_open_at, args=(postgres_url, start), daemon=True) for _ in range(6)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0, "a process failed or hung: a failure's traceback is in the captured stderr"
    assert optuna.get_all_study_names(postgres_url) == []  # the schema is there and readable


def _hold_the_lock(path, ready: int) -> None:
    """In a fork: take the journal's lock, say so, and keep it until killed."""
    from trainlab.tuning.storage import JournalLock

    JournalLock(path).acquire()
    os.write(ready, b"x")
    time.sleep(600)


def test_the_journal_lock_keeps_other_processes_out_and_is_free_as_soon_as_its_holder_is_killed(tmp_path):
    """A worker killed while it appends to the journal leaves no lock behind (the kernel releases an flock):
    the others go on at once, where Optuna's file lock waits 30 s for it."""
    from trainlab.tuning.storage import JournalLock

    path = tmp_path / "study.lock"
    ready, said = os.pipe()
    holder = multiprocessing.get_context("fork").Process(target=_hold_the_lock, args=(path, said))
    holder.start()
    try:
        assert os.read(ready, 1) == b"x"
        lock = JournalLock(path)
        assert lock.acquire(blocking=False) is False  # held by the other process
        os.kill(holder.pid, signal.SIGKILL)
        holder.join()
        assert lock.acquire(blocking=False) is True  # its holder is gone: free, with nothing to wait out
        assert JournalLock(path).acquire(blocking=False) is False  # one holder at a time, within a process too
        lock.release()
        another = JournalLock(path)
        assert another.acquire(blocking=False) is True
        another.release()
    finally:
        holder.kill()
        holder.join()
