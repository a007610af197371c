"""The training doctor against a labelled suite of failure scenarios: each a small real fit whose truth is
known by construction; prints the confusion matrix of verdicts against truth and per-verdict precision and
recall. Writes benchmarks/results/doctor.md and .json.

    .venv/bin/python benchmarks/doctor.py            # every scenario
    .venv/bin/python benchmarks/doctor.py dead       # the scenarios whose name contains "dead"
"""

import json
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def config(model: dict | None = None, data: dict | None = None, epochs: int = 40, **run) -> dict:
    """A small fit: a 2-layer ReLU MLP with Adam on 1,000 samples of make_classification (or `data`), with a
    validation split; `data` with a class_path is another data module's arguments."""
    data = dict(data or {})
    if "class_path" in data:
        data_config = {"class_path": data.pop("class_path"), "init_args": data}
    else:
        defaults = {"n_samples": 1000, "n_features": 10, "n_informative": 5, "seed": 0}
        data_config = {"class_path": "trainlab.data.SyntheticDataModule", "init_args": {**defaults, **data}}
    return {
        "seed_everything": 0,
        "trainer": {"max_epochs": epochs, "enable_progress_bar": False, "enable_model_summary": False},
        "model": {
            "class_path": "trainlab.models.MLPModule",
            "init_args": {"hidden_dims": [32, 16], "lr": 0.01, **(model or {})},
        },
        "data": data_config,
        "run": {"report": False, "verbose": False, "test_after_fit": False, "summary_every": 0, **run},
    }


def seed(lr: float, epochs: int) -> dict:
    """configs/seed.yaml (the chapter's experiment: no validation split, the test split watched) at this lr."""
    import yaml

    cfg = yaml.safe_load((Path(__file__).parents[1] / "configs" / "seed.yaml").read_text())
    cfg["model"]["init_args"]["lr"] = lr
    cfg["trainer"].update(max_epochs=epochs, enable_progress_bar=False, enable_model_summary=False)
    cfg["run"].update(report=False, verbose=False, test_after_fit=False, summary_every=0)
    return cfg


def bundled(name: str) -> dict:
    return {"class_path": "trainlab.data.BundledDataModule", "name": name}


DEEP = [64] * 8
TINY = {"n_samples": 120, "n_features": 20, "n_informative": 3, "flip_y": 0.1}
# name: (truth, config). The truth holds by construction; the comment says why where it is not obvious.
SCENARIOS = {
    # healthy: a model that fits and generalises, on several datasets and all three tasks
    "healthy/binary": ("healthy", config(early_stopping={"patience": 5})),
    "healthy/moons": ("healthy", config(data={"generator": "moons", "noise": 0.2, "n_features": 2})),
    "healthy/multiclass": (
        "healthy",
        config(data={"n_classes": 4, "n_informative": 6}, early_stopping={"patience": 5}),
    ),
    "healthy/blobs-near-zero-loss": (
        "healthy",
        config(data={"generator": "blobs", "n_classes": 3, "cluster_std": 0.5}),
    ),
    "healthy/regression": ("healthy", config(data={"generator": "regression", "noise": 5.0})),
    "healthy/friedman1": ("healthy", config(data={"generator": "friedman1", "noise": 0.5})),
    "healthy/breast-cancer": (
        "healthy",
        config(data=bundled("breast_cancer"), epochs=30, early_stopping={"patience": 5}),
    ),
    "healthy/wine": ("healthy", config(data=bundled("wine"), epochs=60)),
    # overfitting: tiny data, a wide net, no regularisation, long training
    "overfit/tiny-binary": ("overfitting", config(model={"hidden_dims": [256, 256]}, data=TINY, epochs=150)),
    "overfit/tiny-regression": (
        "overfitting",
        config(
            model={"hidden_dims": [256, 256]},
            data={"generator": "regression", "n_samples": 80, "n_features": 30, "noise": 30.0},
            epochs=300,
        ),
    ),
    "overfit/noisy-labels": (  # a quarter of the labels flipped: a wide net memorises them
        "overfitting",
        config(model={"hidden_dims": [256, 256]}, data={"n_samples": 300, "flip_y": 0.5}, epochs=200),
    ),
    # underfitting: too small a model for the data, or weight decay that pins the weights
    "underfit/tiny-net-circles": (
        "underfitting",
        config(model={"hidden_dims": [1]}, data={"generator": "circles", "noise": 0.05, "n_features": 2}),
    ),
    "underfit/tiny-net-multiclass": (
        "underfitting",
        config(model={"hidden_dims": [1]}, data={"n_classes": 5, "n_informative": 8, "n_features": 10}),
    ),
    "underfit/heavy-weight-decay": (
        "underfitting",
        config(model={"optimizer": "adamw", "weight_decay": 50.0}, data={"generator": "moons", "n_features": 2}),
    ),
    # too low a learning rate: the weights barely move
    "lr-too-low/sgd-binary": ("learning_rate_too_low", config(model={"optimizer": "sgd", "lr": 1e-6})),
    "lr-too-low/adam-regression": (
        "learning_rate_too_low",
        config(model={"lr": 1e-7}, data={"generator": "regression", "noise": 5.0}),
    ),
    # too high a learning rate, at several magnitudes
    "lr-too-high/diverges-sgd": (
        "diverged",
        config(model={"optimizer": "sgd", "lr": 5.0}, data={"generator": "regression", "noise": 5.0}),
    ),
    "lr-too-high/unstable-rmsprop": (  # tanh cannot die: the loss climbs back up instead
        "unstable",
        config(model={"activation": "tanh", "optimizer": "rmsprop", "lr": 0.3}, data={"n_classes": 3}),
    ),
    "lr-too-high/unstable-regression": (
        "unstable",
        config(model={"activation": "leaky_relu", "lr": 0.3}, data={"generator": "friedman1", "noise": 0.5}),
    ),
    "lr-too-high/dead-relu-sgd-momentum": (
        "dead_units",
        config(model={"optimizer": "sgd", "lr": 3.0, "momentum": 0.9}),
    ),
    "lr-too-high/dead-relu-adam-multiclass": ("dead_units", config(model={"lr": 1.0}, data={"n_classes": 3})),
    "lr-too-high/dead-relu": ("dead_units", config(model={"lr": 50.0})),
    "lr-too-high/dead-relu-seed": (
        "dead_units",
        config(model={"lr": 50.0, "hidden_dims": [10]}, data={"n_features": 2, "n_informative": 2}),
    ),
    "lr-too-high/diverges-shallow-sgd": (
        "diverged",
        config(model={"optimizer": "sgd", "lr": 0.5, "hidden_dims": [16]}, data={"generator": "regression"}),
    ),
    # the chapter's seed experiment (no validation split) at learning rates far too high
    "lr-too-high/seed-lr50": ("dead_units", seed(lr=50.0, epochs=30)),
    "lr-too-high/seed-lr1": ("dead_units", seed(lr=1.0, epochs=100)),  # most of its 10 ReLU units die
    # exploding gradients: a deep net without normalisation
    "exploding/deep-sgd": (
        "exploding_gradients",
        config(
            model={"hidden_dims": DEEP, "optimizer": "sgd", "lr": 0.01, "init": "kaiming"},
            data={"generator": "regression", "noise": 1.0},
        ),
    ),
    "exploding/deep-sgd-classifier": (
        "exploding_gradients",
        config(model={"hidden_dims": DEEP, "optimizer": "sgd", "lr": 0.5, "momentum": 0.9, "init": "kaiming"}),
    ),
    "lr-too-high/unstable-deep-adam": (  # the loss falls to 5, then climbs back up
        "unstable",
        config(model={"hidden_dims": DEEP, "lr": 0.05}, data={"generator": "regression", "noise": 1.0}),
    ),
    # vanishing gradients: sigmoid through a deep net
    "vanishing/deep-sigmoid": (
        "vanishing_gradients",
        config(model={"hidden_dims": [32] * 10, "activation": "sigmoid", "optimizer": "sgd", "lr": 0.01}),
    ),
    "vanishing/deep-sigmoid-multiclass": (
        "vanishing_gradients",
        config(
            model={"hidden_dims": [32] * 10, "activation": "sigmoid", "optimizer": "sgd", "lr": 0.01},
            data={"n_classes": 3},
        ),
    ),
    # class imbalance where accuracy misleads: 95/5 classes, accuracy monitored, the model predicts the majority
    "imbalance/accuracy-misleads": (
        "imbalance",
        config(
            model={"hidden_dims": [4], "lr": 0.001},
            data={"weights": [0.95], "flip_y": 0.0, "class_sep": 0.3},
            monitor="val/accuracy",
            epochs=20,
        ),
    ),
    "imbalance/rare-class": (
        "imbalance",
        config(
            model={"hidden_dims": [4], "lr": 0.001},
            data={"weights": [0.97], "flip_y": 0.0, "class_sep": 0.2, "n_samples": 2000},
            monitor="val/accuracy",
            epochs=15,
        ),
    ),
}


def diagnose_scenario(name: str) -> dict:
    """Fit the scenario in a temporary directory; its diagnosis (verdict, evidence, remedies)."""
    import trainlab

    truth, cfg = SCENARIOS[name]
    with tempfile.TemporaryDirectory() as folder:
        cfg = json.loads(json.dumps(cfg))
        cfg["trainer"]["logger"] = {
            "class_path": "lightning.pytorch.loggers.CSVLogger",
            "init_args": {"save_dir": folder, "name": "doctor"},
        }
        cfg["trainer"]["enable_checkpointing"] = False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                result = trainlab.fit(cfg)
                diagnosis = result.diagnosis
            except trainlab.errors.TrainingFailed:  # a non-finite loss stops the fit; the doctor wrote its verdict
                runs = sorted(Path(folder).glob("doctor/version_*/diagnosis.json"))
                diagnosis = json.loads(runs[-1].read_text())
    return {"name": name, "truth": truth, **diagnosis}


def confusion(rows: list[dict]) -> tuple[list[str], dict]:
    labels = sorted({r["truth"] for r in rows} | {r["verdict"] for r in rows})
    counts = Counter((r["truth"], r["verdict"]) for r in rows)
    return labels, counts


def scores(rows: list[dict], labels: list[str]) -> dict[str, dict]:
    out = {}
    for label in labels:
        tp = sum(r["truth"] == label and r["verdict"] == label for r in rows)
        called = sum(r["verdict"] == label for r in rows)
        actual = sum(r["truth"] == label for r in rows)
        out[label] = {
            "precision": tp / called if called else None,
            "recall": tp / actual if actual else None,
            "scenarios": actual,
        }
    return out


def table(rows: list[dict]) -> str:
    labels, counts = confusion(rows)
    short = {label: label[:12] for label in labels}
    lines = ["truth \\ verdict | " + " | ".join(short[v] for v in labels), "---|" + "---|" * len(labels)]
    for truth in labels:
        lines.append(f"{truth} | " + " | ".join(str(counts[(truth, v)] or ".") for v in labels))
    lines += ["", "verdict | precision | recall | scenarios", "---|---|---|---"]
    for label, s in scores(rows, labels).items():
        fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
        lines.append(f"{label} | {fmt(s['precision'])} | {fmt(s['recall'])} | {s['scenarios']}")
    wrong = [r for r in rows if r["verdict"] != r["truth"]]
    lines += ["", f"right: {len(rows) - len(wrong)} of {len(rows)}"]
    lines += [f"- {r['name']}: truth {r['truth']}, verdict {r['verdict']}" for r in wrong]
    return "\n".join(lines)


def main(pattern: str = "") -> None:
    started = time.perf_counter()
    rows = []
    for name in SCENARIOS:
        if pattern in name:
            row = diagnose_scenario(name)
            rows.append(row)
            mark = "ok " if row["verdict"] == row["truth"] else "XX "
            print(f"{mark}{name}: {row['verdict']}  {json.dumps(row['evidence'], default=str)[:300]}", flush=True)
    elapsed = time.perf_counter() - started
    text = table(rows) + f"\n\n{len(rows)} scenarios in {elapsed:.0f} s (one process, after imports)\n"
    print(text)
    if not pattern:
        RESULTS.mkdir(exist_ok=True)
        command = "`.venv/bin/python benchmarks/doctor.py`"
        (RESULTS / "doctor.md").write_text(f"# The doctor against labelled scenarios\n\n{command}\n\n{text}")
        keep = ("name", "truth", "verdict", "evidence", "remedies")
        (RESULTS / "doctor.json").write_text(json.dumps([{k: r[k] for k in keep} for r in rows], indent=1, default=str))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "")
