"""K-fold cross-validation splits: scikit-learn's StratifiedKFold (classification) or KFold, shuffled
under a seed, so that fold membership is exactly what scikit-learn gives for the same seed."""

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold

from trainlab.errors import UserError


@dataclass(frozen=True)
class Fold:
    """One level of cross-validation: the samples at hand cut into k folds; fold `index` is held out.

    Args:
        k: the number of folds (>= 2).
        index: the held-out fold, 0 to k - 1.
        seed: the shuffle's seed (scikit-learn's random_state).
        stratify: keep each class's share in every fold (classification only).
    """

    k: int
    index: int
    seed: int = 0
    stratify: bool = True


def check_folds(y: np.ndarray, task: str, k: int, stratify: bool, key: str) -> None:
    """Raise a UserError naming `key` unless `k` folds of `y` are possible (every class in every fold)."""
    if k < 2:
        raise UserError(f"{key}={k} is not allowed: at least 2 folds (one held out, the rest to train)")
    if k > len(y):
        raise UserError(f"{key}={k} is not allowed: at most {len(y)}, the number of samples")
    if stratify and task == "regression":
        raise UserError(f"{key}: stratified folds need classes; the target is a regression target (stratify false)")
    if stratify:
        classes, counts = np.unique(y, return_counts=True)
        smallest = int(counts.argmin())
        if counts[smallest] < k:
            raise UserError(
                f"{key}={k} is not allowed: class {classes[smallest]} has only {counts[smallest]} samples, so "
                f"stratified folds can have at most {counts[smallest]}"
            )


def fold_split(indices: np.ndarray, y: np.ndarray, task: str, fold: Fold, key: str):
    """(training part, held-out fold) of `indices`, as scikit-learn's splitter gives them for this fold."""
    check_folds(y[indices], task, fold.k, fold.stratify, key)
    if not 0 <= fold.index < fold.k:
        raise UserError(f"{key}: index {fold.index} is not allowed: a fold from 0 to {fold.k - 1}")
    splitter = (StratifiedKFold if fold.stratify else KFold)(n_splits=fold.k, shuffle=True, random_state=fold.seed)
    train, held_out = list(splitter.split(indices, y[indices]))[fold.index]
    return indices[train], indices[held_out]
