"""Nested cross-validation: a study inside each outer fold's training part, which never sees that fold."""

import json
from pathlib import Path

import pytest

from tests.cv.helpers import cv_dir, read_csv
from tests.helpers import config, run_cli
from tests.tuning.helpers import tune_yaml


@pytest.mark.slow
def test_nested_cv_tunes_inside_each_outer_fold_without_seeing_it():
    import yaml

    inner = tune_yaml(
        "inner",
        {"sampler": "grid", "overrides": {"trainer.max_epochs": 4}, "space": {"model.init_args.lr": [0.1, 0.001]}},
    )
    args = ["cv", "-c", config("seed"), "--folds", "2", "--tune", inner, "--data.init_args.val_fraction", "0.25"]
    assert run_cli(*args, "--trainer.max_epochs", "4") == 0
    folder = cv_dir("seed")
    summary = json.loads((folder / "cv_results.json").read_text())
    assert len(summary["per_fold"]) == 2
    for fold in summary["per_fold"]:
        assert fold["chosen"]["model.init_args.lr"] in (0.1, 0.001)
        outer = yaml.safe_load((Path(fold["run_dir"]) / "config.yaml").read_text())
        assert outer["model"]["init_args"]["lr"] == fold["chosen"]["model.init_args.lr"]  # chosen values, retrained
        trials = sorted((folder / "tuning" / f"fold_{fold['fold']}" / "trials").iterdir())
        assert len(trials) == 2
        for trial in trials:  # every trial trained inside the outer training part and never tested on the outer fold
            saved = yaml.safe_load((trial / "config.yaml").read_text())
            assert saved["data"]["init_args"]["folds"] == [{"k": 2, "index": fold["fold"], "seed": 0, "stratify": True}]
            assert saved["run"]["test_after_fit"] is False and not (trial / "metrics.json").exists()
        assert fold["metrics"]["test/accuracy"] > 0.5
    assert sorted(int(r["dataset_index"]) for r in read_csv(folder / "oof_predictions.csv")) == list(range(1000))
