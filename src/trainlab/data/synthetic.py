"""Synthetic datasets from scikit-learn's generators, all seeded: same seed, same tensors."""

from typing import Literal

import numpy as np
from sklearn import datasets

from trainlab.data.base import TabularDataModule
from trainlab.errors import require

Generator = Literal["classification", "moons", "circles", "blobs", "regression", "friedman1"]
TWO_FEATURES = ("moons", "circles")  # these generators always make exactly two features


def make_classification_float32(random_state: int, rows_per_chunk: int = 65536, **kwargs):
    """`sklearn.datasets.make_classification(random_state=..., **kwargs)`, returned as float32, equal to
    casting its result, with one float64 copy of the data alive at a time instead of three.

    make_classification's last random draws shuffle the samples and then the features, each through a
    full float64 copy. We ask it not to shuffle, continue its random stream with the same two draws, and
    apply both permutations a chunk at a time while casting into float32."""
    generator = np.random.RandomState(random_state)
    X, y = datasets.make_classification(shuffle=False, random_state=generator, **kwargs)
    rows = np.arange(len(X))
    generator.shuffle(rows)  # sklearn.utils.shuffle's draw
    columns = np.arange(X.shape[1])
    generator.shuffle(columns)  # make_classification's feature permutation
    out = np.empty(X.shape, dtype=np.float32)
    for start in range(0, len(X), rows_per_chunk):
        out[start : start + rows_per_chunk] = X[rows[start : start + rows_per_chunk]][:, columns]
    return out, y[rows]


class SyntheticDataModule(TabularDataModule):
    """Data from a scikit-learn generator, split, scaled on the training split, served in batches.

    Args:
        generator: classification (make_classification), moons, circles, blobs (make_blobs),
            regression (make_regression) or friedman1 (make_friedman1).
        n_samples: number of samples generated.
        n_features: number of features (moons and circles always make 2; friedman1 needs >= 5).
        n_informative: informative features (classification and regression).
        n_redundant: redundant features (classification).
        n_classes: number of classes (classification and blobs; moons and circles make 2).
        n_clusters_per_class: clusters per class (classification).
        class_sep: class separation (classification).
        flip_y: fraction of labels flipped at random (classification).
        weights: class proportions, for imbalance (classification); None means balanced.
        noise: Gaussian noise (moons, circles, regression, friedman1).
        factor: inner-to-outer circle scale (circles).
        cluster_std: cluster spread (blobs).
        seed: seeds the generator, the splits and the shuffling.
        folds, folds_exclude_test: cross-validation folds (set by `trainlab cv` and by tuning with cv);
            see TabularDataModule.
        The other arguments (batch sizes, split fractions, scaling, batches_per_step, on_device) are
        TabularDataModule's.
    """

    def __init__(
        self,
        generator: Generator = "classification",
        n_samples: int = 1000,
        n_features: int = 2,
        n_informative: int = 2,
        n_redundant: int = 0,
        n_classes: int = 2,
        n_clusters_per_class: int = 1,
        class_sep: float = 1.0,
        flip_y: float = 0.01,
        weights: list[float] | None = None,
        noise: float = 0.1,
        factor: float = 0.5,
        cluster_std: float = 1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)  # TabularDataModule's arguments (jsonargparse lists them as this class's)
        self.save_hyperparameters()
        self.keep_hparams_plain()
        k = self.key
        allowed = ", ".join(Generator.__args__)
        require(generator in Generator.__args__, f"{k}.generator", generator, f"one of {allowed}")
        require(n_samples >= 10, f"{k}.n_samples", n_samples, "an integer >= 10")
        require(n_features >= 1, f"{k}.n_features", n_features, "an integer >= 1")
        if generator in TWO_FEATURES:
            require(n_features == 2, f"{k}.n_features", n_features, f"2: {generator} makes two features")
            require(n_classes == 2, f"{k}.n_classes", n_classes, f"2: {generator} makes two classes")
        if generator == "friedman1":
            require(n_features >= 5, f"{k}.n_features", n_features, "an integer >= 5 for friedman1")
        if generator in ("classification", "regression"):
            require(
                1 <= n_informative <= n_features,
                f"{k}.n_informative",
                n_informative,
                f"an integer from 1 to n_features ({n_features})",
            )
        if generator == "classification":
            require(n_redundant >= 0, f"{k}.n_redundant", n_redundant, "an integer >= 0")
            require(n_clusters_per_class >= 1, f"{k}.n_clusters_per_class", n_clusters_per_class, "an integer >= 1")
            require(
                n_informative + n_redundant <= n_features,
                f"{k}.n_redundant",
                n_redundant,
                f"at most n_features - n_informative ({n_features - n_informative})",
            )
            require(
                n_classes * n_clusters_per_class <= 2**n_informative,
                f"{k}.n_classes",
                n_classes,
                f"n_classes * n_clusters_per_class <= 2**n_informative ({2**n_informative})",
            )
            require(0 <= flip_y <= 1, f"{k}.flip_y", flip_y, "a fraction in [0, 1]")
            if weights is not None:
                require(
                    len(weights) in (n_classes - 1, n_classes) and all(w >= 0 for w in weights),
                    f"{k}.weights",
                    weights,
                    f"{n_classes} (or {n_classes - 1}) non-negative class proportions",
                )
        if generator in ("classification", "blobs"):
            require(n_classes >= 2, f"{k}.n_classes", n_classes, "an integer >= 2")
        require(noise >= 0, f"{k}.noise", noise, "a number >= 0")
        require(0 <= factor < 1, f"{k}.factor", factor, "a number in [0, 1) (inner circle / outer circle)")
        require(cluster_std > 0, f"{k}.cluster_std", cluster_std, "a number > 0")
        self.generator = generator

    @property
    def task(self) -> str:
        if self.generator in ("regression", "friedman1"):
            return "regression"
        return "binary" if self.hparams.n_classes == 2 else "multiclass"

    @property
    def num_features(self) -> int:
        return self.hparams.n_features

    @property
    def num_classes(self) -> int | None:
        return None if self.task == "regression" else self.hparams.n_classes

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        h, seed = self.hparams, self.seed
        if self.generator == "classification":
            return make_classification_float32(
                n_samples=h.n_samples,
                n_features=h.n_features,
                n_informative=h.n_informative,
                n_redundant=h.n_redundant,
                n_classes=h.n_classes,
                n_clusters_per_class=h.n_clusters_per_class,
                class_sep=h.class_sep,
                flip_y=h.flip_y,
                weights=h.weights,
                random_state=seed,
            )
        if self.generator == "moons":
            return datasets.make_moons(n_samples=h.n_samples, noise=h.noise, random_state=seed)
        if self.generator == "circles":
            return datasets.make_circles(n_samples=h.n_samples, noise=h.noise, factor=h.factor, random_state=seed)
        if self.generator == "blobs":
            return datasets.make_blobs(
                n_samples=h.n_samples,
                n_features=h.n_features,
                centers=h.n_classes,
                cluster_std=h.cluster_std,
                random_state=seed,
            )
        if self.generator == "regression":
            return datasets.make_regression(
                n_samples=h.n_samples,
                n_features=h.n_features,
                n_informative=h.n_informative,
                noise=h.noise,
                random_state=seed,
            )
        return datasets.make_friedman1(n_samples=h.n_samples, n_features=h.n_features, noise=h.noise, random_state=seed)
