"""Helpers for the tests (their fixtures are in conftest.py): run `trainlab` in this process or in a fork of
it, the shipped configs, run directories, and what runs leave behind."""

import hashlib
import json
import os
import sys
from pathlib import Path

from trainlab.cli import main

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
# Arguments for a quiet run: no progress bar, model summary or report (QUIET); the same for 3 epochs (SHORT);
# no progress bar or model summary, the report kept (LEAN).
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false", "--run.report", "false"]
SHORT = ["--trainer.max_epochs", "3", *QUIET]
LEAN = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


def run_cli(*args: str) -> int:
    """Run `trainlab ARGS` in this process; return its exit code (0 when it returns normally)."""
    try:
        main([str(a) for a in args])
    except SystemExit as stop:
        return stop.code or 0
    return 0


def config(name: str) -> str:
    return str(CONFIGS / f"{name}.yaml")


def run_dirs(name: str) -> list[Path]:
    return sorted(Path("lightning_logs", name).glob("version_*"), key=lambda p: int(p.name.split("_")[1]))


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def fork_trainlab(*args: str, stdout: str | int = "out.log", stderr: str | None = "err.log", cwd: str | None = None):
    """`trainlab ARGS` in a process of its own (to kill, signal or run beside another): a fork of this one, which
    starts at once where a new interpreter spends ~5 s importing Lightning (test_cli runs the console script
    itself). Its output goes to files in `cwd` (stderr None: with stdout) or to a pipe's file descriptor; its
    exit code is the command's. Wait for it with `exit_code`, so that no fork outlives its test."""
    return in_fork(_forked, args, stdout, stderr, cwd)


def in_fork(target, *args):
    """target(*args) in a fork of this process, started."""
    import multiprocessing

    process = multiprocessing.get_context("fork").Process(target=target, args=args)
    process.start()
    return process


def _forked(args, stdout, stderr, cwd) -> None:
    redirect_output(stdout, stderr, cwd)
    sys.exit(run_cli(*args))


def redirect_output(stdout: str | int, stderr: str | int | None, cwd: str | None = None) -> None:
    """In a fork: its output to files (in `cwd`) or file descriptors (stderr None: with stdout), and torch
    ready to run there."""
    import logging

    import torch

    if cwd is not None:
        os.chdir(cwd)
    for fd, target in ((1, stdout), (2, stdout if stderr is None else stderr)):
        os.dup2(target if isinstance(target, int) else os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        for handler in getattr(logger, "handlers", []):  # Lightning's holds the stderr pytest captured
            if type(handler) is logging.StreamHandler:
                handler.setStream(sys.stderr)
    torch.set_num_threads(1)  # GNU OpenMP hangs in a fork whose parent used its thread pool


def exit_code(process, timeout: float = 300) -> int | None:
    """The process's exit code once it ends (minus the signal's number when a signal ended it); None when it was
    still running after `timeout` seconds and was killed."""
    process.join(timeout)
    if process.is_alive():
        process.kill()
        process.join()
        return None
    return process.exitcode


def scalars(run: Path) -> dict[str, list[float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run)).Reload()
    return {tag: [e.value for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


class Forked:
    """`trainlab ARGS` in a process of its own to kill or signal (see fork_trainlab), its stdout and stderr one
    pipe, read line by line."""

    def __init__(self, *args: str):
        read, write = os.pipe()
        self.process = fork_trainlab(*args, stdout=write, stderr=None)
        os.close(write)
        self.stdout = open(read)  # noqa: SIM115 (closed by wait)
        self.pid = self.process.pid

    def send_signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def wait(self) -> int:
        """The exit code; minus the signal's number when a signal ended it (as subprocess.Popen's)."""
        code = exit_code(self.process, timeout=120)
        self.stdout.close()
        return code
