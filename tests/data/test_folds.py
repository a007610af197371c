"""K-fold splits: scikit-learn's folds, the held-out fold never reaches fit, and folds that leave the test
split unseen."""

import numpy as np
import pytest
from sklearn.model_selection import KFold, StratifiedKFold

from trainlab.data import SyntheticDataModule
from trainlab.data.folds import Fold


@pytest.mark.parametrize("generator", ["classification", "regression"])
def test_folds_are_scikit_learns_and_the_held_out_fold_never_reaches_fit(generator):
    k, seed = 5, 7
    stratify = generator == "classification"
    splitter = (StratifiedKFold if stratify else KFold)(n_splits=k, shuffle=True, random_state=seed)
    held_out = []
    for index in range(k):
        data = SyntheticDataModule(
            generator=generator, n_samples=300, n_features=4, val_fraction=0.25, folds=[Fold(k, index, seed, stratify)]
        )
        data.setup()
        X, y = data.load_arrays()
        train_part, test_part = list(splitter.split(X, y))[index]
        split = data.split_indices
        assert sorted(split["test"]) == sorted(test_part)
        assert sorted(np.concatenate([split["train"], split["val"]])) == sorted(train_part)
        assert len(split["val"]) == round(0.25 * len(train_part))  # validation carved from the training folds
        # The scaler saw the training split only, and the data module validates (early stopping, checkpoints) on val.
        scaler = StandardScaler_of(X[split["train"]])
        np.testing.assert_allclose(data.scaler.mean_, scaler.mean_, rtol=1e-12)
        np.testing.assert_allclose(data.scaler.scale_, scaler.scale_, rtol=1e-12)
        assert data.validation_split == "val"
        held_out.append(split["test"])
    everything = np.concatenate(held_out)
    assert sorted(everything) == list(range(300))  # every sample held out exactly once


def StandardScaler_of(X):
    from sklearn.preprocessing import StandardScaler

    return StandardScaler().fit(X.astype(np.float32))


def test_folds_exclude_test_leaves_the_test_split_unseen():
    settings = dict(n_samples=200, val_fraction=0.2, test_fraction=0.25)
    plain = SyntheticDataModule(**settings)
    plain.setup()
    held_out = []
    for index in range(4):
        data = SyntheticDataModule(**settings, folds=[Fold(4, index, 0)], folds_exclude_test=True)
        data.setup()
        assert not set(data.split_indices["test"]) & set(plain.split_indices["test"])
        assert not set(data.split_indices["train"]) & set(plain.split_indices["test"])
        held_out.extend(data.split_indices["test"])
    outside_test = np.concatenate([plain.split_indices["train"], plain.split_indices["val"]])
    assert sorted(held_out) == sorted(outside_test)  # the folds cover exactly what the test split is not
