"""Worker processes of `cv --workers` and `tune --workers`: their share of the machine, and a fold that fails
or a worker that is signalled ending the command in one line."""

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest
import torch

from tests.helpers import config, fork_trainlab, run_cli


def test_a_fold_that_diverges_in_a_worker_stops_the_cv_in_one_line(capsys):
    args = ["cv", "-c", config("seed"), "--folds", "2", "--workers", "2", "--model.init_args.lr", "1e12"]
    assert run_cli(*args, "--model.init_args.optimizer", "sgd", "--trainer.max_epochs", "3") == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith("trainlab: training failed:") and "Traceback" not in err


def test_a_signal_between_two_jobs_ends_a_worker_without_a_traceback(monkeypatch):
    """SIGTERM raises trainlab's Stopped wherever the worker is; waiting for its next job it must end as it does
    in a job (exit 128 + the signal), not with multiprocessing's traceback and exit 1."""
    from trainlab import workers
    from trainlab.errors import Stopped

    class SignalledWhileWaiting:
        def get(self):
            raise Stopped(signal.SIGTERM)

    monkeypatch.setattr(workers, "_claimed", None)  # _serve claims a share for this process: given back after
    with pytest.raises(SystemExit) as stop:
        workers._serve({"threads": torch.get_num_threads(), "gpu": None}, print, SignalledWhileWaiting(), None)
    assert stop.value.code == 128 + signal.SIGTERM


@pytest.mark.slow
def test_sigterm_to_one_cv_worker_ends_the_command_in_one_line_instead_of_waiting_forever():
    """The command runs in a process of its own, a fork of this one (a new interpreter spends ~5 s importing
    Lightning); its two workers are its children, and one of them is stopped in its fold (three folds: should
    the first fold end before the signal comes, its worker is in the third)."""
    args = ["cv", "-c", config("seed"), "--folds", "3", "--workers", "2", "--no-pack", "--trainer.max_epochs", "30"]
    command = fork_trainlab(*args, "--data.init_args.n_samples", "300")  # output, workers' too: out/err.log
    children = Path(f"/proc/{command.pid}/task/{command.pid}/children")
    folds = Path("lightning_logs/cv/seed/version_0/folds")
    deadline = time.monotonic() + 120
    while not (folds.is_dir() and len(list(folds.iterdir())) >= 2) and time.monotonic() < deadline:
        time.sleep(0.05)  # no clock decides: both workers are in a fold once both fold directories exist
    workers = children.read_text().split()
    os.kill(int(workers[0]), signal.SIGTERM)
    command.join(timeout=300)
    if command.is_alive():  # it waits forever: stop it and its workers, then fail
        for pid in [command.pid, *workers]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        command.join()
    err = Path("err.log").read_text()
    assert command.exitcode == 5, err[-2000:]
    assert err.strip().splitlines()[-1].startswith("trainlab: error: ") and "Traceback" not in err


def test_workers_share_the_cpu_or_own_a_gpu_each():
    from trainlab.workers import shares

    assert shares(2, gpus=0, cpus=2) == [{"threads": 1, "gpu": None}] * 2
    assert shares(3, gpus=2, cpus=16) == [{"threads": 5, "gpu": 0}, {"threads": 5, "gpu": 1}, {"threads": 5, "gpu": 0}]
    assert shares(4, gpus=0, cpus=2)[0]["threads"] == 1
