"""K-fold cross-validation runs (trainlab.cv.run): the folds in two workers as in one, and a saved run config
as the base."""

import json

import pytest

from tests.cv.helpers import SMALL, cv_dir, read_csv
from tests.helpers import config, run_cli


@pytest.mark.slow
def test_two_workers_give_the_folds_one_worker_gives():
    args = ["cv", "-c", config("seed"), "--folds", "4", *SMALL]
    assert run_cli(*args, "--name", "one") == 0
    assert run_cli(*args, "--name", "two", "--workers", "2") == 0
    one = json.loads((cv_dir("one") / "cv_results.json").read_text())
    two = json.loads((cv_dir("two") / "cv_results.json").read_text())
    for a, b in zip(one["per_fold"], two["per_fold"], strict=True):
        assert a["metrics"] == pytest.approx(b["metrics"], abs=1e-4)
    assert (
        read_csv(cv_dir("two") / "oof_predictions.csv")[0].keys()
        == read_csv(cv_dir("one") / "oof_predictions.csv")[0].keys()
    )


def test_a_saved_run_config_is_a_base_for_cv():
    """A run directory's config.yaml (which records ckpt_path: null) cross-validates as its config did."""
    import trainlab

    fitted = trainlab.fit(
        config("seed"), **{"trainer.max_epochs": 1, "trainer.enable_progress_bar": False, "run.report": False}
    )
    result = trainlab.cross_validate(fitted.run_dir / "config.yaml", folds=2, overrides={"trainer.max_epochs": 1})
    assert len(result.per_fold) == 2 and "test/accuracy" in result.mean
