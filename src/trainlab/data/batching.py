"""Fast in-memory batches: index whole batches out of tensors instead of collating one sample at a time.

A BatchSampler passed as `sampler` with `batch_size=None` makes the DataLoader call
`dataset[list_of_indices]` once per batch. Shuffling uses a generator seeded by the data module, so
the order depends only on the seed and the epoch.
"""

import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler


class TensorBatches(Dataset):
    """Tensors of equal length; indexing with a list of indices returns whole batches."""

    def __init__(self, *tensors: torch.Tensor):
        assert tensors and all(len(t) == len(tensors[0]) for t in tensors)
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, index):
        index = torch.as_tensor(index)
        return tuple(t[index] for t in self.tensors)


def batch_loader(*tensors: torch.Tensor, batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
    dataset = TensorBatches(*tensors)
    if shuffle:
        order = RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
    else:
        order = SequentialSampler(dataset)
    return DataLoader(dataset, sampler=BatchSampler(order, batch_size, drop_last=False), batch_size=None)
