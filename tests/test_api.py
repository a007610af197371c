"""The Python API drives the CLI's code path: same configs, same keys, same results, same messages."""

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
import yaml

import trainlab
from conftest import QUIET, config, read_json, run_cli, run_dirs
from trainlab.errors import UserError

SHORT = {"trainer.max_epochs": 3, "trainer.enable_progress_bar": False, "run.report": False}
QUIET_API = {"trainer.enable_progress_bar": False}


@pytest.mark.slow
def test_last_ckpt_is_the_final_epoch_and_the_chapter_tests_it():
    # The seed config's val/loss is lowest at an earlier epoch: Lightning 2.6's save_last would have left
    # that epoch in last.ckpt, and test_ckpt last would then have tested it instead of the final model.
    fitted = trainlab.fit(config("seed"), **{"trainer.enable_progress_bar": False, "run.report": False})
    last = torch.load(fitted.last_checkpoint, weights_only=True)
    best = torch.load(fitted.best_checkpoint, weights_only=True)
    assert last["epoch"] == 99 and last["global_step"] == 100 * 25  # 800 training samples in batches of 32
    assert best["epoch"] < 99  # the premise: the best epoch is not the last
    assert trainlab.test(config("seed"), fitted.last_checkpoint, **QUIET_API).metrics == fitted.metrics


def test_the_python_api_shows_no_progress_bar_unless_asked(capsys):
    short = {"trainer.max_epochs": 2, "run.report": False}
    trainlab.fit(config("seed"), **short)
    assert "Training" not in capsys.readouterr().out  # a notebook cell or a log is no terminal
    trainlab.fit(config("seed"), trainer__enable_progress_bar=True, **short)
    assert "Training: 100%" in capsys.readouterr().out


class LastCheckpointProbe(pl.Callback):
    """Reads checkpoints/last.ckpt at the start of every epoch: which epoch it held then."""

    def __init__(self):
        self.held: list[int | None] = []

    def on_train_epoch_start(self, trainer, pl_module):
        path = Path(trainer.log_dir) / "checkpoints" / "last.ckpt"
        self.held.append(torch.load(path, weights_only=True)["epoch"] if path.exists() else None)


@pytest.mark.parametrize("every, held", [(0, [None, 0, 1, 2, 3]), (3600, [None, 0, 0, 0, 0])])
def test_last_ckpt_is_written_every_epoch_or_at_most_every_n_seconds_and_always_at_the_end(every, held):
    probe = LastCheckpointProbe()
    settings = {"trainer.max_epochs": 5, "run.last_checkpoint_every": every, "run.test_after_fit": False}
    fitted = trainlab.fit(config("seed"), callbacks=[probe], **QUIET_API, **settings)
    assert probe.held == held
    assert torch.load(fitted.last_checkpoint, weights_only=True)["epoch"] == 4  # the final epoch, either way


def test_last_ckpt_ends_with_an_early_stop():
    settings = {"data.init_args.val_fraction": 0.2, "run.early_stopping": {"patience": 1}, "run.test_after_fit": False}
    fitted = trainlab.fit(config("seed"), **QUIET_API, **settings)
    stopped = torch.load(fitted.last_checkpoint, weights_only=True)
    trained = len(fitted.diagnosis["history"]["train_loss"])
    assert trained < 100 and stopped["epoch"] == trained - 1  # it stopped early; last.ckpt holds that epoch
    assert stopped["global_step"] == trained * 19  # 600 training samples in batches of 32


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


class ThreadsProbe(pl.Callback):
    def on_train_epoch_start(self, trainer, pl_module):
        self.threads = torch.get_num_threads()


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({}, 1),  # the seed model's step is small: one thread
        ({"run.threads": 2}, 2),  # asked for
        ({"model.init_args.hidden_dims": [512, 512], "data.init_args.batch_size": 256}, "before"),  # large: torch's
    ],
)
def test_a_fit_chooses_its_cpu_threads_and_gives_them_back(overrides, expected):
    before = torch.get_num_threads()
    probe = ThreadsProbe()
    trainlab.fit(config("seed"), callbacks=[probe], **{**SHORT, "trainer.max_epochs": 1, **overrides})
    assert probe.threads == (before if expected == "before" else expected)
    assert torch.get_num_threads() == before
