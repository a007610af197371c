"""Lost work retried: a grid point whose every trial failed, and a trial whose worker died (on this machine)
or never claimed it. A worker claims its trial (host, process and the process's start) so that a living
worker's trial is told from a dead one's.
"""

import os
import socket
from datetime import datetime
from pathlib import Path

HOST = socket.gethostname()


def claim(trial) -> None:
    """Record who runs the trial (host, process and its start), so that a dead worker's trial is retried."""
    import torch

    trial.set_user_attr("host", HOST)
    trial.set_user_attr("pid", os.getpid())
    trial.set_user_attr("process_start", process_start(os.getpid()))
    trial.set_user_attr("threads", torch.get_num_threads())


def retry_failed_grid_points(study, grid: list[dict]) -> list[int]:
    """Grid points whose every trial failed (a full disk, a crash) are enqueued again: a point counts as
    done only when one of its trials completed or was pruned."""
    from optuna.trial import TrialState

    taken = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
    points = {}
    for trial in study.get_trials(deepcopy=False):
        index = trial.user_attrs.get("grid_point")
        if index is not None:
            points.setdefault(index, set()).add(trial.state)
    failed = sorted(i for i, states in points.items() if not states & set(taken))
    for index in failed:
        study.enqueue_trial(grid[index], user_attrs={"grid_point": index})
    return failed


def retry_dead_trials(study, unclaimed_after: float = 120.0) -> list[int]:
    """Trials left running by a worker that no longer lives: fail them, enqueue their values. That is a trial
    claimed by a process of this machine that has ended, or one that no worker claimed `unclaimed_after`
    seconds after it was asked for (a worker claims its trial at once: this one's was killed in between)."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    retried = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = trial.user_attrs
        if "host" not in attrs:
            asked = trial.datetime_start
            if asked is None or (datetime.now() - asked).total_seconds() < unclaimed_after:
                continue
        elif attrs["host"] != HOST or _alive(attrs.get("pid"), attrs.get("process_start")):
            continue
        try:
            study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:
            continue  # another worker (or the storage's heartbeat) failed it first, and retries it
        kept = {k: v for k, v in attrs.items() if k == "grid_point"}
        values = trial.params or trial.system_attrs.get("fixed_params", {})  # (unclaimed: not suggested yet)
        study.enqueue_trial(values, user_attrs={**kept, "retry_of": trial.number})
        retried.append(trial.number)
    return retried


def process_start(pid: int) -> str | None:
    """When a process started (Linux: /proc/<pid>/stat), so that a reused process id is not mistaken for it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid, started=None) -> bool:
    if not isinstance(pid, int):
        return True  # not ours to judge
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return started is None or process_start(pid) in (None, started)
