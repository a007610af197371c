"""A study's results: best_config.yaml reproduces the best trial."""

import pytest
import yaml

import trainlab
from tests.tuning.helpers import STUDY, leaderboard, tune_config


def test_best_config_reproduces_the_best_trial():
    path = tune_config("best", {"model.init_args.lr": [0.03, 0.003]}, sampler="grid")
    tuned = trainlab.tune(path)  # the Python API: the same study as `trainlab tune -c`
    best = leaderboard("best")[0]
    assert tuned.best_value == pytest.approx(float(best["val/loss"]))
    assert tuned.best_params == {"model.init_args.lr": float(best["lr"])}
    saved = STUDY / "best" / "best_config.yaml"
    assert tuned.best_config == saved
    assert yaml.safe_load(saved.read_text())["model"]["init_args"]["lr"] == float(best["lr"])
    result = trainlab.fit(str(saved), trainer__enable_progress_bar=False, run__report=False)
    assert result.best_score == pytest.approx(float(best["val/loss"]), rel=1e-6)
    assert result.run_dir.parts[:2] == ("lightning_logs", "seed")  # the base config's own logger, not the trial's
