"""Fast in-memory batches: slice mini-batches out of tensors, no DataLoader, no per-sample collation.

Training: each epoch, one permutation seeded by (seed, epoch) (the same on every rank), split into
disjoint shards when several processes train (DDP), gathered once, then sliced into mini-batches.
Mini-batches are handed to the module `group` at a time: one Lightning step takes `group` optimizer
steps (see MLPModule.training_step), so Lightning's per-step overhead is paid once per group.
Evaluation: the split in order, in slices.
"""

from collections.abc import Iterator

import numpy as np
import torch


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled order of epoch `epoch`: a function of (seed, epoch) only, so every rank, and a resumed
    run, draws the same one."""
    state = np.random.SeedSequence([seed, epoch]).generate_state(2, dtype=np.uint32)
    generator = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
    return torch.randperm(n, generator=generator)


def shard(order: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Rank `rank`'s part of `order`: every world_size-th sample. Like DistributedSampler, the order is
    padded by wrapping around so that every rank takes the same number of steps."""
    if world_size == 1:
        return order
    padded = -(-len(order) // world_size) * world_size
    order = torch.cat([order, order[: padded - len(order)]])
    return order[rank::world_size]


class TensorBatches:
    """An iterable of batches over equal-length tensors.

    Args:
        tensors: features, targets (and optionally sample indices), all of the same length.
        batch_size: samples per mini-batch (the last may be smaller).
        shuffle: draw a new seeded permutation each epoch (training).
        seed: the shuffling seed.
        group: None yields each mini-batch as a tuple of tensors; an integer yields lists of up to
            `group` such tuples (training). Training batches never end with a lone sample (batch norm
            cannot train on one): it joins the batch before it.
        rank, world_size: this process's shard when several processes train.
        pin_memory: pin each epoch's gathered tensors, for asynchronous copies to a GPU.
    """

    def __init__(
        self,
        *tensors: torch.Tensor,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        group: int | None = None,
        rank: int = 0,
        world_size: int = 1,
        pin_memory: bool = False,
    ):
        assert tensors and all(len(t) == len(tensors[0]) for t in tensors)
        self.tensors = tensors
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.group = group
        self.rank = rank
        self.world_size = world_size
        self.pin_memory = pin_memory
        self.epoch = 0
        if pin_memory and not shuffle and world_size == 1:  # served as they are: pin them once
            self.tensors = tuple(t.pin_memory() for t in tensors)

    batch_sampler = None  # Lightning inspects a loader's samplers; we have none of torch's

    # Lightning calls `loader.sampler.set_epoch(epoch)` before every epoch; we are our own sampler.
    @property
    def sampler(self) -> "TensorBatches":
        return self

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def num_samples(self) -> int:
        """Samples this rank sees per epoch."""
        return -(-len(self.tensors[0]) // self.world_size)

    def _starts(self, n: int) -> list[int]:
        starts = list(range(0, n, self.batch_size))
        if self.group is not None and len(starts) > 1 and n - starts[-1] == 1:
            starts.pop()  # a lone last sample joins the batch before it
        return starts

    def num_batches(self) -> int:
        return len(self._starts(self.num_samples()))

    def __len__(self) -> int:
        batches = self.num_batches()
        return batches if self.group is None else -(-batches // self.group)

    def _epoch_tensors(self) -> tuple[torch.Tensor, ...]:
        n = len(self.tensors[0])
        if not self.shuffle and self.world_size == 1:
            return self.tensors
        order = epoch_permutation(n, self.seed, self.epoch) if self.shuffle else torch.arange(n)
        order = shard(order, self.rank, self.world_size).to(self.tensors[0].device)
        gathered = tuple(t[order] for t in self.tensors)  # one gather per epoch; batches below are views
        return tuple(t.pin_memory() for t in gathered) if self.pin_memory else gathered

    def __iter__(self) -> Iterator:
        tensors = self._epoch_tensors()
        starts = self._starts(len(tensors[0]))
        bounds = zip(starts, [*starts[1:], len(tensors[0])], strict=True)
        batches = (tuple(t[start:stop] for t in tensors) for start, stop in bounds)
        if self.group is None:
            yield from batches
            return
        group: list = []
        for batch in batches:
            group.append(batch)
            if len(group) == self.group:
                yield group
                group = []
        if group:
            yield group
