"""A callback for the DDP test: each rank records the training rows it was served, per epoch."""

from pathlib import Path

import lightning.pytorch as pl
import torch


class ShardRecorder(pl.Callback):
    def __init__(self, out: str = "shards"):
        self.out = Path(out)
        self.rows: list[torch.Tensor] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.rows.extend(x[0].detach().cpu() for x, _, _ in batch)  # one member: x is [1, B, F]

    def on_train_epoch_end(self, trainer, pl_module):
        self.out.mkdir(exist_ok=True)
        torch.save(torch.cat(self.rows), self.out / f"rank{trainer.global_rank}_epoch{trainer.current_epoch}.pt")
        self.rows = []
