"""A study's results: best_config.yaml reproduces the best trial."""

from pathlib import Path

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


def test_figures_are_drawn_again_only_when_the_trials_they_show_change():
    """A rerun that finished no new trial (or a second worker ending the same study) keeps the figures; a new
    trial or a damaged record draws them again."""
    import optuna

    from trainlab.tuning.config import load_tune_config
    from trainlab.tuning.results import save_figures
    from trainlab.tuning.study import Search

    search = Search(
        load_tune_config(tune_config("figures", {"model.init_args.lr": [0.1, 0.01, 0.001]}, sampler="grid")),
        "val/loss",
        "minimize",
        8,
    )
    study = optuna.create_study()
    lr = optuna.distributions.CategoricalDistribution([0.1, 0.01, 0.001])

    def add_trial(value: float, lr_value: float) -> None:
        study.add_trial(
            optuna.trial.create_trial(
                params={"model.init_args.lr": lr_value},
                distributions={"model.init_args.lr": lr},
                value=value,
                intermediate_values={1: value + 0.1, 2: value},
            )
        )

    def drawn() -> dict:
        files = save_figures(study, search, Path("plots"), with_importances=False)
        assert files and all(f.suffix == ".png" for f in files)
        return {f.name: f.stat().st_ino for f in files}  # written atomically: a redrawn file is a new file

    add_trial(0.5, 0.1)
    add_trial(0.4, 0.01)
    first = drawn()
    assert {"optimization_history.png", "slices.png", "learning_curves.png"} <= set(first)
    assert drawn() == first  # nothing changed: nothing drawn
    add_trial(0.3, 0.001)
    second = drawn()
    assert second.keys() == first.keys() and all(second[name] != first[name] for name in first)
    Path("plots/.drawn-from").write_text("{torn")
    assert drawn()["slices.png"] != second["slices.png"]
