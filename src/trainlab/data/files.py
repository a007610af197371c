"""Your own data: a CSV or Parquet file (FileDataModule) or a dataset that ships with scikit-learn
(BundledDataModule). Both go through the same split, scaling and batches as the synthetic data."""

from pathlib import Path
from typing import Literal

import numpy as np

from trainlab.data.base import TabularDataModule
from trainlab.data.table import (
    Encoder,
    category_values,
    check_column_type,
    check_columns,
    check_finite,
    is_numeric,
    numeric_values,
    read_table,
)
from trainlab.errors import UserError, require

TaskChoice = Literal["auto", "binary", "multiclass", "regression"]


class FileDataModule(TabularDataModule):
    """A table from a CSV or Parquet file: one target column, the rest (or `features`) as inputs.

    Args:
        path: the CSV (.csv, .tsv) or Parquet (.parquet, .pq) file.
        target: the target column.
        features: the input columns; null means every column but the target.
        categorical: columns one-hot encoded; null means the columns that hold text.
        missing: impute (numbers: the training split's median; categories: its most frequent) or error.
        task: auto infers it from the target: text, or at most `max_classes` distinct integers, is
            classification (binary with 2 classes); other numbers are regression.
        max_classes: the most classes a classification target may have.
        predict_path: a file to predict (same columns; the target may be absent): `trainlab predict`
            then writes one row per row of this file, in its order, with the original labels.
        The other arguments are TabularDataModule's. Medians, category levels and the scaler are fitted on
        the training split only; the class labels come from every row (a stratified split needs them
        first). All are saved in checkpoints.
    """

    def __init__(
        self,
        path: str,
        target: str,
        features: list[str] | None = None,
        categorical: list[str] | None = None,
        missing: Literal["impute", "error"] = "impute",
        task: TaskChoice = "auto",
        max_classes: int = 20,
        predict_path: str | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)  # TabularDataModule's arguments (jsonargparse lists them as this class's)
        self.save_hyperparameters(ignore=["task"])  # the model records the task, resolved; Lightning wants one value
        self.keep_hparams_plain()
        k = self.key
        require(missing in ("impute", "error"), f"{k}.missing", missing, "impute or error")
        require(task in TaskChoice.__args__, f"{k}.task", task, "auto, binary, multiclass or regression")
        require(max_classes >= 2, f"{k}.max_classes", max_classes, "an integer >= 2")
        self.path, self.target, self.predict_path = Path(path), target, predict_path
        self.wanted_features, self.wanted_categorical = features, categorical
        self.missing, self.task_choice, self.max_classes = missing, task, max_classes
        self._table = None
        self._targets = None
        self.encoder: Encoder | None = None
        self.class_labels: list | None = None
        self._task: str | None = None

    # --- what the file says -------------------------------------------------------------------
    def table(self):
        if self._table is None:
            self._table = read_table(self.path)
            self._check_columns()
        return self._table

    def _check_columns(self) -> None:
        names = self._table.column_names
        check_columns(names, self.path, self.target, (self.wanted_features or []) + (self.wanted_categorical or []))
        check_column_type(self._table, self.target, self.path, "target")
        for name in self.wanted_features or [n for n in names if n != self.target]:
            check_column_type(self._table, name, self.path, "input")

    def _columns(self) -> tuple[list[str], list[str]]:
        """(numeric, categorical) input columns."""
        table = self.table()
        features = self.wanted_features or [n for n in table.column_names if n != self.target]
        require(self.target not in features, f"{self.key}.features", features, "input columns, not the target")
        require(len(features) > 0, f"{self.key}.features", features, "at least one input column")
        if self.wanted_categorical is not None:
            categorical = [n for n in features if n in self.wanted_categorical]
        else:
            categorical = [n for n in features if not is_numeric(table.column(n)) and not _mostly_numbers(table, n)]
        return [n for n in features if n not in categorical], categorical

    def _fit_targets(self) -> np.ndarray:
        """The targets as class indices (classification) or floats, and the task and class labels."""
        table, where = self.table(), f"{self.path}: target {self.target!r}"
        column = table.column(self.target)
        if column.null_count:
            row = int(np.argmax(np.asarray(column.is_null()))) + 1
            raise UserError(f"{where}, row {row}: missing; every row needs a target")
        text = not is_numeric(column)
        values = category_values(table, self.target) if text else numeric_values(table, self.target, self.path)
        if not text:  # NaN (a Parquet float is not a null), inf, or beyond float32: no loss can be computed
            check_finite(values, self.path, f"target {self.target!r}")
        labels = np.unique(values)
        whole = not text and np.all(np.mod(values, 1) == 0)
        task = self.task_choice
        if task == "auto":
            task = "regression" if not text and not (whole and len(labels) <= self.max_classes) else "classification"
        if task != "regression":
            if len(labels) < 2:
                label = labels[0].item() if hasattr(labels[0], "item") else labels[0]  # 5 or 'yes', not np.int64(5)
                label = int(label) if whole else label
                raise UserError(f"{where} has a single class ({label!r}); classification needs at least 2")
            if task == "binary" and len(labels) != 2:
                raise UserError(f"{where} has {len(labels)} classes; task binary needs exactly 2")
            if len(labels) > self.max_classes:
                raise UserError(
                    f"{where} has {len(labels)} classes; allowed: at most data.init_args.max_classes = "
                    f"{self.max_classes} (or task regression for a numeric target)"
                )
            self._task = "binary" if len(labels) == 2 else "multiclass"
            self.class_labels = [str(v) if text else (int(v) if whole else float(v)) for v in labels]
            return np.searchsorted(labels, values).astype(np.int64)
        if text:
            raise UserError(f"{where} holds text; task regression needs numbers")
        self._task, self.class_labels = "regression", None
        return values

    # --- packs: slots share what was read ------------------------------------------------------
    def init_kwargs(self) -> dict:
        return {**super().init_kwargs(), "task": self.task_choice}

    def adopt_source(self, parent: "FileDataModule") -> None:
        self._table, self._targets = parent.table(), parent.load_arrays()[1]
        self._task, self.class_labels = parent._task, parent.class_labels

    def shape(self) -> dict:
        self.setup()  # the target gives the task and classes; the training split's categories give the width
        return super().shape()

    # --- the TabularDataModule interface: known once the file is read (setup or shape) ---------
    @property
    def num_features(self) -> int:
        if self.member_folds:
            counts = {self._read(slot.num_features) for slot in self.slot_data if slot is not self}
            if len(counts) > 1:
                raise UserError(
                    f"{self.path}: the folds' one-hot encodings differ in width ({sorted(counts)}): a category "
                    "is missing from some folds' training rows; these folds cannot train as one pack (--no-pack)"
                )
            return self._read(counts.pop() if counts else None)
        return self._read(self.encoder and self.encoder.width)

    @property
    def task(self) -> str:
        return self._read(self._task)

    @property
    def num_classes(self) -> int | None:
        return len(self.class_labels) if self.task != "regression" else None

    def _read(self, value):
        if value is None:
            raise RuntimeError(f"{self.path}: not read yet; call setup() or shape() first")
        return value

    def load_arrays(self):
        if self._targets is None:
            self._targets = self._fit_targets()
        return self.table(), self._targets

    def encode_features(self, raw, train_idx: np.ndarray) -> np.ndarray:
        if self.encoder is None:  # not restored from a checkpoint: fit on the training split
            numeric, categorical = self._columns()
            self.encoder = Encoder(numeric, categorical, self.missing == "impute").fit(raw, train_idx, self.path)
        X = self.encoder.transform(raw, self.path)
        self._table = None  # the matrix is all we keep
        return X

    def setup(self, stage: str | None = None) -> None:
        super().setup(stage)
        import pyarrow as pa

        pa.default_memory_pool().release_unused()  # hand the table's memory back to the system now

    @property
    def unscaled_columns(self) -> list[int]:
        return list(range(len(self.encoder.numeric), self.encoder.width))  # one-hot columns stay 0/1

    def labels(self, indices) -> list:
        return [self.class_labels[int(i)] for i in indices] if self.class_labels else list(indices)

    # --- checkpoints carry the preprocessing ---------------------------------------------------
    def state_dict(self) -> dict:
        state = super().state_dict()
        if self.encoder is not None:
            state.update(encoder=self.encoder.state_dict(), class_labels=self.class_labels, task=self._task)
        return state

    def load_state_dict(self, state: dict) -> None:
        if "encoder" in state:
            saved = Encoder.from_state(state["encoder"], self.missing == "impute")
            if self.encoder is None or saved.state_dict() != self.encoder.state_dict():
                self.encoder, self.splits = saved, {}  # rebuild with the saved statistics
            self.class_labels, self._task = state["class_labels"], state["task"]
        super().load_state_dict(state)

    # --- predicting a new file ----------------------------------------------------------------
    def predict_tensors(self):
        if self.predict_path is None:
            return super().predict_tensors()
        import torch

        table = read_table(self.predict_path)
        missing = [n for n in self.encoder.numeric + self.encoder.categorical if n not in table.column_names]
        if missing:
            raise UserError(f"{self.predict_path}: no column {missing[0]!r}, which the model was trained on")
        X = self.encoder.transform(table, self.predict_path)
        self.apply_scaler(X)
        if self.target in table.column_names and self.task != "regression":
            values = category_values(table, self.target)
            position = {str(label): k for k, label in enumerate(self.class_labels)}
            y = np.array([position.get(v, -1) if v is not None else -1 for v in values], dtype=np.int64)
        elif self.target in table.column_names:
            y = numeric_values(table, self.target, self.predict_path).astype(np.float32)
        else:  # no target: -1 (classes) or NaN (regression) marks it unknown
            y = np.full(table.num_rows, -1 if self.task != "regression" else np.nan)
        dtype = torch.int64 if self.task == "multiclass" else torch.float32
        return torch.from_numpy(X), torch.from_numpy(y).to(dtype), np.arange(table.num_rows)


def _mostly_numbers(table, name: str) -> bool:
    """A text column where 9 values in 10 are numbers is a numeric column with typos, not categories."""
    values = [v for v in table.column(name).to_pylist()[:1000] if v not in (None, "")]
    numbers = 0
    for value in values:
        try:
            float(value)
            numbers += 1
        except ValueError:
            pass
    return bool(values) and numbers >= 0.9 * len(values)


BUNDLED = ("breast_cancer", "iris", "wine", "digits", "diabetes")


class BundledDataModule(TabularDataModule):
    """A dataset that ships with scikit-learn (nothing is downloaded): breast_cancer (binary), iris, wine,
    digits (multiclass) or diabetes (regression).

    Args:
        name: the dataset.
        The other arguments are TabularDataModule's.
    """

    def __init__(
        self,
        name: Literal["breast_cancer", "iris", "wine", "digits", "diabetes"] = "breast_cancer",
        **kwargs,
    ):
        super().__init__(**kwargs)  # TabularDataModule's arguments (jsonargparse lists them as this class's)
        self.save_hyperparameters()
        self.keep_hparams_plain()
        require(name in BUNDLED, f"{self.key}.name", name, f"one of {', '.join(BUNDLED)}")
        self.name = name

    def load_arrays(self):
        from sklearn import datasets

        bunch = getattr(datasets, f"load_{self.name}")()
        return bunch.data.astype(np.float32), bunch.target

    @property
    def task(self) -> str:
        return {"breast_cancer": "binary", "diabetes": "regression"}.get(self.name, "multiclass")

    @property
    def num_features(self) -> int:
        return {"breast_cancer": 30, "iris": 4, "wine": 13, "digits": 64, "diabetes": 10}[self.name]

    @property
    def num_classes(self) -> int | None:
        return {"iris": 3, "wine": 3, "digits": 10, "breast_cancer": 2}.get(self.name)
