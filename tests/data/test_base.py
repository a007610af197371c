"""The data path every data source shares: splits like scikit-learn's, scaling fitted on the training split
only, an idempotent setup, and splits too small to train on refused."""

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split

from tests.data.helpers import make
from trainlab.errors import UserError


def test_splits_partition_the_dataset():
    dm = make(n_samples=500)
    rows = np.concatenate([dm.split_indices[s] for s in ("train", "val", "test")])
    assert sorted(rows.tolist()) == list(range(500))


def test_splits_are_stratified_like_sklearn():
    kwargs = dict(n_samples=1000, weights=[0.8, 0.2], flip_y=0.0, seed=3)
    dm = make(**kwargs)
    X, y = make_classification(
        n_samples=1000,
        n_features=2,
        n_informative=2,
        n_redundant=0,
        n_clusters_per_class=1,
        weights=[0.8, 0.2],
        flip_y=0.0,
        random_state=3,
    )
    rest, test = train_test_split(np.arange(1000), test_size=0.2, random_state=3, stratify=y)
    train, val = train_test_split(rest, test_size=0.25, random_state=3, stratify=y[rest])
    assert np.array_equal(dm.split_indices["test"], test)
    assert np.array_equal(dm.split_indices["val"], val)
    assert np.array_equal(dm.split_indices["train"], train)
    overall = y.mean()
    for split in ("train", "val", "test"):
        assert abs(dm.splits[split][1].mean().item() - overall) < 0.01


def test_scaler_is_fitted_on_the_training_split_only():
    dm = make(n_samples=400, n_features=4, n_informative=3, class_sep=2.0, seed=1)
    raw, _ = dm.load_arrays()
    raw = raw.astype(np.float32)
    train_raw = raw[dm.split_indices["train"]]
    np.testing.assert_allclose(dm.scaler.mean_, train_raw.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dm.scaler.scale_, train_raw.std(axis=0), rtol=1e-5)
    # the training split is standardised exactly; val/test only through the training statistics
    X_train = dm.splits["train"][0]
    assert torch.allclose(X_train.mean(0), torch.zeros(4), atol=1e-5)
    X_test = dm.splits["test"][0].numpy()
    expected = (raw[dm.split_indices["test"]] - dm.scaler.mean_) / dm.scaler.scale_
    np.testing.assert_allclose(X_test, expected, rtol=1e-5, atol=1e-5)
    assert not np.allclose(X_test.mean(0), 0, atol=1e-3)


def test_setup_is_idempotent():
    dm = make(n_samples=100)
    first = dm.splits["train"][0]
    dm.setup("test")
    assert dm.splits["train"][0] is first


def test_a_split_of_fewer_than_two_samples_is_refused_in_one_line():
    """Three rows cannot give train, validation and test splits a loss and R2 can be computed on."""
    from trainlab.data import FileDataModule

    Path("three.csv").write_text("x,y\n0.1,1.5\n0.4,2.5\n0.9,0.5\n")
    data = FileDataModule("three.csv", "y", task="regression")
    with pytest.raises(
        UserError, match=r"3 samples give train/val/test splits of 1/1/1; the train split needs at least 2"
    ):
        data.setup()
