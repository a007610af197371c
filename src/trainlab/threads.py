"""How many CPU threads torch uses for a fit.

A small MLP's step is many tiny operations: torch splits each across its intra-op threads, and the threads'
wake-ups then cost more than the arithmetic. On a quiet machine one and two threads train the chapter's
model equally fast; on a busy one (other processes, tuning workers, a test suite) two threads were measured
2 to 12x slower than one, and a whole fit could stall for minutes. So a fit whose step is small runs on one
thread; a large one keeps torch's setting (which --workers may already have divided)."""

import lightning.pytorch as pl
import torch

# Multiply-adds per optimizer step of one member (rows x its parameters) below which a fit trains on one thread.
SMALL_STEP = 4_000_000


def step_work(module: torch.nn.Module, batch_size: int) -> int:
    """A member's multiply-adds per step: a pack's members are many small operations batched, and on the CPU
    they split across threads no better than one member's (measured with 18 members of configs/default.yaml,
    10 epochs: 1.5 s on one thread, 11.6 s on two on a busy machine)."""
    members = getattr(module, "members", 1)
    return batch_size * sum(p.numel() for p in module.parameters()) // max(members, 1)


class CpuThreads(pl.Callback):
    """For the Trainer's lifetime on the CPU: `threads` torch threads, or with None one thread for a small step
    (see SMALL_STEP) and torch's own setting otherwise; the previous setting comes back at teardown."""

    def __init__(self, threads: int | None = None):
        self.threads = threads
        self._before: int | None = None

    def setup(self, trainer, pl_module, stage):
        if trainer.strategy.root_device.type != "cpu":
            return
        threads = self.threads
        batch_size = getattr(trainer.datamodule, "batch_size", 1) if trainer.datamodule is not None else 1
        if threads is None and step_work(pl_module, batch_size) < SMALL_STEP:
            threads = 1
        if threads is not None and threads != torch.get_num_threads():
            self._before = torch.get_num_threads()
            torch.set_num_threads(threads)

    def teardown(self, trainer, pl_module, stage):
        if self._before is not None:
            torch.set_num_threads(self._before)
            self._before = None
