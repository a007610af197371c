"""The data path every data source shares: split, fit scaling on the training split only, serve batches."""

import dataclasses
from abc import abstractmethod
from typing import get_args

import lightning.pytorch as pl
import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from trainlab import rules
from trainlab.data.batching import PackedBatches, PackedEvaluation, TensorBatches
from trainlab.data.folds import Fold, fold_split
from trainlab.errors import UserError, require
from trainlab.rules import Split
from trainlab.tasks import TASKS


def standardise_in_place(X: np.ndarray, scaler: StandardScaler, rows_per_chunk: int = 65536) -> None:
    """X = scaler.transform(X), computed in float64 and stored back into float32 X, a chunk at a time.

    The same arithmetic as the chapter's `scaler.transform` (float64, then cast to float32), without a
    float64 copy of the whole dataset: large tables stay within a small multiple of their own size."""
    for start in range(0, len(X), rows_per_chunk):
        chunk = X[start : start + rows_per_chunk]
        chunk[:] = (chunk.astype(np.float64) - scaler.mean_) / scaler.scale_


def fit_scaler(X: np.ndarray, rows: np.ndarray, rows_per_chunk: int = 65536) -> StandardScaler:
    """StandardScaler fitted on X[rows] a chunk at a time (one chunk: exactly `fit`), so that large tables
    need no copy of their training rows, nor scikit-learn's float64 temporaries of it."""
    scaler = StandardScaler()
    for start in range(0, len(rows), rows_per_chunk):
        scaler.partial_fit(X[rows[start : start + rows_per_chunk]])
    return scaler


class TabularDataModule(pl.LightningDataModule):
    """Base class: subclasses say what the data is (`load_arrays`, `task`, `num_features`, `num_classes`).

    Splits: `test_fraction` of all samples is held out first, then `val_fraction` of all samples is
    carved from the rest; the remainder trains. Both stratified by class for classification when
    `stratify` is true. With `val_fraction` 0 there is no separate validation split and the test split
    is evaluated every epoch instead, as the chapter does (it then also picks the "best" checkpoint,
    so report the last one). A StandardScaler is fitted on the training split only.

    Cross-validation (`folds`, set by `trainlab cv`): the held-out fold is the test split and
    `test_fraction` is not used; `val_fraction` is then the share of the training folds carved out for
    validation (early stopping and checkpoints), so the held-out fold never steers training. Several
    folds nest: each keeps the previous one's training part and cuts it again (nested CV).
    `folds_exclude_test` first sets the usual test split aside (the same samples as without folds) and
    folds the rest, so that cross-validation inside tuning never sees the test split.

    Packs (`member_folds`, set by `trainlab cv`): one slot per fold, each exactly the data module that
    fold's own run would build (`folds` + that fold: its splits, its scaler), served side by side so that
    one fit trains every fold (see trainlab.models.packed). The model says which members train on which
    slot with which seed (`serve_members`).

    Batches are sliced straight out of in-memory tensors (see batching.py). `batches_per_step`
    mini-batches go to each training_step call, which takes one optimizer step per mini-batch: fewer
    Lightning steps, the same training (1 gives one mini-batch per Lightning step; under DDP it is always
    1). `on_device` keeps the whole dataset on the accelerator (when it fits) instead of copying each
    batch there. Evaluation and prediction go in slices of `eval_batch_size` samples: without gradients
    a large slice costs little memory, and each batch costs Lightning and the metrics a fixed overhead.
    """

    key = "data.init_args"  # where this module's arguments live in a config, for error messages

    def __init__(
        self,
        batch_size: int = 32,
        eval_batch_size: int = 65536,
        val_fraction: float = 0.2,
        test_fraction: float = 0.2,
        stratify: bool = True,
        scale: bool = True,
        predict_split: Split = "test",
        seed: int = 42,
        batches_per_step: int = 32,
        on_device: bool = False,
        folds: list[Fold] | None = None,
        folds_exclude_test: bool = False,
        member_folds: list[Fold] | None = None,
    ):
        super().__init__()
        k = self.key
        sizes = {"batch_size": batch_size, "eval_batch_size": eval_batch_size}
        rules.check(k, rules.DATA, {**sizes, "val_fraction": val_fraction, "test_fraction": test_fraction})
        rules.check_joint(k, rules.SPLITS, {"val_fraction": val_fraction, "test_fraction": test_fraction})
        splits = get_args(Split)
        require(predict_split in splits, f"{k}.predict_split", predict_split, f"one of {', '.join(splits)}")
        rules.check(k, rules.DATA, {"batches_per_step": batches_per_step, "seed": seed})
        require(
            not (predict_split == "val" and val_fraction == 0),
            f"{k}.predict_split",
            predict_split,
            "train or test: with val_fraction 0 there is no validation split",
        )
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.stratify = stratify
        self.scale = scale
        self.predict_split = predict_split
        self.seed = seed
        self.batches_per_step = batches_per_step
        self.on_device = on_device
        self.folds = [Fold(**f) if isinstance(f, dict) else f for f in folds or []]
        self.folds_exclude_test = folds_exclude_test
        self.member_folds = [Fold(**f) if isinstance(f, dict) else f for f in member_folds or []]
        for fold in self.folds + self.member_folds:
            require(fold.k >= 2, f"{k}.folds", fold, "k >= 2 folds")
            require(0 <= fold.index < fold.k, f"{k}.folds", fold, f"index from 0 to k - 1 = {fold.k - 1}")
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.split_indices: dict[str, np.ndarray] = {}  # each split's rows in the full dataset
        self.scaler: StandardScaler | None = None
        self.slot_data: list[TabularDataModule] = [self]  # a pack's slots: one data module per fold
        self.members: list[tuple[int, int]] = [(0, 0)]  # per model member: (slot, seed); see serve_members

    def keep_hparams_plain(self) -> None:
        """Checkpoints hold plain values only (weights_only loading): folds as dicts, not Fold objects."""
        for key in ("folds", "member_folds"):
            if key in self.hparams and self.hparams[key] is not None:
                self.hparams[key] = [dataclasses.asdict(f) for f in getattr(self, key)]

    # --- packs ---------------------------------------------------------------------------------
    @property
    def num_slots(self) -> int:
        """How many data slots a pack trains on: one per member fold, else 1."""
        return max(len(self.member_folds), 1)

    def serve_members(self, members: list[tuple[int, int]]) -> None:
        """The model's members, as (slot, seed): whose rows each trains on and its shuffling seed."""
        self.members = list(members)

    def init_kwargs(self) -> dict:
        """The arguments that rebuild this data module (a pack's slots are built from them)."""
        return {k: v for k, v in self.hparams.items() if not k.startswith("_")}  # (LightningCLI adds _class_path)

    def adopt_source(self, parent: "TabularDataModule") -> None:
        """Take what `parent` already read (a slot of a pack need not read a file again)."""

    def _slot(self, fold: Fold) -> "TabularDataModule":
        kwargs = self.init_kwargs()
        kwargs.update(folds=[dataclasses.asdict(f) for f in [*self.folds, fold]], member_folds=None)
        slot = type(self)(**kwargs)
        slot.adopt_source(self)
        return slot

    def slot_feature_counts(self) -> list[int]:
        """Each slot's number of input features (a file's one-hot width can differ from fold to fold)."""
        self.setup()
        return [slot.num_features for slot in self.slot_data]

    def shape(self) -> dict:
        """What the model is built from: input_dim, task, num_classes, slots. Generated data knows them from its
        arguments; a file knows them once it is read (FileDataModule reads it here: properties never read)."""
        return {
            "input_dim": self.num_features,
            "task": self.task,
            "num_classes": self.num_classes,
            "slots": self.num_slots,
        }

    # --- what a subclass provides -------------------------------------------------------------
    @property
    @abstractmethod
    def task(self) -> str: ...

    @property
    @abstractmethod
    def num_features(self) -> int: ...

    @property
    @abstractmethod
    def num_classes(self) -> int | None:
        """Number of classes for classification, None for regression."""

    @abstractmethod
    def load_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """All samples: features (N, num_features) and targets (N,)."""

    # --- the shared path ----------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.member_folds:
            if len(self.slot_data) == 1:  # once
                self.slot_data = [self._slot(fold) for fold in self.member_folds]
            for slot in self.slot_data:
                slot.setup(stage)
            return
        if self.splits:  # idempotent: the data is made once per module
            return
        raw, y = self.load_arrays()
        assert self.task in TASKS
        indices = np.arange(len(y))
        train_idx, val_idx, test_idx = self._split(indices, y)
        self.split_indices = {"train": train_idx, "val": val_idx, "test": test_idx}
        self._check_split_sizes()

        X = self.encode_features(raw, train_idx)
        del raw  # a file's table: only the matrix is kept
        if self.scale and self.scaler is None:  # (a checkpoint's scaler, when restored, is kept)
            self.scaler = fit_scaler(X, train_idx)  # training split only
            self.scaler.mean_[self.unscaled_columns] = 0.0
            self.scaler.scale_[self.unscaled_columns] = 1.0
        self.apply_scaler(X)
        y_tensor = torch.from_numpy(y.astype(np.int64 if self.task == "multiclass" else np.float32))
        X_tensor = torch.from_numpy(X)
        for name, idx in self.split_indices.items():
            rows = torch.from_numpy(idx)
            self.splits[name] = (X_tensor[rows], y_tensor[rows])

    def encode_features(self, raw, train_idx: np.ndarray) -> np.ndarray:
        """The float32 feature matrix of all samples; a subclass may fit encoders on `train_idx` here."""
        return raw.astype(np.float32, copy=False)

    @property
    def unscaled_columns(self) -> list[int]:
        """Columns the scaler leaves alone (one-hot columns, for instance)."""
        return []

    def apply_scaler(self, X: np.ndarray) -> None:
        if self.scaler is not None:
            standardise_in_place(X, self.scaler)

    def labels(self, classes) -> list:
        """Class indices as the data's own labels (the same numbers here; a file's text labels there)."""
        return list(classes)

    # --- checkpoints carry the preprocessing, so that predictions on new data match training -----
    def state_dict(self) -> dict:
        if self.member_folds:
            return {"slots": [slot.state_dict() for slot in self.slot_data]}
        if self.scaler is None:
            return {}
        return {"scaler_mean": self.scaler.mean_.tolist(), "scaler_scale": self.scaler.scale_.tolist()}

    def load_state_dict(self, state: dict) -> None:
        if "slots" in state:
            self.setup()
            for slot, saved in zip(self.slot_data, state["slots"], strict=True):
                slot.load_state_dict(saved)
            return
        if "scaler_mean" not in state:
            return
        saved = (np.asarray(state["scaler_mean"]), np.asarray(state["scaler_scale"]))
        current = (self.scaler.mean_, self.scaler.scale_) if self.scaler is not None else None
        if current is None or not all(np.array_equal(a, b) for a, b in zip(saved, current, strict=True)):
            self.scaler = StandardScaler()
            self.scaler.mean_, self.scaler.scale_ = saved
            self.scaler.var_, self.scaler.n_features_in_ = saved[1] ** 2, len(saved[0])
            self.splits = {}
            self.setup()  # again, scaled with the checkpoint's statistics

    def _split(self, indices: np.ndarray, y: np.ndarray):
        def stratify(idx):
            return y[idx] if self.stratify and self.task != "regression" else None

        if self.folds:
            if self.folds_exclude_test:
                indices = self._split_off_test(indices, stratify)[0]
            for fold in self.folds:
                indices, test = fold_split(indices, y, self.task, fold, f"{self.key}.folds")
            rest, val_share = indices, self.val_fraction  # of the training folds
        try:
            if not self.folds:
                rest, test = self._split_off_test(indices, stratify)
                val_share = self.val_fraction / (1 - self.test_fraction)
            if self.val_fraction == 0:
                return rest, np.array([], dtype=indices.dtype), test
            train, val = train_test_split(rest, test_size=val_share, random_state=self.seed, stratify=stratify(rest))
        except ValueError as error:  # a split too small for the classes, or empty
            raise UserError(
                f"{self.key}.val_fraction, test_fraction: {len(indices)} samples cannot be split "
                f"{1 - self.val_fraction - self.test_fraction:.2f}/{self.val_fraction}/{self.test_fraction} "
                f"(train/val/test){' with every class in every split' if stratify(indices) is not None else ''}: "
                f"{error}"
            ) from None
        return train, val, test

    def _check_split_sizes(self) -> None:
        """A split of one sample cannot be scored (R2, AUROC need two); an empty one is not evaluated at all."""
        sizes = {name: len(idx) for name, idx in self.split_indices.items()}
        small = [name for name, size in sizes.items() if size == 1]
        if small:
            shown = "/".join(str(sizes[n]) for n in ("train", "val", "test"))
            raise UserError(
                f"{self.key}: {sum(sizes.values())} samples give train/val/test splits of {shown}; the {small[0]} "
                "split needs at least 2 samples: more data, or other val_fraction/test_fraction (or fewer folds)"
            )

    def _split_off_test(self, indices: np.ndarray, stratify):
        """(the rest, the test split): test_fraction of all samples, held out first."""
        return train_test_split(
            indices, test_size=self.test_fraction, random_state=self.seed, stratify=stratify(indices)
        )

    @property
    def validation_split(self) -> Split:
        """The split evaluated every epoch: "val", or "test" when there is no validation split."""
        return "val" if self.val_fraction > 0 else "test"

    def split_size(self, name: Split) -> int:
        return len(self.split_indices[name])

    def _device(self) -> torch.device:
        trainer = self.trainer
        return trainer.strategy.root_device if trainer is not None else torch.device("cpu")

    def _tensors(self, name: Split) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.splits:  # dropped by load_state_dict, to be rebuilt with a checkpoint's statistics
            self.setup()
        X, y = self.splits[name]
        device = self._device()
        if self.on_device and X.device != device:
            X, y = self.splits[name] = X.to(device), y.to(device)
        return X, y

    def _pin(self) -> bool:
        return self._device().type == "cuda" and not self.on_device

    def train_dataloader(self):
        trainer = self.trainer
        rank, world_size = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        return PackedBatches(
            [slot._tensors("train") for slot in self.slot_data],
            self.members,
            batch_size=self.batch_size,
            seed=self.seed,
            group=self.batches_per_step if world_size == 1 else 1,
            rank=rank,
            world_size=world_size,
            pin_memory=self._pin(),
        )

    def _eval_loader(self, name: Split):
        if self.member_folds:
            return PackedEvaluation([slot._tensors(name) for slot in self.slot_data], self.eval_batch_size)
        # Every rank evaluates the whole split: metrics and predictions then need no resharding.
        return TensorBatches(*self._tensors(name), batch_size=self.eval_batch_size, pin_memory=self._pin())

    def val_dataloader(self):
        return self._eval_loader(self.validation_split)

    def test_dataloader(self):
        return self._eval_loader("test")

    def predict_tensors(self):
        """(features, targets, each sample's row in the whole dataset) of what `predict` predicts."""
        X, y = self._tensors(self.predict_split)
        return X, y, self.split_indices[self.predict_split]

    def predict_dataloader(self):
        # Batches carry each sample's position, so predictions can be written in order.
        X, y, self.predict_rows = self.predict_tensors()
        index = torch.arange(len(y), device=y.device)
        return TensorBatches(X, y, index, batch_size=self.eval_batch_size, pin_memory=self._pin())
