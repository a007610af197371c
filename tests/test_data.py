import re
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from trainlab.data import SyntheticDataModule
from trainlab.data.batching import TensorBatches, epoch_permutation
from trainlab.data.synthetic import make_classification_float32
from trainlab.errors import UserError


def make(**kwargs) -> SyntheticDataModule:
    dm = SyntheticDataModule(**kwargs)
    dm.setup("fit")
    return dm


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


def test_splits_partition_the_dataset():
    dm = make(n_samples=500)
    rows = np.concatenate([dm.split_indices[s] for s in ("train", "val", "test")])
    assert sorted(rows.tolist()) == list(range(500))


def test_same_seed_same_tensors_bit_for_bit():
    a, b = make(n_samples=300, seed=7), make(n_samples=300, seed=7)
    for split in ("train", "val", "test"):
        assert torch.equal(a.splits[split][0], b.splits[split][0])
        assert torch.equal(a.splits[split][1], b.splits[split][1])
    c = make(n_samples=300, seed=8)
    assert not torch.equal(a.splits["train"][0], c.splits["train"][0])


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


def epoch_rows(loader, epoch: int) -> torch.Tensor:
    """The training rows a loader serves in one epoch, in order (groups flattened)."""
    loader.set_epoch(epoch)
    return torch.cat([batch[0] if batch[0].dim() == 2 else batch[0][0] for group in loader for batch in group])


def sorted_rows(X: torch.Tensor) -> torch.Tensor:
    return X[torch.argsort(X[:, 0])]


def test_training_batches_cover_each_sample_once_per_epoch_in_a_seeded_order():
    dm = make(n_samples=250, batch_size=32, batches_per_step=2)
    loader = dm.train_dataloader()
    X_train = dm.splits["train"][0]
    epochs = [epoch_rows(loader, e) for e in range(2)]
    for seen in epochs:
        assert len(seen) == len(X_train) == 150
        assert torch.equal(sorted_rows(seen), sorted_rows(X_train))  # the same rows, each exactly once
    assert not torch.equal(epochs[0], epochs[1])  # reshuffled each epoch
    assert torch.equal(epoch_rows(loader, 0), epochs[0])  # an epoch's order depends on (seed, epoch) only
    again = make(n_samples=250, batch_size=32, batches_per_step=2).train_dataloader()
    assert torch.equal(epoch_rows(again, 1), epochs[1])
    X, y = dm.splits["train"]
    other_seed = TensorBatches(X, y, batch_size=32, shuffle=True, seed=43, group=2)
    assert not torch.equal(epoch_rows(other_seed, 0), epochs[0])  # same data, another shuffling seed
    dm.serve_members([(0, 1)])  # the same data for a model member of another seed: its own order
    assert not torch.equal(epoch_rows(dm.train_dataloader(), 0), epochs[0])


def test_training_batches_come_in_groups_of_mini_batches():
    dm = make(n_samples=250, batch_size=32, batches_per_step=2)
    loader = dm.train_dataloader()
    groups = list(loader)
    assert len(loader) == len(groups) == 3
    assert [[x.shape[1] for x, _, _ in group] for group in groups] == [[32, 32], [32, 32], [22]]
    x, y, counts = groups[0][0]
    assert x.shape == (1, 32, 2) and y.shape == (1, 32) and counts is None  # one member, all rows real
    x, y = x[0], y[0]
    # features and targets stay paired through the shuffle
    X_train, y_train = dm.splits["train"]
    row = int(torch.nonzero((X_train == x[0]).all(1))[0])
    assert y_train[row] == y[0]


@pytest.mark.parametrize("n_samples", [250, 255])
def test_ddp_shards_are_disjoint_equal_sized_and_drawn_from_one_permutation(n_samples):
    """What each of 2 ranks would be served: one epoch permutation split across ranks."""
    dm = make(n_samples=n_samples, batch_size=16, test_fraction=0.2, val_fraction=0.2)
    X_train = dm.splits["train"][0]
    n = len(X_train)
    shards = []
    for rank in range(2):
        loader = TensorBatches(
            *dm.splits["train"], batch_size=16, shuffle=True, seed=42, group=1, rank=rank, world_size=2
        )
        shards.append(epoch_rows(loader, 3))
    assert len(shards[0]) == len(shards[1]) == -(-n // 2)
    both = torch.cat(shards)
    assert torch.equal(torch.unique(both, dim=0), torch.unique(X_train, dim=0))  # no sample lost
    permutation = X_train[epoch_permutation(n, 42, 3)]
    assert torch.equal(shards[0][: n // 2], permutation[0::2][: n // 2])  # rank r takes every 2nd sample
    assert torch.equal(shards[1][: n // 2], permutation[1::2][: n // 2])
    if n % 2 == 0:
        assert len(torch.unique(both, dim=0)) == n  # disjoint
    else:
        assert torch.equal(shards[1][-1], permutation[0])  # padded by wrapping around, like DistributedSampler


def test_training_batches_never_end_with_a_lone_sample():
    X, y = torch.randn(65, 2), torch.zeros(65)
    sizes = [len(x) for group in TensorBatches(X, y, batch_size=16, shuffle=True, group=2) for x, _ in group]
    assert sizes == [16, 16, 16, 17]
    assert len(TensorBatches(X, y, batch_size=16, shuffle=True, group=1)) == 4
    evaluation = [len(b[0]) for b in TensorBatches(X, y, batch_size=16)]  # evaluation keeps its batches
    assert evaluation == [16, 16, 16, 16, 1]


def test_eval_and_predict_batches_keep_split_order():
    dm = make(n_samples=300, eval_batch_size=16)
    X_test, y_test = dm.splits["test"]
    batches = list(dm.predict_dataloader())
    assert [len(b[0]) for b in batches] == [16, 16, 16, 12]
    assert torch.equal(torch.cat([b[0] for b in batches]), X_test)
    assert torch.equal(torch.cat([b[2] for b in batches]), torch.arange(len(y_test)))
    assert torch.equal(torch.cat([b[1] for b in dm.test_dataloader()]), y_test)


def test_setup_is_idempotent():
    dm = make(n_samples=100)
    first = dm.splits["train"][0]
    dm.setup("test")
    assert dm.splits["train"][0] is first


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


def test_a_split_of_fewer_than_two_samples_is_refused_in_one_line():
    """Three rows cannot give train, validation and test splits a loss and R2 can be computed on."""
    from trainlab.data import FileDataModule

    Path("three.csv").write_text("x,y\n0.1,1.5\n0.4,2.5\n0.9,0.5\n")
    data = FileDataModule("three.csv", "y", task="regression")
    with pytest.raises(
        UserError, match=r"3 samples give train/val/test splits of 1/1/1; the train split needs at least 2"
    ):
        data.setup()
