"""Distributed tuning on a real PostgreSQL server (started here on loopback; .ci/run installs PostgreSQL):
two `trainlab tune` processes share one study, as workers on two machines would."""

import csv
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest
import yaml

from conftest import REPO, config, run_cli


def postgres_bin() -> Path | None:
    found = shutil.which("initdb") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))), None)
    return Path(found).resolve().parent if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres_url():
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
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1"
    # The server outlives pg_ctl: it must not hold our pipes open (it logs to a file instead).
    start = [*as_user, bin_dir / "pg_ctl", "-D", data, "-o", options, "-l", data / "server.log", "-w", "start"]
    subprocess.run(start, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield f"postgresql://trainlab@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.parametrize("population", [1, 3])
def test_two_tuning_processes_share_a_study_in_postgresql(postgres_url, population):
    lrs = [0.2, 0.1, 0.05, 0.02, 0.01, 0.005]
    body = {
        "base": config("seed"),
        "name": f"shared{population}",
        "sampler": "grid",
        "population": population,
        "overrides": {"trainer.max_epochs": 8, "data.init_args.val_fraction": 0.2},
        "space": {"model.init_args.lr": lrs},
    }
    Path("tune.yaml").write_text(yaml.safe_dump(body))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    command = [sys.executable, "-m", "trainlab", "tune", "-c", "../tune.yaml", "--storage", postgres_url]
    # Two machines' workers: separate processes with separate output folders, one database.
    workers = []
    for name in ("a", "b"):
        Path(name).mkdir()
        log = open(Path(name) / "worker.log", "w")  # a file: a full pipe would stall a worker
        workers.append(subprocess.Popen(command, cwd=name, env=env, stdout=log, stderr=subprocess.STDOUT))
        time.sleep(0.5)
    for name, worker in zip(("a", "b"), workers, strict=True):
        assert worker.wait(timeout=300) == 0, (Path(name) / "worker.log").read_text()[-3000:]

    study = optuna.load_study(study_name=f"shared{population}", storage=postgres_url)
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert sorted(t.params["model.init_args.lr"] for t in done) == sorted(lrs)  # each exactly once
    assert all(t.user_attrs.get("spare") for t in study.trials if t not in done)  # a point taken by the other
    if population == 1:  # one trial at a time: both machines' workers take some
        assert len(study.trials) == 6
        assert len({(t.user_attrs["host"], t.user_attrs["pid"]) for t in study.trials}) == 2
    study_trials = len(study.trials)

    # Re-running the command finds nothing left to do and writes the whole study's leaderboard.
    os.chdir("a")
    assert run_cli("tune", "-c", "../tune.yaml", "--storage", postgres_url) == 0
    with open(f"lightning_logs/tune/shared{population}/leaderboard.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["state"] == "COMPLETE"]
    assert len(optuna.load_study(study_name=f"shared{population}", storage=postgres_url).trials) == study_trials
    assert sorted(int(r["trial"]) for r in rows) == sorted(t.number for t in done)
    by_number = {t.number: t.value for t in done}
    assert all(float(r["val/loss"]) == pytest.approx(by_number[int(r["trial"])]) for r in rows)
    assert [float(r["val/loss"]) for r in rows] == sorted(float(r["val/loss"]) for r in rows)


OPEN_AT = """
import sys, time, types
from trainlab.tuning.storage import open_storage
start = float(sys.argv[2])
while time.time() < start:
    time.sleep(0.001)
open_storage(types.SimpleNamespace(storage=sys.argv[1], study_dir=None))
"""


@pytest.mark.slow
def test_several_processes_creating_the_schema_at_the_same_instant_all_succeed(postgres_url):
    """A new database: Optuna's schema is created by whichever process comes first; the others retry
    (PostgreSQL refuses a second CREATE at the same moment with a duplicate key)."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    start = time.time() + 3  # after every process has imported Optuna
    processes = [
        subprocess.Popen([sys.executable, "-c", OPEN_AT, postgres_url, str(start)], env=env, stderr=subprocess.PIPE)
        for _ in range(6)
    ]
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err.decode()[-2000:]
    assert optuna.get_all_study_names(postgres_url) == []  # the schema is there and readable
