"""`trainlab tune`: a grid's trials ranked, each a real run, the study's plots, and the same command again
re-runs nothing."""

import pytest
import yaml

from tests.helpers import run_cli
from tests.tuning.helpers import SMALL, STUDY, leaderboard, load_study, tune_config
from trainlab.reporting.report import read_curves


@pytest.mark.slow
def test_grid_over_three_learning_rates_runs_three_trials_ranked_and_resumes_without_rerunning(capsys):
    overrides = {**SMALL, "run.test_after_fit": True}  # trials test only when asked
    path = tune_config("lr", {"model.init_args.lr": [0.1, 0.01, 0.001]}, sampler="grid", overrides=overrides)
    assert run_cli("tune", "-c", path) == 0
    rows = leaderboard("lr")
    assert [r["state"] for r in rows] == ["COMPLETE"] * 3
    assert sorted(float(r["lr"]) for r in rows) == [0.001, 0.01, 0.1]
    values = [float(r["val/loss"]) for r in rows]
    assert values == sorted(values)  # ranked, best (lowest loss) first
    for row in rows:  # each trial is a real run: its value is the best val/loss its TensorBoard curve holds
        run_dir = STUDY / "lr" / "trials" / f"trial_{int(row['trial']):04d}"
        saved = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert saved["model"]["init_args"]["lr"] == float(row["lr"])
        assert saved["run"]["monitor"] == "val/loss"
        assert min(read_curves(run_dir)["val/loss"][1]) == pytest.approx(float(row["val/loss"]), rel=1e-6)
        assert "test/accuracy" in row and (run_dir / "metrics.json").exists()
    assert {p.name for p in (STUDY / "lr" / "plots").glob("*.png")} >= {
        "optimization_history.png",
        "slices.png",
        "learning_curves.png",
    }
    assert "best: trial" in capsys.readouterr().out

    # The same command again: the study is complete, nothing is re-run.
    assert run_cli("tune", "-c", path) == 0
    assert len(load_study("lr").trials) == 3
    assert leaderboard("lr") == rows
    assert len(list((STUDY / "lr" / "trials").iterdir())) == 3
