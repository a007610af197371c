"""trainlab.sklearn: the estimators pass scikit-learn's own checks, work inside its tools, train on the path
`trainlab fit` takes (same weights for the same config and rows), and match its MLPs' accuracy."""

import os
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_breast_cancer, load_diabetes, make_classification, make_moons
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import trainlab
from tests.helpers import REPO, config
from trainlab.sklearn import TrainlabClassifier, TrainlabRegressor

FAST = {"hidden_dims": (16,), "lr": 0.01, "max_epochs": 10, "random_state": 0}
EXPECTED_FAILURES = {
    "check_sample_weight_equivalence_on_dense_data": (
        "mini-batch training: a row of weight 2 and the same row given twice fall in different batches (and "
        "an epoch has more steps with the copy), so the two fits agree in expectation only, as for "
        "MLPClassifier's sgd and adam solvers"
    )
}


@parametrize_with_checks(
    [TrainlabClassifier(**FAST), TrainlabRegressor(**FAST)],
    expected_failed_checks=lambda estimator: EXPECTED_FAILURES,
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def moons():
    X, y = make_moons(n_samples=400, noise=0.2, random_state=0)
    return train_test_split(X, y, test_size=0.25, random_state=0)


def test_params_are_stored_unchanged_and_clone_and_set_params_follow_them(moons):
    model = TrainlabClassifier(hidden_dims=[8, 4], lr=0.02, early_stopping=True)
    params = model.get_params()
    assert params["hidden_dims"] == [8, 4] and params["lr"] == 0.02 and params["max_epochs"] is None
    twin = clone(model)
    assert twin.get_params() == params and twin is not model
    model.set_params(lr=0.5, max_epochs=3)
    assert model.lr == 0.5 and model.get_params()["max_epochs"] == 3
    X_train, _, y_train, _ = moons
    model.set_params(early_stopping=False, random_state=0).fit(X_train, y_train)
    assert model.hidden_dims == [8, 4] and model.network_["hidden_dims"] == [8, 4] and model.n_iter_ == 3


def test_same_random_state_same_model_and_another_differs(moons):
    X_train, X_test, y_train, _ = moons
    a = TrainlabClassifier(**FAST).fit(X_train, y_train).predict_proba(X_test)
    b = TrainlabClassifier(**FAST).fit(X_train, y_train).predict_proba(X_test)
    c = TrainlabClassifier(**{**FAST, "random_state": 1}).fit(X_train, y_train).predict_proba(X_test)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3


def test_the_chapter_config_trains_the_weights_trainlab_fit_trains(tmp_path):
    """The estimator with configs/seed.yaml, on the chapter's 800 training rows in their order, predicts the
    chapter's test rows as `trainlab fit` + `trainlab predict` of the same config do."""
    from trainlab.data import SyntheticDataModule

    epochs = {"trainer.max_epochs": 5, "trainer.enable_progress_bar": False, "run.report": False}
    run = trainlab.fit(config("seed"), **epochs)
    cli = trainlab.predict(config("seed"), run.last_checkpoint, **{"trainer.enable_progress_bar": False})
    data = SyntheticDataModule(
        generator="classification", n_samples=1000, n_features=2, n_informative=2, n_redundant=0,
        n_clusters_per_class=1, val_fraction=0.0, test_fraction=0.2, stratify=False, seed=42,
    )  # fmt: skip
    data.setup()
    X, y = data.load_arrays()
    train, test = data.split_indices["train"], data.split_indices["test"]
    model = TrainlabClassifier(config=config("seed"), max_epochs=5).fit(X[train], y[train])
    assert model.network_["hidden_dims"] == [10] and model.n_iter_ == 5  # from the config, and overridden
    np.testing.assert_allclose(model.predict_proba(X[test])[:, 1], cli.predictions["probability"], rtol=1e-6)
    assert list(tmp_path.iterdir()) == [tmp_path / "lightning_logs"]  # trainlab fit's; the estimator wrote none


def test_explicit_params_override_the_config_and_bad_values_name_the_param(moons):
    X_train, _, y_train, _ = moons
    model = TrainlabClassifier(config=config("default"), hidden_dims=(5,), max_epochs=2, random_state=0)
    model.fit(X_train, y_train)
    assert model.network_["hidden_dims"] == [5] and model.network_["dropout"] == 0.1  # dropout: the config's
    assert model.best_epoch_ is not None  # the config's run.early_stopping
    with pytest.raises(ValueError, match=r"^lr=-1 is not allowed: a number > 0"):
        TrainlabClassifier(lr=-1, max_epochs=1).fit(X_train, y_train)
    with pytest.raises(ValueError, match=r"^max_epochs=0 is not allowed"):
        TrainlabClassifier(max_epochs=0).fit(X_train, y_train)
    with pytest.raises(ValueError, match=r"^validation_fraction=1.5 is not allowed"):
        TrainlabClassifier(early_stopping=True, validation_fraction=1.5).fit(X_train, y_train)
    with pytest.raises(ValueError, match=r"^batch_size=0 is not allowed"):
        TrainlabClassifier(batch_size=0, max_epochs=1).fit(X_train, y_train)
    with pytest.raises(ValueError, match="no such file"):
        TrainlabClassifier(config="missing.yaml").fit(X_train, y_train)


def test_bad_input_is_refused_naming_what_is_wrong(moons):
    X_train, X_test, y_train, _ = moons
    with pytest.raises(TypeError, match="sparse"):
        TrainlabClassifier(max_epochs=1).fit(scipy.sparse.csr_matrix(X_train), y_train)
    inf = X_train.copy()
    inf[3, 1] = np.inf
    with pytest.raises(ValueError, match=r"column '1', row 4: inf is not a finite number"):
        TrainlabClassifier(max_epochs=1).fit(inf, y_train)
    with pytest.raises(ValueError, match="Input y contains NaN"):
        TrainlabRegressor(max_epochs=1).fit(X_train, np.where(y_train == 1, np.nan, 0.0))
    with pytest.raises(ValueError, match="1 class"):
        TrainlabClassifier(max_epochs=1).fit(X_train, np.zeros(len(X_train)))
    model = TrainlabClassifier(max_epochs=1).fit(X_train, y_train)
    with pytest.raises(ValueError, match="X has 3 features, but TrainlabClassifier is expecting 2"):
        model.predict(np.column_stack([X_test, X_test[:, 0]]))


def test_early_stopping_keeps_the_best_epochs_weights_in_memory():
    X, y = make_classification(n_samples=120, n_features=20, n_informative=3, flip_y=0.2, random_state=0)
    params = {"hidden_dims": (64,), "lr": 0.02, "early_stopping": True, "patience": 3, "random_state": 0}
    stopped = TrainlabClassifier(max_epochs=100, **params).fit(X, y)
    history = stopped.history_
    best = stopped.best_epoch_
    assert history["val_epoch"][int(np.argmin(history["val_loss"]))] == best
    assert stopped.n_iter_ == best + 1 + 3 < 100  # it stopped `patience` epochs after its best
    # The same fit run for exactly best + 1 epochs ends with the weights the stopped fit kept.
    until_best = TrainlabClassifier(max_epochs=best + 1, **{**params, "patience": 1000}).fit(X, y)
    np.testing.assert_array_equal(stopped.predict_proba(X), until_best.predict_proba(X))


def test_dataframes_one_hot_encode_text_impute_gaps_and_keep_feature_names():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    n = 300
    colour = rng.choice(["red", "green", "blue"], n)
    size = rng.normal(size=n)
    y = np.where((colour == "red") ^ (size > 0), "churned", "stayed")
    frame = pd.DataFrame({"colour": colour, "size": size})
    frame.loc[::7, "size"] = np.nan
    frame.loc[::11, "colour"] = None
    model = TrainlabClassifier(hidden_dims=(16,), lr=0.02, max_epochs=30, random_state=0).fit(frame, y)
    assert list(model.feature_names_in_) == ["colour", "size"] and model.n_features_in_ == 2
    assert model.preprocessing_["encoder"]["levels"] == {"colour": ["blue", "green", "red"]}
    assert set(model.classes_) == {"churned", "stayed"} and model.score(frame, y) > 0.9
    # A gap is the training rows' median; an unknown category is no category at all, as in a file.
    median, mode = float(np.nanmedian(frame["size"])), frame["colour"].mode()[0]
    gaps = pd.DataFrame({"colour": [None, "purple"], "size": [np.nan, 0.5]})
    filled = pd.DataFrame({"colour": [mode, "purple"], "size": [median, 0.5]})
    np.testing.assert_array_equal(model.predict_proba(gaps), model.predict_proba(filled))
    # The same table as a NumPy array of objects trains the same model.
    array = TrainlabClassifier(hidden_dims=(16,), lr=0.02, max_epochs=30, random_state=0)
    array.fit(frame.to_numpy(dtype=object), y)
    np.testing.assert_array_equal(array.predict_proba(frame.to_numpy(dtype=object)), model.predict_proba(frame))
    with pytest.raises(ValueError, match="feature names should match"):
        model.predict(frame.rename(columns={"size": "weight"}))
    with pytest.raises(ValueError, match=r"X: column 'size', row 2: inf is not a finite number"):
        model.predict(pd.DataFrame({"colour": ["red", "red"], "size": [0.0, np.inf]}))
    when = frame.assign(size=pd.Timestamp("2026-01-01"))
    with pytest.raises(ValueError, match="input column 'size' holds dates or times"):
        TrainlabClassifier(max_epochs=1).fit(when, y)


def test_sample_weight_shifts_the_decision_towards_the_heavy_class(moons):
    X_train, X_test, y_train, _ = moons
    plain = TrainlabClassifier(**FAST).fit(X_train, y_train)
    heavy = TrainlabClassifier(**FAST).fit(X_train, y_train, sample_weight=np.where(y_train == 1, 10.0, 1.0))
    assert heavy.predict_proba(X_test)[:, 1].mean() > plain.predict_proba(X_test)[:, 1].mean() + 0.05
    same = TrainlabClassifier(**FAST).fit(X_train, y_train, sample_weight=np.full(len(y_train), 3.0))
    np.testing.assert_array_equal(same.predict_proba(X_test), plain.predict_proba(X_test))


def test_pickle_round_trip_predicts_the_same(moons):
    X_train, X_test, y_train, _ = moons
    model = TrainlabClassifier(**{**FAST, "ensemble": 3}).fit(X_train, y_train)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict_proba(X_test), model.predict_proba(X_test))
    assert len(again.network_["seeds"]) == 3


@pytest.mark.slow
def test_importing_and_unpickling_need_neither_lightning_nor_torch_until_predicting(moons, tmp_path):
    X_train, _, y_train, _ = moons
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(TrainlabClassifier(**FAST).fit(X_train, y_train)))
    script = (
        "import pickle, sys\n"
        "import trainlab.sklearn\n"
        "assert 'torch' not in sys.modules and 'lightning' not in sys.modules, 'import trainlab.sklearn'\n"
        f"model = pickle.loads(open({str(path)!r}, 'rb').read())\n"
        "assert 'lightning' not in sys.modules, 'unpickling'\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr


def test_pipeline_grid_search_cross_val_score_and_calibration(moons):
    X_train, X_test, y_train, y_test = moons
    quick = {"hidden_dims": (16,), "max_epochs": 5, "random_state": 0}
    pipe = make_pipeline(StandardScaler(), TrainlabClassifier(lr=0.01, **quick)).fit(X_train, y_train)
    assert pipe.score(X_test, y_test) > 0.8
    search = GridSearchCV(TrainlabClassifier(**quick), {"lr": [1e-5, 0.03]}, cv=2).fit(X_train, y_train)
    assert search.best_params_ == {"lr": 0.03} and search.best_estimator_.n_iter_ == 5
    scores = cross_val_score(TrainlabRegressor(lr=0.01, **quick), X_train, X_train[:, 0] * 2 + y_train, cv=3)
    assert len(scores) == 3 and scores.min() > 0.5
    calibrated = CalibratedClassifierCV(TrainlabClassifier(lr=0.01, **quick), cv=2).fit(X_train, y_train)
    probability = calibrated.predict_proba(X_test)
    np.testing.assert_allclose(probability.sum(1), 1.0)
    assert calibrated.score(X_test, y_test) > 0.8


def test_nothing_is_printed_or_written_by_default(moons, tmp_path, capfd):
    X_train, _, y_train, _ = moons
    TrainlabClassifier(**FAST).fit(X_train, y_train)
    out, err = capfd.readouterr()
    assert out == "" and err == "" and list(tmp_path.iterdir()) == []
    model = TrainlabClassifier(**FAST, verbose=1, log_dir=str(tmp_path / "tb")).fit(X_train, y_train)
    assert "Epoch [10/10], train/loss" in capfd.readouterr().out and any((tmp_path / "tb").rglob("events.*"))
    assert model.diagnosis_["verdict"] in ("healthy", "underfitting")
    assert len(model.history_["train_loss"]) == model.n_iter_ == 10 and model.history_["val_loss"] == []


def test_breast_cancer_accuracy_is_that_of_scikit_learns_mlp():
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    ours = TrainlabClassifier(hidden_dims=(32,), lr=1e-3, max_epochs=60, random_state=0).fit(X_train, y_train)
    reference = make_pipeline(
        StandardScaler(), MLPClassifier(hidden_layer_sizes=(32,), batch_size=32, max_iter=60, random_state=0)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its ConvergenceWarning
        reference.fit(X_train, y_train)
    accuracy = ours.score(X_test, y_test)
    assert accuracy > 0.95 and accuracy >= reference.score(X_test, y_test) - 0.02


def test_diabetes_r2_is_that_of_scikit_learns_mlp():
    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
    ours = TrainlabRegressor(hidden_dims=(32,), lr=1e-3, max_epochs=60, random_state=0).fit(X_train, y_train)
    reference = make_pipeline(
        StandardScaler(),
        MLPRegressor(hidden_layer_sizes=(32,), batch_size=32, max_iter=600, learning_rate_init=0.01, random_state=0),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference.fit(X_train, y_train)
    r2 = ours.score(X_test, y_test)
    assert r2 > 0.35 and r2 >= reference.score(X_test, y_test) - 0.05
