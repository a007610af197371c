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

from pathlib import Path

from trainlab.run import RunResult, run


def fit(config: str | Path | dict, callbacks=(), **overrides) -> RunResult:
    """Train (and, unless run.test_after_fit is false, test) as `trainlab fit -c CONFIG`; `callbacks` are
    added to the Trainer's.

    >>> trainlab.fit("configs/default.yaml", model__init_args__dropout=0.2).metrics["test/f1"]
    """
    return run("fit", config, None, overrides, callbacks)


def validate(config: str | Path | dict, ckpt_path: str | Path, **overrides) -> RunResult:
    """Evaluate a checkpoint on the validation split, as `trainlab validate`."""
    return run("validate", config, ckpt_path, overrides)


def test(config: str | Path | dict, ckpt_path: str | Path, **overrides) -> RunResult:
    """Evaluate a checkpoint on the test split, as `trainlab test`; metrics as in metrics.json."""
    return run("test", config, ckpt_path, overrides)


test.__test__ = False  # not a pytest test, although it is called test


def predict(config: str | Path | dict, ckpt_path: str | Path, **overrides) -> RunResult:
    """Predict the configured split with a checkpoint, as `trainlab predict`; `.predictions` holds the table."""
    return run("predict", config, ckpt_path, overrides)


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
    comparison page `out` (a file, or a folder for comparison.html in it). Returns the pages written; a
    directory that is not a reportable run raises."""
    from trainlab.reporting.command import build_reports

    return build_reports([Path(d) for d in run_dirs], Path(out))


__all__ = ["RunResult", "cross_validate", "fit", "predict", "report", "test", "tune", "validate"]
