"""Synthetic datasets from scikit-learn's generators: shapes and tasks, the same tensors for the same seed,
the chapter's data bit for bit, and the arguments refused."""

import re

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from tests.data.helpers import make
from trainlab.data import SyntheticDataModule
from trainlab.data.synthetic import make_classification_float32
from trainlab.errors import UserError


@pytest.mark.parametrize(
    "kwargs, task, num_features, num_classes",
    [
        ({"generator": "classification"}, "binary", 2, 2),
        ({"generator": "classification", "n_features": 6, "n_informative": 4, "n_classes": 3}, "multiclass", 6, 3),
        ({"generator": "moons"}, "binary", 2, 2),
        ({"generator": "circles"}, "binary", 2, 2),
        ({"generator": "blobs", "n_features": 3, "n_classes": 4}, "multiclass", 3, 4),
        ({"generator": "regression", "n_features": 5, "n_informative": 3}, "regression", 5, None),
        ({"generator": "friedman1", "n_features": 7}, "regression", 7, None),
    ],
)
def test_generators_shapes_and_task(kwargs, task, num_features, num_classes):
    dm = make(n_samples=200, **kwargs)
    assert (dm.task, dm.num_features, dm.num_classes) == (task, num_features, num_classes)
    sizes = {name: dm.split_size(name) for name in ("train", "val", "test")}
    assert sizes == {"train": 120, "val": 40, "test": 40}
    X, y = dm.splits["train"]
    assert X.shape == (120, num_features) and X.dtype == torch.float32
    assert y.shape == (120,)
    assert y.dtype == (torch.int64 if task == "multiclass" else torch.float32)
    if num_classes:
        all_labels = torch.cat([dm.splits[s][1] for s in ("train", "val", "test")])
        assert set(all_labels.long().tolist()) == set(range(num_classes))


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(n_samples=1000, n_features=2, n_informative=2, n_redundant=0, n_clusters_per_class=1),
        dict(
            n_samples=300,
            n_features=12,
            n_informative=5,
            n_redundant=3,
            n_repeated=2,
            n_classes=3,
            n_clusters_per_class=2,
            weights=[0.5, 0.3, 0.2],
            flip_y=0.1,
            class_sep=0.5,
        ),
    ],
)
@pytest.mark.parametrize("seed", [0, 42])
def test_lean_make_classification_equals_sklearns(kwargs, seed):
    X, y = make_classification_float32(random_state=seed, rows_per_chunk=64, **kwargs)
    X_ref, y_ref = make_classification(random_state=seed, **kwargs)
    assert X.dtype == np.float32
    assert np.array_equal(X, X_ref.astype(np.float32))
    assert np.array_equal(y, y_ref)


def test_same_seed_same_tensors_bit_for_bit():
    a, b = make(n_samples=300, seed=7), make(n_samples=300, seed=7)
    for split in ("train", "val", "test"):
        assert torch.equal(a.splits[split][0], b.splits[split][0])
        assert torch.equal(a.splits[split][1], b.splits[split][1])
    c = make(n_samples=300, seed=8)
    assert not torch.equal(a.splits["train"][0], c.splits["train"][0])


def test_seed_config_data_equals_the_chapter_code():
    """configs/seed.yaml's data is the chapter's, bit for bit (its Step 1 code, run here)."""
    X, y = make_classification(
        n_samples=1000, n_features=2, n_informative=2, n_redundant=0, n_clusters_per_class=1, random_state=42
    )
    X = torch.tensor(X, dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.float32).view(-1, 1)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
    scaler = StandardScaler()
    X_train_scaled = torch.tensor(scaler.fit_transform(X_train), dtype=torch.float32)
    X_test_scaled = torch.tensor(scaler.transform(X_test), dtype=torch.float32)

    dm = make(val_fraction=0.0, test_fraction=0.2, stratify=False, seed=42)
    assert torch.equal(dm.splits["train"][0], X_train_scaled)
    assert torch.equal(dm.splits["test"][0], X_test_scaled)
    assert torch.equal(dm.splits["train"][1], y_train.view(-1))
    assert torch.equal(dm.splits["test"][1], y_test.view(-1))
    assert dm.validation_split == "test"  # the chapter evaluates the held-out 20% every epoch
    assert dm.split_size("val") == 0


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"n_informative": 3}, "data.init_args.n_informative"),
        ({"n_features": 3, "n_informative": 2, "n_redundant": 2}, "data.init_args.n_redundant"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "data.init_args.val_fraction + test_fraction"),
        ({"test_fraction": 0.0}, "data.init_args.test_fraction"),
        ({"val_fraction": -0.1}, "data.init_args.val_fraction"),
        ({"batch_size": 0}, "data.init_args.batch_size"),
        ({"generator": "moons", "n_features": 3}, "data.init_args.n_features"),
        ({"generator": "friedman1", "n_features": 4}, "data.init_args.n_features"),
        ({"generator": "spirals"}, "data.init_args.generator"),
        ({"weights": [0.5, 0.3, 0.2]}, "data.init_args.weights"),
        ({"n_classes": 3, "n_informative": 1}, "data.init_args.n_classes"),  # 3 classes need 2**n_informative >= 3
    ],
)
def test_bad_data_arguments_name_the_key(kwargs, key):
    with pytest.raises(UserError, match="^" + re.escape(key) + "="):
        SyntheticDataModule(**kwargs)
