"""Where a study lives: a journal file in the study directory (parallel workers on one machine), or an
Optuna RDB URL (PostgreSQL across machines).

Two hazards are handled here. A writer killed in the middle of a journal line leaves a torn record that
would make the next append unreadable and the study unusable: it is dropped before the study is opened
(with a warning naming the file). Several processes using a new database at the same instant race to
create Optuna's schema (PostgreSQL: "duplicate key ... pg_type_typname_nsp_index"): the loser retries.
"""

import contextlib
import os
import random
import time
import warnings
from pathlib import Path

from trainlab.errors import TrainlabWarning, UserError

SCHEMA_RACE = ("already exists", "duplicate key", "pg_type_typname_nsp_index")


def open_storage(config):
    """The study's storage: a journal file in the study directory, or `config.storage` (an RDB URL)."""
    import optuna

    if config.storage is None:
        config.study_dir.mkdir(parents=True, exist_ok=True)
        path = config.study_dir / "study.journal"
        drop_stale_lock(path)
        # an absolute path: Optuna's lock is a symlink to it, and its grace period stats that link's target
        lock = optuna.storages.journal.JournalFileSymlinkLock(str(path.absolute()))
        dropped = repair_journal(path, lock)
        if dropped:
            warnings.warn(f"{path}: dropped {dropped} torn record(s) left by a killed writer", TrainlabWarning, 2)
        backend = optuna.storages.journal.JournalFileBackend(str(path), lock_obj=lock)
        return optuna.storages.JournalStorage(backend)
    for attempt in range(8):
        try:
            return _rdb(config.storage)
        except Exception as error:  # a bad URL, a missing driver, a server that does not answer
            if any(sign in str(error) for sign in SCHEMA_RACE) and attempt < 7:
                time.sleep(0.1 * (attempt + 1) + random.random() * 0.2)  # another process is creating the schema
                continue
            reason = str(error).strip().splitlines()[0][:200]
            raise UserError(
                f"--storage {config.storage!r} cannot be opened ({type(error).__name__}: {reason}); "
                "allowed: an Optuna RDB URL that answers, such as postgresql://user:password@host/db, "
                "or none for a journal file in the study directory"
            ) from None


def _rdb(url: str):
    import optuna

    # Heartbeats let a worker on any machine fail and retry a trial whose worker died.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3)
        return optuna.storages.RDBStorage(
            url, heartbeat_interval=30, grace_period=120, heartbeat_stale_trial_callback=retry
        )


STALE_LOCK_SECONDS = 10.0  # a writer holds the journal's lock for milliseconds


def drop_stale_lock(path: Path) -> None:
    """Remove the journal's lock left by a writer killed while it held it: a lock older than
    STALE_LOCK_SECONDS (a younger one is waited for). An earlier version's relative link pointed nowhere,
    which made Optuna's own staleness check spin forever."""
    lock = path.with_name(path.name + ".lock")
    while True:
        try:
            age = time.time() - os.lstat(lock).st_mtime
        except FileNotFoundError:
            return
        if age > STALE_LOCK_SECONDS:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock)
                warnings.warn(f"{lock}: removed a lock left by a killed writer", TrainlabWarning, 3)
            return
        time.sleep(0.1)


def repair_journal(path: Path, lock) -> int:
    """Drop the journal's unreadable records (a torn last line, or a line a torn one was glued to) under the
    journal's own lock; the file is rewritten atomically. Returns how many records were dropped."""
    import json

    if not path.exists() or path.stat().st_size == 0:
        return 0
    lock.acquire()
    try:
        data = path.read_bytes()
        lines = data.split(b"\n")
        tail = lines.pop()  # b"" when the file ends with a newline, else a torn record
        kept, dropped = [], int(tail != b"")
        for line in lines:
            try:
                json.loads(line)
                kept.append(line)
            except ValueError:
                dropped += 1
        if dropped:
            temporary = path.with_name(path.name + ".repair")
            temporary.write_bytes(b"".join(line + b"\n" for line in kept))
            os.replace(temporary, path)
        return dropped
    finally:
        lock.release()
