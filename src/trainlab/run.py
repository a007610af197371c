"""The run layer: one config (+ overrides) -> data, module and Trainer -> fit, validate, test or predict ->
a RunResult in memory. The Python API (trainlab.api), cross-validation and tuning all run fits through
here; the CLI runs the same LightningCLI (trainlab.lightning_cli) directly, for its console output."""

import csv
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from trainlab.errors import as_user_error
from trainlab.io import read_json_if_exists

# The fits that drivers run many of (folds, trials) are quiet: no progress bar, summary lines, tables or
# report of their own (the driver writes one for them all).
QUIET = {
    "trainer.enable_progress_bar": False,
    "trainer.enable_model_summary": False,
    "run.summary_every": 0,
    "run.report": False,
    "run.verbose": False,
}


def quiet_lightning() -> None:
    """Keep Lightning's per-Trainer notices (devices, seed) out of the way of a driver's own lines."""
    import logging

    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)


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


def run(command: str, config, ckpt_path=None, overrides: dict | None = None, callbacks=()) -> RunResult:
    """`trainlab COMMAND -c CONFIG [--ckpt_path FILE] [overrides]` in this process; bad input raises UserError."""
    from trainlab.callbacks import LastCheckpoint
    from trainlab.lightning_cli import override_args, run_lightning_cli

    with config_path(config) as path:
        args = [command, "-c", str(path)]
        if ckpt_path is not None:
            args += ["--ckpt_path", str(ckpt_path)]
        # From Python (the API, the drivers) no progress bar unless asked for: a notebook or a log is no terminal
        args += override_args({"trainer.enable_progress_bar": False, **(overrides or {})})
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
        result.predictions = {key: column([row[key] for row in rows]) for key in rows[0]}
    return result


def column(values: list[str]) -> np.ndarray:
    """A predictions.csv column as numbers (NaN where empty), or as text when it holds labels."""
    try:
        return np.array([float(v) if v != "" else np.nan for v in values])
    except ValueError:
        return np.array(values, dtype=object)


@contextmanager
def config_path(config):
    """A config file's path: the given one, or a temporary file holding a dict config."""
    if isinstance(config, dict):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "config.yaml"
            path.write_text(yaml.safe_dump(config))
            yield path
    else:
        yield Path(config)
