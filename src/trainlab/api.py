"""trainlab from Python: the CLI's commands as functions, on the same code path (the same LightningCLI,
configs and dotted keys), returning results as Python objects.

    >>> import trainlab
    >>> result = trainlab.fit("configs/seed.yaml", **{"model.init_args.lr": 0.1, "trainer.max_epochs": 20})
    >>> result.metrics["test/accuracy"], result.run_dir
    >>> tested = trainlab.test("configs/seed.yaml", result.last_checkpoint)
    >>> predicted = trainlab.predict("configs/seed.yaml", result.last_checkpoint)
    >>> predicted.predictions["probability"][:5]

Overrides are the CLI's dotted keys (`**{"model.init_args.lr": 0.1}`), or the same with `__` for the dots
(`model__init_args__lr=0.1`). A config is a path or a dict shaped like a config file. Bad input raises
trainlab.errors.UserError with the message the CLI prints.
"""

import csv
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from trainlab.errors import as_user_error
from trainlab.io import read_json_if_exists


@dataclass
class RunResult:
    """What a command left: its run directory and what it measured.

    Attributes:
        run_dir: lightning_logs/<name>/version_N.
        metrics: keyed like metrics.json (test/...) after fit (when it tests) and test; the logged values
            (val/... for validate) otherwise.
        best_checkpoint, last_checkpoint: after fit, the checkpoint files (None without checkpointing).
        best_score: after fit, the best value of run.monitor, the one that chose best_checkpoint.
        diagnosis: the doctor's verdict, evidence and remedies after fit (diagnosis.json), else None.
        predictions: after predict, predictions.csv as {column: numpy array}, one entry per sample, in order.
    """

    run_dir: Path
    metrics: dict[str, float]
    best_checkpoint: Path | None = None
    last_checkpoint: Path | None = None
    best_score: float | None = None
    diagnosis: dict | None = None
    predictions: dict[str, np.ndarray] | None = None


def fit(config: str | Path | dict, callbacks=(), **overrides) -> RunResult:
    """Train (and, unless run.test_after_fit is false, test) as `trainlab fit -c CONFIG`; `callbacks` are
    added to the Trainer's.

    >>> trainlab.fit("configs/default.yaml", model__init_args__dropout=0.2).metrics["test/f1"]
    """
    return _run("fit", config, None, overrides, callbacks)


def validate(config: str | Path | dict, ckpt_path: str | Path, **overrides) -> RunResult:
    """Evaluate a checkpoint on the validation split, as `trainlab validate`."""
    return _run("validate", config, ckpt_path, overrides)


def test(config: str | Path | dict, ckpt_path: str | Path, **overrides) -> RunResult:
    """Evaluate a checkpoint on the test split, as `trainlab test`; metrics as in metrics.json."""
    return _run("test", config, ckpt_path, overrides)


test.__test__ = False  # not a pytest test, although it is called test


def predict(config: str | Path | dict, ckpt_path: str | Path, **overrides) -> RunResult:
    """Predict the configured split with a checkpoint, as `trainlab predict`; `.predictions` holds the table."""
    return _run("predict", config, ckpt_path, overrides)


def tune(config: str | Path, **settings):
    """Run (or resume) a study as `trainlab tune -c CONFIG`; settings replace the tune config's own
    (workers, storage, n_trials, timeout, ...). Returns a TuneResult: the best trial's number, value,
    config values and best_config.yaml, and the leaderboard.

    >>> trainlab.tune("configs/tune/lr_challenge.yaml").best_params
    """
    from trainlab.tuning.config import load_tune_config
    from trainlab.tuning.search import run_search

    return run_search(load_tune_config(config, **settings))


def cross_validate(config: str | Path, folds: int = 5, **options):
    """K-fold cross-validation as `trainlab cv -c CONFIG --folds K`; options: repeats, seed, stratify
    (auto, true, false), workers, tune (a tune config: nested CV), name, overrides (a dict of dotted keys).
    Returns a CVResult: per-fold metrics, their mean and std, out-of-fold metrics and predictions.

    >>> trainlab.cross_validate("configs/default.yaml", folds=5).mean["test/accuracy"]
    """
    from trainlab.cv.run import cross_validate as run

    return run(config, folds=folds, **options)


def report(*run_dirs: str | Path, out: str | Path = "comparison.html") -> list[Path]:
    """Rebuild report.html of run directories, as `trainlab report`; with several runs, also the
    comparison page `out`. Returns the pages written; a directory that is not a reportable run raises."""
    from trainlab.reporting.command import build_reports

    return build_reports([Path(d) for d in run_dirs], Path(out))


def _run(command: str, config, ckpt_path, overrides: dict, callbacks=()) -> RunResult:
    from trainlab.callbacks import LastCheckpoint
    from trainlab.lightning_cli import override_args, run_lightning_cli

    with _config_path(config) as path:
        args = [command, "-c", str(path)]
        if ckpt_path is not None:
            args += ["--ckpt_path", str(ckpt_path)]
        args += override_args(overrides)
        try:
            cli = run_lightning_cli(args, callbacks)
        except Exception as error:
            user_error = as_user_error(error)
            if user_error is not None:
                raise user_error from None
            raise
    trainer = cli.trainer
    run_dir = Path(trainer.log_dir)
    result = RunResult(
        run_dir=run_dir,
        metrics=read_json_if_exists(run_dir / "metrics.json")
        or {key: float(value) for key, value in trainer.callback_metrics.items()},
    )
    if command == "fit":
        checkpoint = trainer.checkpoint_callback  # the best one's (see TrainlabCLI.instantiate_trainer)
        result.best_checkpoint = Path(checkpoint.best_model_path) if checkpoint and checkpoint.best_model_path else None
        last = [c.path for c in trainer.checkpoint_callbacks if isinstance(c, LastCheckpoint)]
        result.last_checkpoint = last[0] if last else None
        score = checkpoint.best_model_score if checkpoint else None
        result.best_score = float(score) if score is not None else None
        result.diagnosis = read_json_if_exists(run_dir / "diagnosis.json")
    if command == "predict":
        with open(run_dir / "predictions.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        result.predictions = {key: _column([row[key] for row in rows]) for key in rows[0]}
    return result


def _column(values: list[str]) -> np.ndarray:
    """A predictions.csv column as numbers (NaN where empty), or as text when it holds labels."""
    try:
        return np.array([float(v) if v != "" else np.nan for v in values])
    except ValueError:
        return np.array(values, dtype=object)


@contextmanager
def _config_path(config):
    """A config file's path: the given one, or a temporary file holding a dict config."""
    if isinstance(config, dict):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "config.yaml"
            path.write_text(yaml.safe_dump(config))
            yield path
    else:
        yield Path(config)
