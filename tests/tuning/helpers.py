"""Helpers for the tuning tests: tune configs over the seed experiment, a study's leaderboard and journal,
and a tuning command in a fork of this process, killed in the middle of its study."""

import contextlib
import csv
import multiprocessing
import os
import signal
import time
from pathlib import Path

import optuna
import yaml

from tests.helpers import config, fork_trainlab
from trainlab.tuning.storage import JournalLock

STUDY = Path("lightning_logs/tune")
SMALL = {"trainer.max_epochs": 8, "data.init_args.val_fraction": 0.2, "run.test_ckpt": "best"}


def tune_config(name: str, space: dict, overrides: dict = SMALL, **settings) -> str:
    """A tune config over the seed experiment, written to the test's directory."""
    path = Path(f"{name}.yaml")
    body = {"base": config("seed"), "metric": "val/loss", "overrides": overrides, "space": space, **settings}
    path.write_text(yaml.safe_dump(body))
    return str(path)


def tune_yaml(name: str, body: dict) -> str:
    import yaml

    Path(f"{name}.yaml").write_text(yaml.safe_dump({"base": config("seed"), "metric": "val/loss", **body}))
    return f"{name}.yaml"


def leaderboard(name: str) -> list[dict]:
    with open(STUDY / name / "leaderboard.csv", newline="") as f:
        return list(csv.DictReader(f))


def load_study(name: str):
    lock = JournalLock(STUDY / name / "study.lock")
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(STUDY / name / "study.journal"), lock_obj=lock)
    )
    return optuna.load_study(study_name=name, storage=storage)


def forked_tune(*args: str):
    """`trainlab tune ARGS` in a forked process (see tests/helpers.fork_trainlab), its output in out.log and err.log."""
    return fork_trainlab("tune", *args)


def kill_mid_study(process: multiprocessing.Process, name: str, target) -> list:
    """SIGKILL the process `target(trials)` names (a pid, or None while the study is not there yet), once it
    does: frozen first (SIGSTOP) and the study read again, so that the kill lands in the state that was seen
    (the trial that was running is still running) however fast the trials are. Returns that state's trials.
    Not in the middle of an append to the journal (while it holds the journal's lock): the torn record would
    break the other workers' reads until the next run drops it (tests/tuning/test_storage.py)."""
    journal = STUDY / name / "study.journal"
    lock = JournalLock(journal.with_name("study.lock"))
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
                if target(trials) == pid and lock.acquire(blocking=False):  # frozen: it cannot take it now
                    lock.release()
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
