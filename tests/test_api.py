"""The Python API drives the CLI's code path: same configs, same keys, same results, same messages."""

from pathlib import Path

import numpy as np
import pytest
import yaml

import trainlab
from tests.helpers import QUIET, config, read_json, run_cli, run_dirs
from trainlab.errors import UserError

SHORT = {"trainer.max_epochs": 3, "trainer.enable_progress_bar": False, "run.report": False}
QUIET_API = {"trainer.enable_progress_bar": False}


def test_the_python_api_shows_no_progress_bar_unless_asked(capsys):
    short = {"trainer.max_epochs": 2, "run.report": False}
    trainlab.fit(config("seed"), **short)
    assert "Training" not in capsys.readouterr().out  # a notebook cell or a log is no terminal
    trainlab.fit(config("seed"), trainer__enable_progress_bar=True, **short)
    assert "Training: 100%" in capsys.readouterr().out


@pytest.mark.slow
def test_fit_test_predict_round_trip_matches_the_cli():
    assert run_cli("fit", "-c", config("default"), "--trainer.max_epochs", "3", *QUIET) == 0
    (cli_run,) = run_dirs("default")

    fitted = trainlab.fit(config("default"), **SHORT)
    assert fitted.run_dir != cli_run and fitted.metrics == read_json(cli_run / "metrics.json")
    assert set(fitted.metrics) == {
        "test/loss",
        "test/accuracy",
        "test/precision",
        "test/recall",
        "test/f1",
        "test/auroc",
    }
    assert fitted.best_checkpoint.exists() and fitted.last_checkpoint.name == "last.ckpt"
    assert fitted.diagnosis["verdict"] in ("healthy", "underfitting", "overfitting")

    tested = trainlab.test(config("default"), fitted.best_checkpoint, **{"trainer.enable_progress_bar": False})
    assert tested.metrics == fitted.metrics  # the fit tested its best checkpoint too

    predicted = trainlab.predict(config("default"), fitted.best_checkpoint, trainer__enable_progress_bar=False)
    p = predicted.predictions
    assert len(p["index"]) == 400 and np.array_equal(p["index"], np.arange(400))
    assert np.mean(p["prediction"] == p["target"]) == pytest.approx(tested.metrics["test/accuracy"], abs=1e-6)


def test_a_dict_config_and_double_underscore_overrides():
    settings = yaml.safe_load(open(config("seed")))
    settings["trainer"]["logger"]["init_args"]["name"] = "from_a_dict"
    result = trainlab.fit(settings, model__init_args__lr=0.05, **SHORT)
    assert result.run_dir.parts[-2] == "from_a_dict"
    saved = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert saved["model"]["init_args"]["lr"] == 0.05 and saved["trainer"]["max_epochs"] == 3


def test_bad_input_raises_the_cli_message(capsys):
    assert run_cli("fit", "-c", config("seed"), "--model.init_args.optimizer", "adagrad") == 2
    cli_message = capsys.readouterr().err.strip().removeprefix("trainlab: error: ")
    with pytest.raises(UserError) as raised:
        trainlab.fit(config("seed"), **{"model.init_args.optimizer": "adagrad"})
    assert str(raised.value) == cli_message
    with pytest.raises(UserError, match=r"^model.init_args.lr=-1.0 is not allowed"):
        trainlab.fit(config("seed"), model__init_args__lr=-1.0)
    with pytest.raises(UserError, match="--ckpt_path='nowhere.ckpt': no such file"):
        trainlab.test(config("seed"), "nowhere.ckpt")


def test_cross_validate_returns_what_the_cv_command_writes():
    result = trainlab.cross_validate(
        config("seed"),
        folds=3,
        seed=1,
        overrides={"trainer.max_epochs": 3, "data.init_args.val_fraction": 0.2, "run.test_ckpt": "best"},
    )
    saved = read_json(result.cv_dir / "cv_results.json")
    assert result.mean == saved["mean"] and result.std == saved["std"]
    assert result.oof_metrics == [o["metrics"] for o in saved["oof"]]
    assert sorted(result.predictions["dataset_index"].astype(int)) == list(range(1000))
    assert len(result.per_fold) == 3 and (result.cv_dir / "report.html").exists()
    with pytest.raises(UserError, match="--folds=1"):
        trainlab.cross_validate(config("seed"), folds=1)


@pytest.mark.slow
def test_report_rebuilds_pages_and_compares_runs():
    first = trainlab.fit(config("seed"), trainer__max_epochs=2, trainer__enable_progress_bar=False)
    second = trainlab.fit(
        config("seed"), trainer__max_epochs=2, trainer__enable_progress_bar=False, model__init_args__lr=0.1
    )
    (first.run_dir / "report.html").unlink()
    pages = trainlab.report(first.run_dir, second.run_dir, out="lr.html")
    assert pages == [first.run_dir / "report.html", second.run_dir / "report.html", Path("lr.html")]
    assert all(page.exists() for page in pages)
    assert "model.init_args.lr" in Path("lr.html").read_text()
    with pytest.raises(UserError, match="not a run directory"):
        trainlab.report("nowhere")
