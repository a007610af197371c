"""Helpers for the data tests: a set-up synthetic data module, and a CSV file with gaps and a text column and
the fit config that trains on it."""

import csv

import numpy as np

from trainlab.data import SyntheticDataModule


def make(**kwargs) -> SyntheticDataModule:
    dm = SyntheticDataModule(**kwargs)
    dm.setup("fit")
    return dm


COLUMNS = ["x1", "x2", "colour", "label"]


def write_csv(path: str, n: int = 300, seed: int = 0, target: bool = True, colours=("red", "green", "blue")):
    """x1 (with gaps), x2, colour (text) and label (yes/no, from the others)."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    colour = rng.choice(colours, size=n)
    label = np.where(x1 + 0.5 * x2 + (colour == "red") > 0.5, "yes", "no")
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS if target else COLUMNS[:-1])
        for i in range(n):
            row = ["" if i % 25 == 3 else f"{x1[i]:.5f}", f"{x2[i]:.5f}", colour[i]]
            writer.writerow(row + [label[i]] if target else row)
    return path


def csv_config(path: str = "train.csv", **data) -> dict:
    return {
        "seed_everything": 1,
        "trainer": {
            "max_epochs": 15,
            "logger": {"class_path": "lightning.pytorch.loggers.TensorBoardLogger", "init_args": {"name": "csv"}},
        },
        "model": {"class_path": "trainlab.models.MLPModule", "init_args": {"hidden_dims": [16], "lr": 0.01}},
        "data": {"class_path": "trainlab.data.FileDataModule", "init_args": {"path": path, "target": "label", **data}},
    }
