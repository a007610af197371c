"""A callback that times the training phase (every epoch's training and validation), for the benchmarks."""

import time

import lightning.pytorch as pl

LAST: dict = {}


class PhaseTimer(pl.Callback):
    def on_train_start(self, trainer, pl_module):
        LAST.clear()
        LAST["start"] = time.perf_counter()

    def on_train_end(self, trainer, pl_module):
        LAST["seconds"] = time.perf_counter() - LAST["start"]
        LAST["optimizer_steps"] = trainer.global_step
