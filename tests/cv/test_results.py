"""A cross-validation's results (trainlab.cv.results): per-fold metrics whose mean and standard deviation add
up, out-of-fold predictions (every sample once, in its fold) and their metrics, per repeat."""

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.model_selection import KFold, StratifiedKFold

from tests.cv.helpers import SMALL, cv_dir, read_csv
from tests.helpers import config, run_cli
from trainlab.data import SyntheticDataModule


def test_cv_end_to_end_classification_metrics_add_up():
    args = ["cv", "-c", config("seed"), "--folds", "3", "--seed", "5", *SMALL, "--run.early_stopping.patience", "3"]
    assert run_cli(*args) == 0
    folder = cv_dir("seed")
    summary = json.loads((folder / "cv_results.json").read_text())
    assert [(f["repeat"], f["fold"]) for f in summary["per_fold"]] == [(0, 0), (0, 1), (0, 2)]
    for key, mean in summary["mean"].items():
        values = [f["metrics"][key] for f in summary["per_fold"]]
        assert mean == pytest.approx(np.mean(values), abs=1e-12)
        assert summary["std"][key] == pytest.approx(np.std(values, ddof=1), abs=1e-12)
    for f in summary["per_fold"]:  # each fold's own run, with its fold and early stopping on its own val split
        saved = (Path(f["run_dir"]) / "config.yaml").read_text()
        assert "folds:" in saved and f"index: {f['fold']}" in saved
        assert json.loads((Path(f["run_dir"]) / "metrics.json").read_text()) == pytest.approx(f["metrics"])

    rows = read_csv(folder / "oof_predictions.csv")
    index = np.array([int(r["dataset_index"]) for r in rows])
    assert sorted(index) == list(range(1000))  # every sample once
    data = SyntheticDataModule(**seed_data())
    X, y = data.load_arrays()
    expected = {
        int(i): fold
        for fold, (_, test) in enumerate(StratifiedKFold(3, shuffle=True, random_state=5).split(X, y))
        for i in test
    }
    assert all(int(r["fold"]) == expected[int(r["dataset_index"])] for r in rows)
    target = np.array([int(r["target"]) for r in rows])
    assert (target == y[index]).all()
    probability = np.array([float(r["probability"]) for r in rows])
    predicted = np.array([int(r["prediction"]) for r in rows])
    oof = summary["oof"][0]["metrics"]
    assert oof["oof/accuracy"] == pytest.approx(skm.accuracy_score(target, predicted), abs=1e-6)
    assert oof["oof/precision"] == pytest.approx(skm.precision_score(target, predicted), abs=1e-6)
    assert oof["oof/recall"] == pytest.approx(skm.recall_score(target, predicted), abs=1e-6)
    assert oof["oof/f1"] == pytest.approx(skm.f1_score(target, predicted), abs=1e-6)
    assert oof["oof/auroc"] == pytest.approx(skm.roc_auc_score(target, probability), abs=1e-6)
    assert (predicted == (probability > 0.5)).all()
    assert "Held-out metrics per fold" in (folder / "report.html").read_text()


def seed_data() -> dict:
    import yaml

    return yaml.safe_load(Path(config("seed")).read_text())["data"]["init_args"]


def test_cv_regression_with_repeats():
    args = ["cv", "-c", config("regression"), "--folds", "2", "--repeats", "2", "--seed", "3"]
    assert run_cli(*args, "--trainer.max_epochs", "3", "--data.init_args.n_samples", "300") == 0
    folder = cv_dir("regression")
    summary = json.loads((folder / "cv_results.json").read_text())
    assert not summary["stratified"] and len(summary["per_fold"]) == 4
    rows = read_csv(folder / "oof_predictions.csv")
    for repeat in (0, 1):
        mine = [r for r in rows if int(r["repeat"]) == repeat]
        assert sorted(int(r["dataset_index"]) for r in mine) == list(range(300))
        folds = KFold(2, shuffle=True, random_state=3 + repeat).split(np.zeros(300))
        expected = {int(i): fold for fold, (_, test) in enumerate(folds) for i in test}
        assert all(int(r["fold"]) == expected[int(r["dataset_index"])] for r in mine)
        target = np.array([float(r["target"]) for r in mine])
        predicted = np.array([float(r["prediction"]) for r in mine])
        oof = summary["oof"][repeat]["metrics"]
        assert oof["oof/r2"] == pytest.approx(skm.r2_score(target, predicted), rel=1e-5)
        assert oof["oof/mae"] == pytest.approx(skm.mean_absolute_error(target, predicted), rel=1e-5)
