"""Helpers for the cross-validation tests: short fold fits (SMALL), a cv run's folder and its CSV files."""

import csv
from pathlib import Path

SMALL = ["--trainer.max_epochs", "6", "--data.init_args.val_fraction", "0.2", "--run.test_ckpt", "best"]


def cv_dir(name: str, version: int = 0) -> Path:
    return Path("lightning_logs/cv", name, f"version_{version}")


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
