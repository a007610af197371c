"""trainlab's models as scikit-learn estimators: TrainlabClassifier and TrainlabRegressor work in Pipeline,
GridSearchCV, cross_val_score, CalibratedClassifierCV and the like.

    >>> from trainlab.sklearn import TrainlabClassifier
    >>> model = TrainlabClassifier(hidden_dims=(10,), lr=0.01, max_epochs=100, random_state=42).fit(X, y)
    >>> model.predict_proba(X_new), model.history_["train_loss"][-1], model.diagnosis_["verdict"]

A fit takes the path `trainlab fit` takes (trainlab.array_fit: a data module over the arrays, MLPModule,
a Lightning Trainer) without a run directory: nothing is written or printed unless asked (`log_dir`,
`verbose`). X may be a numeric array or a DataFrame: text and categorical columns are one-hot encoded and
missing values imputed (the training rows' median, or most frequent category) as for a CSV file, then the
features are standardised, every statistic fitted on the training rows only. Regression targets are
standardised for training (the training rows' mean and standard deviation) and predictions returned in
the targets' own units.

Importing this module does not import Lightning or torch: a fit or a prediction does, on first use.
"""

import numbers
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_consistent_length, check_is_fitted, column_or_1d, validate_data

from trainlab.errors import UserError

# Constructor parameters that are MLPModule's or TabularDataModule's arguments, under the same names.
MODEL_PARAMS = ("hidden_dims", "activation", "dropout", "batch_norm", "optimizer", "lr", "weight_decay", "ensemble")
DATA_PARAMS = ("batch_size",)
# The data module's arguments a config may set for arrays (the others describe its own data source).
CONFIG_DATA_KEYS = ("batch_size", "eval_batch_size", "stratify", "scale", "batches_per_step", "on_device")
# The model's arguments the data decides (as LightningCLI links them).
LINKED_MODEL_KEYS = ("input_dim", "task", "num_classes", "slots", "seeds")
# Rows per forward pass when predicting (the data module's eval_batch_size): bounded memory on large X.
ROWS_PER_FORWARD = 65536
# Defaults where neither trainlab's classes nor a config give one.
DEFAULTS = {
    "max_epochs": 100,
    "early_stopping": False,
    "patience": 10,
    "validation_fraction": 0.1,
    "accelerator": "cpu",
}


class _TrainlabEstimator(BaseEstimator):
    """What both estimators share. Parameters left None take the config's value (when `config` is given),
    else trainlab's default (MLPModule's and TabularDataModule's signatures, or DEFAULTS above).

    Args:
        hidden_dims: widths of the hidden layers (MLPModule's default: (64, 64)).
        activation: relu, leaky_relu, gelu, tanh or sigmoid.
        dropout: dropout probability after each hidden layer.
        batch_norm: batch normalisation after each hidden linear layer.
        optimizer: sgd, adam, adamw or rmsprop.
        lr: learning rate (default 1e-3).
        weight_decay: L2 penalty through the optimizer.
        batch_size: rows per mini-batch (default 32).
        max_epochs: epochs to train (default 100).
        early_stopping: hold out `validation_fraction` of the rows (stratified by class) and stop after
            `patience` epochs without a lower validation loss, keeping the best epoch's weights (default False).
        patience: see early_stopping (default 10).
        validation_fraction: see early_stopping (default 0.1).
        ensemble: train this many members (seeds random_state, + 1, ...) and average their predictions.
        random_state: an int makes fits repeatable (the initialisation, dropout, batch order and validation
            split all follow from it); None draws a seed from NumPy's global generator.
        accelerator: Lightning's accelerator: cpu (default; small MLPs train fastest there), gpu, auto, ...
        n_threads: torch's CPU threads during fit and predict (restored afterwards); None leaves torch's
            setting. One thread is the default: on these small models more threads gain little and, on a
            busy machine, measured up to 10x slower.
        config: a trainlab config (a YAML file's path, or the same as a dict): its model.init_args, the
            batch keys of data.init_args, trainer.max_epochs and accelerator, seed_everything and
            run.early_stopping are the starting point; parameters given here override them.
        log_dir: a folder for TensorBoard curves of each fit; None writes nothing.
        verbose: 0 prints nothing; 1 a summary line every 10 epochs; 2 also Lightning's own notices.

    Fitted attributes: n_features_in_, feature_names_in_ (DataFrames with string column names), n_iter_
    (epochs trained), best_epoch_ (0-based, early stopping only, else None), history_ (per epoch:
    train_loss; val_loss and val_epoch with early stopping; the doctor's gradient statistics),
    diagnosis_ (the training doctor's verdict, evidence and remedies), and the fitted network and
    preprocessing as plain values (network_, state_dict_, preprocessing_) so that a pickled estimator
    needs no Lightning object.
    """

    _task_kind: str  # "classification" or "regression"

    def __init__(
        self,
        hidden_dims=None,
        activation=None,
        dropout=None,
        batch_norm=None,
        optimizer=None,
        lr=None,
        weight_decay=None,
        batch_size=None,
        max_epochs=None,
        early_stopping=None,
        patience=None,
        validation_fraction=None,
        ensemble=None,
        random_state=None,
        accelerator=None,
        n_threads=1,
        config=None,
        log_dir=None,
        verbose=0,
    ):
        self.hidden_dims = hidden_dims
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.early_stopping = early_stopping
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.ensemble = ensemble
        self.random_state = random_state
        self.accelerator = accelerator
        self.n_threads = n_threads
        self.config = config
        self.log_dir = log_dir
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing values are imputed, as in a file
        return tags

    # --- fit ---------------------------------------------------------------------------------------
    def _fit(self, X, task: str, targets: np.ndarray, num_classes: int | None, sample_weight):
        settings = self._settings()
        from trainlab.array_fit import fit_arrays

        with _threads(self.n_threads), _value_errors():
            result = fit_arrays(
                X,
                targets,
                task,
                num_classes,
                verbose=self.verbose,
                log_dir=self.log_dir,
                sample_weight=sample_weight,
                **settings,
            )
        self.preprocessing_ = {
            "encoder": result.encoder.state_dict(),
            "mean": result.scaler_mean,
            "scale": result.scaler_scale,
        }
        self.network_ = result.network
        self.state_dict_ = result.state
        self.history_ = result.history
        self.diagnosis_ = result.diagnosis
        self.n_iter_ = result.epochs
        self.best_epoch_ = result.best_epoch
        return self

    def _settings(self) -> dict:
        """fit_arrays' arguments: this estimator's parameters over the config's over the defaults."""
        config = _read_config(self.config)
        model = {k: v for k, v in _init_args(config, "model").items() if k not in LINKED_MODEL_KEYS}
        data = {k: v for k, v in _init_args(config, "data").items() if k in CONFIG_DATA_KEYS}
        trainer = config.get("trainer") or {}
        stopping = (config.get("run") or {}).get("early_stopping")
        configured = {
            "max_epochs": trainer.get("max_epochs"),
            "accelerator": trainer.get("accelerator"),
            "early_stopping": stopping is not None if "run" in config else None,
            "patience": (stopping or {}).get("patience"),
            "validation_fraction": _init_args(config, "data").get("val_fraction") or None,
        }
        value = {}
        for key, default in DEFAULTS.items():
            given = getattr(self, key)
            value[key] = given if given is not None else configured[key] if configured[key] is not None else default
        for key in MODEL_PARAMS:
            if getattr(self, key) is not None:
                model[key] = getattr(self, key)
        for key in DATA_PARAMS:
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        if "hidden_dims" in model:
            dims = model["hidden_dims"]
            model["hidden_dims"] = [dims] if isinstance(dims, numbers.Integral) else list(dims)

        self._check_settings(value)
        model_seed, data_seed = self._seeds(config)
        return {
            "model": model,
            "data": data,
            "max_epochs": value["max_epochs"],
            "accelerator": value["accelerator"],
            "patience": value["patience"] if value["early_stopping"] else None,
            "val_fraction": value["validation_fraction"],
            "seed": model_seed,
            "data_seed": data_seed,
        }

    def _check_settings(self, value: dict) -> None:
        """The estimator's own settings (the model's and the data's are checked where they are used)."""
        checks = (
            ("max_epochs", _is_int(value["max_epochs"]) and value["max_epochs"] >= 1, "an integer >= 1"),
            ("early_stopping", isinstance(value["early_stopping"], bool), "True or False"),
            ("patience", _is_int(value["patience"]) and value["patience"] >= 1, "an integer >= 1"),
            (
                "validation_fraction",
                isinstance(value["validation_fraction"], numbers.Real) and 0 < value["validation_fraction"] < 1,
                "a fraction in (0, 1)",
            ),
            ("accelerator", isinstance(value["accelerator"], str), "a name: cpu, gpu, auto, ..."),
        )
        for key, ok, allowed in checks:
            _check(ok, key, value[key], allowed)
        threads_ok = self.n_threads is None or (_is_int(self.n_threads) and self.n_threads >= 1)
        _check(threads_ok, "n_threads", self.n_threads, "None or an integer >= 1")
        _check(_is_int(self.verbose) and self.verbose >= 0, "verbose", self.verbose, "0, 1 or 2")

    def _seeds(self, config: dict) -> tuple[int, int]:
        """(the network's seed, the data's: batch order and validation split). random_state sets both; a
        config's seed_everything and data.init_args.seed, as trainlab fit reads them; else a drawn seed."""
        if self.random_state is None and isinstance(config.get("seed_everything"), int):
            seed = config["seed_everything"]
            return seed, _init_args(config, "data").get("seed", seed)
        if _is_int(self.random_state):
            _check(0 <= self.random_state < 2**31, "random_state", self.random_state, "an integer from 0 to 2**31 - 1")
            return self.random_state, self.random_state
        seed = int(check_random_state(self.random_state).randint(0, 2**31 - 1))
        return seed, seed

    # --- predict -----------------------------------------------------------------------------------
    def _scores(self, X) -> np.ndarray:
        """What the network predicts for X: the mean probability of the positive class (binary), class
        probabilities (multiclass) or standardised values (regression), over the ensemble's members."""
        check_is_fitted(self)
        table = _feature_table(self, X, reset=False)
        import torch

        from trainlab import tasks
        from trainlab.data.table import Encoder
        from trainlab.models.packed import PackedMLP

        with _value_errors():
            features = Encoder.from_state(self.preprocessing_["encoder"], impute=True).transform(table, "X")
        if self.preprocessing_["mean"] is not None:
            features = ((features - self.preprocessing_["mean"]) / self.preprocessing_["scale"]).astype(np.float32)
        with _threads(self.n_threads), torch.no_grad():
            net = PackedMLP(**self.network_)
            net.load_state_dict(self.state_dict_)
            net.eval()
            x = torch.from_numpy(features)
            scores = [
                tasks.metric_inputs(self.network_task_, net(x[start : start + ROWS_PER_FORWARD])).mean(0)
                for start in range(0, len(x), ROWS_PER_FORWARD)
            ]
            return torch.cat(scores).double().numpy()

    def _inputs(self, X, y, sample_weight):
        """X as a table of columns, y as a 1-d array and the sample weights (or None), all checked."""
        if y is None:
            raise ValueError(f"This {type(self).__name__} estimator requires y to be passed, but the target y is None.")
        table = _feature_table(self, X, reset=True)
        y = column_or_1d(y, warn=True)
        check_consistent_length(np.empty(table.num_rows), y)
        if sample_weight is not None:
            sample_weight = _sample_weight(sample_weight, table.num_rows)
        return table, y, sample_weight


class TrainlabClassifier(ClassifierMixin, _TrainlabEstimator):
    """A trainlab MLP classifier (binary: one sigmoid output and BCE; more classes: softmax and cross-entropy);
    see _TrainlabEstimator for the parameters. `classes_` are y's own labels (numbers or text), sorted."""

    def fit(self, X, y, sample_weight=None):
        """Train on X (an array or DataFrame) and y (labels); `sample_weight` weights each row's loss."""
        table, y, sample_weight = self._inputs(X, y, sample_weight)
        check_classification_targets(y)
        self.classes_, index = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"y has 1 class ({self.classes_[0]!r}); a classifier needs at least 2 classes")
        weighted = self.classes_ if sample_weight is None else np.unique(y[sample_weight > 0])
        if len(weighted) < 2:
            raise ValueError(f"sample_weight leaves 1 class ({weighted[0]!r}); a classifier needs at least 2 classes")
        self.network_task_ = "binary" if len(self.classes_) == 2 else "multiclass"
        return self._fit(table, self.network_task_, index, len(self.classes_), sample_weight)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, columns in the order of classes_."""
        scores = self._scores(X)
        if scores.ndim == 1:  # binary: the positive class's probability
            return np.column_stack([1 - scores, scores])
        return scores / scores.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        index = np.argmax(self.predict_proba(X), axis=1)
        return self.classes_[index]


class TrainlabRegressor(RegressorMixin, _TrainlabEstimator):
    """A trainlab MLP regressor (one output, MSE); see _TrainlabEstimator for the parameters. Targets are
    standardised for training; predictions come back in y's units."""

    def fit(self, X, y, sample_weight=None):
        """Train on X (an array or DataFrame) and y (numbers); `sample_weight` weights each row's loss."""
        table, y, sample_weight = self._inputs(X, y, sample_weight)
        y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
        self.target_mean_ = float(y.mean())
        self.target_scale_ = float(y.std()) or 1.0  # a constant target: only centred
        self.network_task_ = "regression"
        targets = (y - self.target_mean_) / self.target_scale_
        return self._fit(table, "regression", targets, None, sample_weight)

    def predict(self, X) -> np.ndarray:
        return self._scores(X) * self.target_scale_ + self.target_mean_


# --- inputs --------------------------------------------------------------------------------------------
def _feature_table(estimator, X, reset: bool):
    """X as a pyarrow Table of its columns, named as in the DataFrame fitted on (feature_names_in_), else by
    position ("0", "1", ...): numbers stay numbers, text becomes categories. Sets (reset) or checks
    n_features_in_ and feature_names_in_ as scikit-learn's own estimators do."""
    import scipy.sparse

    if scipy.sparse.issparse(X):
        raise TypeError(
            f"{type(estimator).__name__} does not take sparse input (a {type(X).__name__}): "
            "pass a dense array, for example X.toarray()"
        )
    import pyarrow as pa

    if hasattr(X, "columns") and hasattr(X, "dtypes"):  # a DataFrame: each column keeps its type
        validate_data(estimator, X, reset=reset, skip_check_array=True)
        if X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(f"X has shape {X.shape}: at least 1 row and 1 column are required")
        frame = X.set_axis(_column_names(estimator, X.shape[1]), axis=1)
        return pa.Table.from_pandas(frame, preserve_index=False)  # (NaN becomes a missing value)
    X = check_array(X, dtype=None, ensure_all_finite=False, input_name="X", estimator=estimator)
    validate_data(estimator, X, reset=reset, skip_check_array=True)
    columns = [X[:, j] if X.dtype.kind not in "OUS" else _numbers_or_text(X[:, j]) for j in range(X.shape[1])]
    # NaN as a missing value (a null), as a file's gaps are read
    names = _column_names(estimator, X.shape[1])
    return pa.table({name: pa.array(column, from_pandas=True) for name, column in zip(names, columns, strict=True)})


def _column_names(estimator, count: int) -> list[str]:
    """The names a message about a column uses: the fitted DataFrame's, else positions."""
    names = getattr(estimator, "feature_names_in_", None)
    return (
        [str(name) for name in names] if names is not None and len(names) == count else [str(j) for j in range(count)]
    )


def _sample_weight(sample_weight, rows: int) -> np.ndarray:
    """One finite weight >= 0 per row (a number: the same for every row), not all zero."""
    if isinstance(sample_weight, numbers.Number):
        sample_weight = np.full(rows, sample_weight)
    weight = check_array(sample_weight, ensure_2d=False, dtype=np.float64, input_name="sample_weight")
    if weight.shape != (rows,):
        raise ValueError(f"sample_weight has shape {weight.shape}; expected ({rows},): one weight per row of X")
    if (weight < 0).any() or not weight.any():
        raise ValueError("sample_weight: weights must be >= 0 and not all zero")
    return weight


def _numbers_or_text(values: np.ndarray) -> np.ndarray:
    """A column of Python objects or strings as float64 when every value is a number (None and NaN are
    missing), else as text (a category per distinct value; None where missing)."""
    missing = np.array([v is None or (isinstance(v, float) and v != v) for v in values], dtype=bool)
    try:
        return np.where(missing, np.nan, values).astype(np.float64)
    except ValueError:  # text
        return np.array([None if gap else str(v) for v, gap in zip(values, missing, strict=True)], dtype=object)


# --- parameters ----------------------------------------------------------------------------------------
def _read_config(config) -> dict:
    if config is None:
        return {}
    if isinstance(config, dict):
        return config
    import yaml

    path = Path(config)
    if not path.is_file():
        raise ValueError(f"config={str(config)!r}: no such file")
    loaded = yaml.safe_load(path.read_text())
    if not isinstance(loaded, dict):
        raise ValueError(f"config={str(config)!r}: not a trainlab config (a YAML mapping with model, data, trainer)")
    return loaded


def _init_args(config: dict, section: str) -> dict:
    """A config section's arguments, written with or without class_path/init_args."""
    found = config.get(section) or {}
    return dict(found.get("init_args") or {}) if "class_path" in found or "init_args" in found else dict(found)


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check(condition: bool, key: str, value, allowed: str) -> None:
    if not condition:
        raise ValueError(f"{key}={value!r} is not allowed: {allowed}")


@contextmanager
def _value_errors():
    """trainlab's UserError (a bad value found by the data module or the model) as the ValueError
    scikit-learn's conventions expect, named by this estimator's parameter where it has one."""
    try:
        yield
    except UserError as error:
        message = str(error).replace("model.init_args.", "").replace("data.init_args.", "")
        raise ValueError(message) from None


@contextmanager
def _threads(count: int | None):
    if count is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
