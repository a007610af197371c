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


def epoch_permutation(n: int, seed: int | list[int], epoch: int) -> torch.Tensor:
    """The shuffled order of epoch `epoch`: a function of (seed, epoch) only, so every rank, and a resumed
    run, draws the same one. `seed` may be several integers (the data's seed and a member's)."""
    seeds = list(seed) if isinstance(seed, list | tuple) else [seed]
    state = np.random.SeedSequence([*seeds, epoch]).generate_state(2, dtype=np.uint32)
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


def batch_bounds(n: int, batch_size: int, training: bool) -> list[tuple[int, int]]:
    """(start, stop) of each mini-batch of n samples. Training batches never end with a lone sample (batch
    norm cannot train on one): it joins the batch before it."""
    starts = list(range(0, n, batch_size))
    if training and len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    return list(zip(starts, [*starts[1:], n], strict=True))


def grouped(batches: Iterator, size: int) -> Iterator[list]:
    """The batches in lists of up to `size` (one Lightning step each)."""
    group: list = []
    for batch in batches:
        group.append(batch)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


def pad_stack(tensors: list[torch.Tensor]) -> torch.Tensor:
    """The tensors stacked on a new first dimension, each padded with zeros to the longest."""
    longest = max(len(t) for t in tensors)
    return torch.stack([torch.cat([t, t.new_zeros((longest - len(t), *t.shape[1:]))]) for t in tensors])


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

    def num_batches(self) -> int:
        return len(batch_bounds(self.num_samples(), self.batch_size, self.group is not None))

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
        bounds = batch_bounds(len(tensors[0]), self.batch_size, self.group is not None)
        batches = (tuple(t[start:stop] for t in tensors) for start, stop in bounds)
        yield from batches if self.group is None else grouped(batches, self.group)


class PackedBatches:
    """Training batches for the K members of a pack, each step's as tensors [K, B, ...].

    Member m trains on the rows of its slot (a fold, or the whole training split) in its own order: each
    epoch a permutation seeded by (seed, member seed m, epoch), sharded when several processes train. Its
    mini-batches are the ones it would get alone (the same `TensorBatches` boundaries: a lone last sample
    joins the batch before it). Where members' batches differ in size (slots of different lengths, or a
    member whose epoch has ended), the step carries `counts` [K], the real rows of each member's batch,
    which lead it; otherwise counts is None. Steps go to the module `group` at a time, as lists of
    (X, y, counts).

    Args:
        slots: per slot, its training (features, targets).
        members: per member, (slot, seed).
    """

    def __init__(
        self,
        slots: list[tuple[torch.Tensor, torch.Tensor]],
        members: list[tuple[int, int]],
        batch_size: int,
        seed: int = 0,
        group: int = 1,
        rank: int = 0,
        world_size: int = 1,
        pin_memory: bool = False,
    ):
        self.slots, self.members = slots, members
        self.batch_size, self.seed, self.group = batch_size, seed, group
        self.rank, self.world_size, self.pin_memory = rank, world_size, pin_memory
        self.epoch = 0
        # each member's batch boundaries: those of its shard of its slot, as it would train alone
        self._bounds = [
            batch_bounds(-(-len(slots[slot][1]) // world_size), batch_size, training=True) for slot, _ in members
        ]

    batch_sampler = None

    @property
    def sampler(self) -> "PackedBatches":
        return self

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def num_steps(self) -> int:
        return max(len(bounds) for bounds in self._bounds)

    def __len__(self) -> int:
        return -(-self.num_steps() // self.group)

    def member_order(self, member: int) -> torch.Tensor:
        """Member `member`'s rows of its slot this epoch, in the order it trains on them."""
        slot, member_seed = self.members[member]
        n = len(self.slots[slot][0])
        order = epoch_permutation(n, [self.seed, member_seed], self.epoch)
        return shard(order, self.rank, self.world_size)

    def _epoch_tensors(self):
        """Every member's rows in its order this epoch, padded to the longest: ([K, L, ...], [K, L])."""
        device = self.slots[0][0].device
        index = pad_stack([self.member_order(m) for m in range(len(self.members))]).to(device)
        if len(self.slots) == 1:  # (no padded copy of the one slot's data)
            X, y = self.slots[0]
            gathered = X[index], y[index]
        else:
            X, y = pad_stack([x for x, _ in self.slots]), pad_stack([t for _, t in self.slots])
            slot = torch.tensor([s for s, _ in self.members], device=device)[:, None]
            gathered = X[slot, index], y[slot, index]
        return tuple(t.pin_memory() for t in gathered) if self.pin_memory else gathered

    def __iter__(self) -> Iterator:
        yield from grouped(self._steps(*self._epoch_tensors()), self.group)

    def _steps(self, X: torch.Tensor, y: torch.Tensor) -> Iterator:
        for step in range(self.num_steps()):
            spans = [b[step] if step < len(b) else None for b in self._bounds]
            if all(span == spans[0] for span in spans):  # the common case: views, no copy
                start, stop = spans[0]  # (narrow: cheaper than [:, start:stop] indexing, per step)
                batch = (X.narrow(1, start, stop - start), y.narrow(1, start, stop - start), None)
            else:
                size = max(stop - start for start, stop in (s for s in spans if s is not None))
                starts = torch.tensor([s[0] if s else 0 for s in spans], device=X.device)
                counts = torch.tensor([s[1] - s[0] if s else 0 for s in spans], device=X.device)
                rows = (starts[:, None] + torch.arange(size, device=X.device)).clamp(max=X.shape[1] - 1)
                member = torch.arange(len(spans), device=X.device)[:, None]
                batch = (X[member, rows], y[member, rows], counts)
            yield batch


class PackedEvaluation:
    """Evaluation batches of a pack's slots: each slot's split, in order, in slices of `batch_size` rows
    taken from every slot at once: (X [S, B, ...], y [S, B], counts [S])."""

    def __init__(self, slots: list[tuple[torch.Tensor, torch.Tensor]], batch_size: int):
        self.sizes = torch.tensor([len(t) for _, t in slots])
        self.X, self.y = pad_stack([x for x, _ in slots]), pad_stack([t for _, t in slots])
        self.batch_size = batch_size

    batch_sampler = None
    sampler = None

    def __len__(self) -> int:
        return -(-self.X.shape[1] // self.batch_size)

    def __iter__(self) -> Iterator:
        for start in range(0, self.X.shape[1], self.batch_size):
            stop = start + self.batch_size
            counts = (self.sizes - start).clamp(min=0, max=self.batch_size)
            yield self.X[:, start:stop], self.y[:, start:stop], counts.to(self.X.device)
