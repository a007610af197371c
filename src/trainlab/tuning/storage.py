"""Where a study lives: a journal file in the study directory (parallel workers on one machine), or an
Optuna RDB URL (PostgreSQL across machines).

Three hazards are handled here. A writer killed while it held the journal's lock must not stall the others:
the lock is an flock, which the kernel releases when its holder exits (Optuna's own locks are files that
outlive a killed holder, waited out for 30 s). A writer killed in the middle of a journal line leaves a torn
record that would make the next append unreadable and the study unusable: it is dropped before the study is
opened (with a warning naming the file). Several processes using a new database at the same instant race to
create Optuna's schema (PostgreSQL: "duplicate key ... pg_type_typname_nsp_index"): the loser retries.
"""

import fcntl
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
        lock = JournalLock(config.study_dir / "study.lock")
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


class JournalLock:
    """The journal's lock (Optuna's lock interface: acquire, release): an exclusive flock on `path`, a file
    next to the journal that is never removed or replaced, so that every process locks the same file. Held
    for the milliseconds of an append; released by the kernel when its holder exits, however it ends. On one
    machine, or on NFS with locking."""

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def acquire(self, blocking: bool = True) -> bool:
        """Take the lock, waiting for it (or, not `blocking`, False at once when another holds it)."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor releases the flock


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
