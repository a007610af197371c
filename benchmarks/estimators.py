"""The scikit-learn estimators against scikit-learn's own MLP, in one process after imports, side by side and
interleaved, min/median/max over repeats, ratios of medians.

The chapter's data as make_moons gives it (1,000 samples, noise 0.2, random_state 42; 800 training rows,
200 held out), 100 epochs, batches of 32, Adam, lr 0.01, one hidden layer of 10 (configs/seed.yaml's):
- TrainlabClassifier with one torch thread (its default, n_threads=1) and with torch's default threads;
- MLPClassifier(hidden_layer_sizes=(10,), max_iter=100, batch_size=32, solver="adam", learning_rate_init=0.01,
  early_stopping=False, n_iter_no_change=100, tol=0).
Each first fits once untimed (first-use costs: lazy imports, allocator warm-up). Accuracy on the 200 held-out
rows is reported beside the times.

    .venv/bin/python benchmarks/estimators.py                # 5 repeats; writes results/estimators.*
    .venv/bin/python benchmarks/estimators.py --repeats 3
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent


def estimators() -> dict:
    from sklearn.neural_network import MLPClassifier

    from trainlab.sklearn import TrainlabClassifier

    chapter = {"hidden_dims": (10,), "lr": 0.01, "batch_size": 32, "max_epochs": 100, "random_state": 0}
    return {
        "TrainlabClassifier (1 thread)": lambda: TrainlabClassifier(**chapter),
        "TrainlabClassifier (torch's threads)": lambda: TrainlabClassifier(**chapter, n_threads=None),
        "MLPClassifier": lambda: MLPClassifier(
            hidden_layer_sizes=(10,),
            max_iter=100,
            batch_size=32,
            solver="adam",
            learning_rate_init=0.01,
            early_stopping=False,
            n_iter_no_change=100,
            tol=0,
            random_state=0,
        ),
    }


def spread(values: list[float]) -> dict:
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "runs": values}


def measure(repeats: int) -> dict:
    import torch
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=1000, noise=0.2, random_state=42)
    X_train, y_train, X_test, y_test = X[:800], y[:800], X[800:], y[800:]
    makers = estimators()
    times: dict[str, list[float]] = {name: [] for name in makers}
    accuracy = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLPClassifier's ConvergenceWarning at max_iter
        for make in makers.values():
            make().fit(X_train, y_train)
        for _ in range(repeats):  # interleaved: each repeat fits every estimator once
            for name, make in makers.items():
                model = make()
                start = time.perf_counter()
                model.fit(X_train, y_train)
                times[name].append(time.perf_counter() - start)
                accuracy[name] = float(model.score(X_test, y_test))
    seconds = {name: spread(values) for name, values in times.items()}
    reference = seconds["MLPClassifier"]["median"]
    ratios = {
        f"{name} / MLPClassifier": r["median"] / reference for name, r in seconds.items() if name != "MLPClassifier"
    }
    return {"seconds": seconds, "ratios": ratios, "accuracy": accuracy, "torch_threads": torch.get_num_threads()}


def markdown(results: dict) -> str:
    lines = [
        f"Measured {results['date']} on {results['machine']}; `{results['command']}`.",
        "",
        "make_moons (800 training rows x 2), 100 epochs, batch 32, Adam lr 0.01, hidden layer of 10; "
        f"fit times in one process after imports, {results['repeats']} interleaved repeats "
        f"(torch's default threads here: {results['torch_threads']}).",
        "",
        "| estimator | min s | median s | max s | held-out accuracy |",
        "|---|---|---|---|---|",
    ]
    for name, r in results["seconds"].items():
        lines.append(
            f"| {name} | {r['min']:.2f} | {r['median']:.2f} | {r['max']:.2f} | {results['accuracy'][name]:.3f} |"
        )
    lines += [""] + [f"- {name}: **{value:.2f}x**" for name, value in results["ratios"].items()] + [""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "command": "python benchmarks/estimators.py " + " ".join(sys.argv[1:]),
        "repeats": args.repeats,
        **measure(args.repeats),
    }
    print(markdown(results), flush=True)
    args.out.mkdir(exist_ok=True)
    (args.out / "estimators.json").write_text(json.dumps(results, indent=2))
    (args.out / "estimators.md").write_text(markdown(results))


if __name__ == "__main__":
    main()
