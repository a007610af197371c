"""Arrays in memory (what a scikit-learn estimator is given) through the same path as a file: its text
columns one-hot encoded and its gaps imputed by trainlab.data.table's Encoder, then split, scaled and
batched by TabularDataModule, every statistic fitted on the training split only."""

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from trainlab.data.base import TabularDataModule
from trainlab.data.table import Encoder, check_column_type, is_numeric
from trainlab.errors import UserError, require


class ArrayDataModule(TabularDataModule):
    """Features and targets held in memory. There is no test split: the rows not held out for validation
    all train (a scikit-learn estimator is tested by its caller, on data it never saw).

    Args:
        table: the features, a pyarrow Table: numeric columns, and text columns (one-hot encoded).
        y: the targets: class indices 0 .. num_classes - 1, or numbers (regression).
        task: binary, multiclass or regression.
        num_classes: the number of classes (classification), None for regression.
        val_fraction: the share of rows held out for validation (early stopping); 0: none.
        sample_weight: a weight per row (>= 0), or None. Training batches then carry each target with its
            row's weight divided by the training rows' mean weight, as (target, weight) pairs [..., 2], for a
            model that weights its loss by them (trainlab.array_fit.WeightedMLPModule); validation is unweighted.
        The other arguments are TabularDataModule's; its test_fraction is not used.
    """

    def __init__(
        self,
        table,
        y: np.ndarray,
        task: str,
        num_classes: int | None = None,
        val_fraction: float = 0.0,
        sample_weight: np.ndarray | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)  # (its split checks assume a test split; ours, below, assume none)
        require(0 <= val_fraction < 1, f"{self.key}.val_fraction", val_fraction, "a fraction in [0, 1)")
        self.val_fraction = val_fraction
        self.table, self.y, self.sample_weight = table, y, sample_weight
        self._task, self._num_classes = task, num_classes
        self.encoder: Encoder | None = None

    @property
    def task(self) -> str:
        return self._task

    @property
    def num_classes(self) -> int | None:
        return self._num_classes

    @property
    def num_features(self) -> int:
        self.setup()  # the width follows from the categories of the training split
        return self.encoder.width

    def load_arrays(self):
        return self.table, self.y

    def encode_features(self, raw, train_idx: np.ndarray) -> np.ndarray:
        names = raw.column_names
        for name in names:  # dates, lists, bytes ... are refused, as in a file
            check_column_type(raw, name, "X", "input")
        numeric = [n for n in names if is_numeric(raw.column(n))]
        categorical = [n for n in names if n not in numeric]
        self.encoder = Encoder(numeric, categorical, impute=True).fit(raw, train_idx, "X")
        X = self.encoder.transform(raw, "X")
        self.table = None  # the matrix is all we keep
        return X

    def _tensors(self, name):
        X, y = super()._tensors(name)
        if name != "train" or self.sample_weight is None:
            return X, y
        weight = self.sample_weight[self.split_indices["train"]]
        weight = torch.from_numpy(weight / weight.mean()).to(device=y.device, dtype=torch.float32)
        return X, torch.stack([y.to(torch.float32), weight], dim=-1)

    @property
    def unscaled_columns(self) -> list[int]:
        return list(range(len(self.encoder.numeric), self.encoder.width))  # one-hot columns stay 0/1

    def _split(self, indices: np.ndarray, y: np.ndarray):
        """(train, validation, no test)."""
        none = indices[:0]
        if self.val_fraction == 0:
            return indices, none, none
        stratify = y if self.stratify and self.task != "regression" else None
        try:
            train, val = train_test_split(
                indices, test_size=self.val_fraction, random_state=self.seed, stratify=stratify
            )
        except ValueError as error:  # too few rows, or a class too small to appear in both parts
            raise UserError(f"{self.key}.val_fraction={self.val_fraction}: {len(indices)} rows: {error}") from None
        return train, val, none
