"""Killed fits resume exactly; Ctrl-C stops cleanly with a checkpoint. Real processes, real signals."""

import os
import signal

import pytest
import torch

from conftest import QUIET, config, exit_code, fork_trainlab, read_json, run_cli, run_dirs

# dropout consumes random numbers, so an exact resume also needs the random stream restored
ARGS = ["--trainer.max_epochs", "60", "--run.summary_every", "1", "--model.init_args.dropout", "0.2"]
ARGS += ["--trainer.enable_progress_bar", "false"]


class Fit:
    """`trainlab fit` in a process of its own to kill or signal: a fork of this one, which starts at once (a new
    interpreter spends ~5 s importing Lightning; tests/test_cli.py runs the console script itself). Its stdout
    and stderr are one pipe, read line by line."""

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


def start_fit(*extra: str) -> Fit:
    return Fit("fit", "-c", config("seed"), *ARGS, *extra)


def wait_for_epoch(process: Fit, epoch: int) -> None:
    for line in process.stdout:
        if line.startswith(f"Epoch [{epoch}/60]"):
            return
    raise AssertionError(f"the fit ended before epoch {epoch} (exit {process.wait()})")


@pytest.mark.slow
def test_a_killed_fit_resumes_and_ends_like_an_uninterrupted_one():
    # 60 epochs of ~20 ms: the kill lands long before the end. The reference fit writes no report (plots cost
    # ~1 s and are compared nowhere); the resumed fit does, as a resumed fit would.
    assert run_cli("fit", "-c", config("seed"), *ARGS, "--run.report", "false") == 0
    (uninterrupted,) = run_dirs("seed")

    process = start_fit()
    wait_for_epoch(process, 8)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    killed = run_dirs("seed")[-1]
    last = killed / "checkpoints" / "last.ckpt"
    saved_epoch = torch.load(last, weights_only=True)["epoch"]  # 0-based: epochs 1..saved_epoch+1 are done
    # last.ckpt is written at most once a second (run.last_checkpoint_every): some epoch before the kill
    assert 0 <= saved_epoch < 8
    assert not (killed / "metrics.json").exists()

    assert run_cli("fit", "-c", config("seed"), *ARGS, "--ckpt_path", last) == 0
    resumed = run_dirs("seed")[-1]
    assert read_json(resumed / "metrics.json") == read_json(uninterrupted / "metrics.json")
    history = read_json(resumed / "diagnosis.json")["history"]
    assert len(history["train_loss"]) == 60  # the doctor's history came back with the checkpoint...
    assert history == read_json(uninterrupted / "diagnosis.json")["history"]  # ...and continued identically
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trained = EventAccumulator(str(resumed)).Reload().Scalars("train/loss")
    assert len(trained) == 60 - (saved_epoch + 1)  # only the remaining epochs were trained


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])  # not slow: the fork starts at once
def test_ctrl_c_or_sigterm_stops_cleanly_after_saving_a_checkpoint(signum):
    """Lightning alone turns SIGTERM into a clean exit 0 with nothing saved; trainlab stops with 128 + the
    signal's number, after saving interrupted.ckpt."""
    process = start_fit()
    wait_for_epoch(process, 5)
    process.send_signal(signum)
    output = process.stdout.read()
    assert process.wait() == 128 + signum
    assert "Traceback" not in output and f"trainlab: stopped by {signal.Signals(signum).name}" in output
    (run,) = run_dirs("seed")
    interrupted = run / "checkpoints" / "interrupted.ckpt"
    assert f"trainlab: interrupted: saved {interrupted}; resume exactly with --ckpt_path" in output
    checkpoint = torch.load(interrupted, weights_only=True)
    assert checkpoint["epoch"] >= 4 and all(torch.isfinite(w).all() for w in checkpoint["state_dict"].values())
    assert not (run / "metrics.json").exists()  # no test after an interrupted fit


def test_resuming_needs_a_checkpoint_file(capsys):
    assert run_cli("fit", "-c", config("seed"), "--ckpt_path", "last", *QUIET) == 2
    assert "--ckpt_path='last': no such file" in capsys.readouterr().err
