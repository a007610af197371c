"""Packed training, measured as a user runs it: whole commands (a new Python each, imports included),
side by side and interleaved, min/median/max over repeats, ratios of medians.

- chapter: `trainlab fit -c configs/seed.yaml`; `trainlab cv -c configs/seed.yaml --folds 5` packed and
  `--no-pack`; scikit-learn's 5-fold `cross_val_score` of MLPClassifier with the chapter's data, model
  (2-10-1, Adam, lr 0.01), batch (32) and epochs (100), as a script.
- wide: the same on 20,000 x 20 (make_classification, 10 informative), 20 epochs, batch 64.
- ensemble: `trainlab fit -c configs/seed.yaml --model.init_args.ensemble 8` against ensemble 1.
- folds: in one process after imports, `trainlab.cross_validate(configs/seed.yaml, folds=5)` packed and
  unpacked (the folds' own time).
- epoch: a fit's cost per extra epoch (the chapter config at 100 and 300 epochs, whole processes,
  subtracted: 200 extra epochs, so that a second of noise moves the figure by 5 ms, not 10) against the
  chapter's own plain PyTorch loop measured the same way.

    .venv/bin/python benchmarks/packed.py                  # every part, 3 repeats; writes results/packed.*
    .venv/bin/python benchmarks/packed.py --parts chapter --repeats 5
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BIN = Path(sys.executable).parent
TRAINLAB = [str(BIN / "trainlab")]
SEED = str(REPO / "configs" / "seed.yaml")
QUIET = ["--trainer.enable_progress_bar", "false"]
WIDE = ["--data.init_args.n_samples", "20000", "--data.init_args.n_features", "20"]
WIDE += ["--data.init_args.n_informative", "10", "--trainer.max_epochs", "20", "--data.init_args.batch_size", "64"]

SKLEARN_CV = """
import sys, warnings
from sklearn.datasets import make_classification
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
n, features, informative, epochs, batch = (int(a) for a in sys.argv[1:])
X, y = make_classification(n_samples=n, n_features=features, n_informative=informative, n_redundant=0,
                           n_clusters_per_class=1, random_state=42)
model = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(10,), solver="adam", learning_rate_init=0.01,
                      batch_size=batch, max_iter=epochs, tol=0.0, n_iter_no_change=epochs + 1, random_state=0))
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    scores = cross_val_score(model, X, y, cv=StratifiedKFold(5, shuffle=True, random_state=0))
print(f"accuracy {scores.mean():.4f}")
"""

PLAIN_LOOP = """
import sys, torch
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn, optim
from torch.utils.data import DataLoader, TensorDataset
epochs = int(sys.argv[1])
X, y = make_classification(n_samples=1000, n_features=2, n_informative=2, n_redundant=0, n_clusters_per_class=1,
                           random_state=42)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
scaler = StandardScaler()
X_train = torch.tensor(scaler.fit_transform(X_train), dtype=torch.float32)
X_test = torch.tensor(scaler.transform(X_test), dtype=torch.float32)
y_train = torch.tensor(y_train, dtype=torch.float32).view(-1, 1)
y_test = torch.tensor(y_test, dtype=torch.float32).view(-1, 1)
torch.manual_seed(42)
model = nn.Sequential(nn.Linear(2, 10), nn.ReLU(), nn.Linear(10, 1))
criterion = nn.BCEWithLogitsLoss()
optimizer = optim.Adam(model.parameters(), lr=0.01)
train_loader = DataLoader(TensorDataset(X_train, y_train), batch_size=32, shuffle=True)
for epoch in range(epochs):
    model.train()
    for inputs, labels in train_loader:
        optimizer.zero_grad()
        loss = criterion(model(inputs), labels)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        outputs = model(X_test)
        test_loss = criterion(outputs, y_test).item()
        accuracy = ((torch.sigmoid(outputs) > 0.5).float() == y_test).float().mean().item()
    if (epoch + 1) % 10 == 0:
        print(f"Epoch [{epoch + 1}/{epochs}], test loss {test_loss:.4f}, accuracy {accuracy:.4f}")
"""

IN_PROCESS = """
import json, sys, time
import trainlab
config = sys.argv[1]
trainlab.cross_validate(config, folds=2, overrides={"trainer.max_epochs": 1})  # first-use costs (lazy imports)
times = {}
for pack in (True, False):
    start = time.perf_counter()
    trainlab.cross_validate(config, folds=5, pack=pack)
    times["packed" if pack else "unpacked"] = time.perf_counter() - start
print(json.dumps(times))
"""


def timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{done.stderr[-2000:]}")
    return seconds


def commands(part: str) -> dict[str, list[str]]:
    python = [sys.executable, "-c"]
    if part == "chapter":
        return {
            "fit": [*TRAINLAB, "fit", "-c", SEED, *QUIET],
            "cv packed": [*TRAINLAB, "cv", "-c", SEED, "--folds", "5"],
            "cv unpacked": [*TRAINLAB, "cv", "-c", SEED, "--folds", "5", "--no-pack"],
            "scikit-learn cv": [*python, SKLEARN_CV, "1000", "2", "2", "100", "32"],
        }
    if part == "wide":
        return {
            "fit": [*TRAINLAB, "fit", "-c", SEED, *QUIET, *WIDE],
            "cv packed": [*TRAINLAB, "cv", "-c", SEED, "--folds", "5", *WIDE],
            "cv unpacked": [*TRAINLAB, "cv", "-c", SEED, "--folds", "5", "--no-pack", *WIDE],
            "scikit-learn cv": [*python, SKLEARN_CV, "20000", "20", "10", "20", "64"],
        }
    if part == "ensemble":
        return {
            "fit": [*TRAINLAB, "fit", "-c", SEED, *QUIET],
            "fit ensemble 8": [*TRAINLAB, "fit", "-c", SEED, *QUIET, "--model.init_args.ensemble", "8"],
        }
    if part == "epoch":
        return {
            "fit 100 epochs": [*TRAINLAB, "fit", "-c", SEED, *QUIET, "--trainer.max_epochs", "100"],
            "fit 300 epochs": [*TRAINLAB, "fit", "-c", SEED, *QUIET, "--trainer.max_epochs", "300"],
            "plain loop 100 epochs": [*python, PLAIN_LOOP, "100"],
            "plain loop 300 epochs": [*python, PLAIN_LOOP, "300"],
        }
    raise ValueError(part)


def spread(values: list[float]) -> dict:
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "runs": values}


def run_part(part: str, repeats: int) -> dict:
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(repeats):  # interleaved: each repeat runs every command once
            if part == "folds":
                out = (
                    subprocess.run(
                        [sys.executable, "-c", IN_PROCESS, SEED], cwd=folder, capture_output=True, text=True, check=True
                    )
                    .stdout.strip()
                    .splitlines()[-1]
                )
                for key, value in json.loads(out).items():
                    times.setdefault(key, []).append(value)
                continue
            for name, command in commands(part).items():
                times.setdefault(name, []).append(timed(command, Path(folder)))
    result = {name: spread(values) for name, values in times.items()}
    med = {name: r["median"] for name, r in result.items()}
    ratios = {}
    if part in ("chapter", "wide"):
        ratios = {
            "cv packed / fit": med["cv packed"] / med["fit"],
            "cv packed / scikit-learn cv": med["cv packed"] / med["scikit-learn cv"],
            "cv unpacked / cv packed": med["cv unpacked"] / med["cv packed"],
        }
    elif part == "ensemble":
        ratios = {"ensemble 8 / fit": med["fit ensemble 8"] / med["fit"]}
    elif part == "folds":
        ratios = {"unpacked / packed": med["unpacked"] / med["packed"]}
    elif part == "epoch":
        fit = (med["fit 300 epochs"] - med["fit 100 epochs"]) / 200
        plain = (med["plain loop 300 epochs"] - med["plain loop 100 epochs"]) / 200
        result["per extra epoch"] = {"fit": fit, "plain loop": plain}
        ratios = {"plain loop / fit (per extra epoch)": plain / fit}
    return {"seconds": result, "ratios": ratios}


def markdown(results: dict) -> str:
    lines = [f"Measured {results['date']} on {results['machine']}; `{results['command']}`.", ""]
    for part, found in results["parts"].items():
        lines += [f"**{part}**", "", "| command | min s | median s | max s |", "|---|---|---|---|"]
        for name, r in found["seconds"].items():
            if "median" in r:
                lines.append(f"| {name} | {r['min']:.2f} | {r['median']:.2f} | {r['max']:.2f} |")
            else:
                lines.append(f"| {name} | " + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in r.items()) + " | | |")
        lines += [""] + [f"- {name}: **{value:.2f}x**" for name, value in found["ratios"].items()] + [""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", default=["chapter", "ensemble", "folds", "epoch", "wide"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "command": "python benchmarks/packed.py " + " ".join(sys.argv[1:]),
        "parts": {},
    }
    for part in args.parts:
        results["parts"][part] = run_part(part, args.repeats)
        print(markdown({**results, "parts": {part: results["parts"][part]}}), flush=True)
    args.out.mkdir(exist_ok=True)
    (args.out / "packed.json").write_text(json.dumps(results, indent=2))
    (args.out / "packed.md").write_text(markdown(results))


if __name__ == "__main__":
    main()
