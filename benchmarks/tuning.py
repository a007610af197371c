"""Tuning efficiency side by side, on one search space (configs/default.yaml's data and model):

(A) search: the exhaustive grid (every point, full length) against TPE with Hyperband pruning (several
    seeds): the best validation loss each finds and the training epochs each spends. Target: TPE within
    0.005 of the grid's best using at most 30% of the grid's epochs.
(B) workers: the same random search run by 1 worker and by 2 workers sharing the study, interleaved and
    repeated: finished trials per minute of search (from the first trial's start to the last one's end).
    Target: 2 workers >= 1.6x.
(C) packed: today's path (population 1: one fit per trial) and populations (the default population: same-
    shape trials asked together train as one packed fit) side by side, interleaved: the 54-point grid (same
    best within 0.002 in at most a quarter of the wall time), TPE + Hyperband with 30 trials per seed (median
    gap to the grid's best at most 0.005 in at most a third of the wall time), and the whole commands
    `trainlab tune -c configs/tune/lr_challenge.yaml` against `trainlab fit -c configs/seed.yaml` (at most 1x).
(D) cv: cross-validation inside tuning (`cv: {folds: 3}`), a 12-point grid, one fit per fold of every trial
    (population 1) against populations that pack trials x folds, interleaved: wall time and the largest
    difference between the two paths' trial values.

    .venv/bin/python benchmarks/tuning.py                 # all parts, writes results/tuning.{md,json}
    .venv/bin/python benchmarks/tuning.py --part packed --seeds 5 --repeats 3
    .venv/bin/python benchmarks/tuning.py --part cv --repeats 2
"""

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "src"))
from trainlab.tuning.command import tune_main  # noqa: E402
from trainlab.tuning.config import DEFAULT_POPULATION  # noqa: E402

SPACE = {
    "model.init_args.lr": [0.0003, 0.001, 0.003, 0.01, 0.03, 0.1],
    "model.init_args.hidden_dims": [[32], [64, 32], [128, 64]],
    "model.init_args.dropout": [0.0, 0.2, 0.4],
}
PARTS = ("search", "workers", "packed", "cv")
CV_SPACE = {"model.init_args.lr": [0.0003, 0.001, 0.003, 0.01, 0.03, 0.1], "model.init_args.dropout": [0.0, 0.2]}
COLUMNS = {"per_trial": 1, "packed": DEFAULT_POPULATION}  # the population of each column
PRUNER = {"min_resource": 3}  # no verdict before 3 epochs: the first epochs' losses say little
OVERRIDES = {"trainer.max_epochs": 40, "run.early_stopping": None, "run.test_after_fit": False}


def run_study(folder: Path, name: str, **settings) -> optuna.Study:
    body = {"base": str(REPO / "configs/default.yaml"), "metric": "val/loss", "overrides": OVERRIDES}
    body.update(name=name, space=settings.pop("space", SPACE), **settings)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body))
    with contextlib.redirect_stdout(io.StringIO()):
        tune_main(["-c", str(path)])
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(folder / "lightning_logs/tune" / name / "study.journal"))
    )
    return optuna.load_study(study_name=name, storage=storage)


def epochs(study) -> int:
    return sum(t.user_attrs.get("epochs", 0) for t in study.trials)


def search_part(folder: Path, seeds: int, n_trials: int) -> dict:
    grid = run_study(folder, "grid", sampler="grid")
    result = {"grid": {"trials": len(grid.trials), "epochs": epochs(grid), "best": grid.best_value}, "tpe": []}
    print(f"grid: {len(grid.trials)} trials, {epochs(grid)} epochs, best val/loss {grid.best_value:.4f}", flush=True)
    for seed in range(seeds):
        tpe = run_study(
            folder, f"tpe{seed}", sampler="tpe", pruner="hyperband", pruner_options=PRUNER, seed=seed, n_trials=n_trials
        )
        row = {
            "seed": seed,
            "trials": len(tpe.trials),
            "pruned": sum(t.state.name == "PRUNED" for t in tpe.trials),
            "epochs": epochs(tpe),
            "best": tpe.best_value,
            "gap": tpe.best_value - grid.best_value,
            "epoch_share": epochs(tpe) / epochs(grid),
        }
        result["tpe"].append(row)
        print(f"tpe seed {seed}: {row}", flush=True)
    return result


def trials_per_minute(study) -> float:
    finished = [t for t in study.trials if t.datetime_complete is not None]
    span = (max(t.datetime_complete for t in finished) - min(t.datetime_start for t in finished)).total_seconds()
    return 60 * len(finished) / span


def workers_part(folder: Path, repeats: int, n_trials: int) -> dict:
    space = {"model.init_args.lr": {"low": 1e-3, "high": 0.1, "log": True}, "model.init_args.dropout": [0.0, 0.2]}
    rates = {1: [], 2: []}
    for repeat in range(repeats):
        for workers in (1, 2):
            name = f"workers{workers}_{repeat}"
            study = run_study(
                folder, name, sampler="random", seed=repeat, n_trials=n_trials, workers=workers, space=space
            )
            rates[workers].append(trials_per_minute(study))
            print(f"{workers} worker(s), repeat {repeat}: {rates[workers][-1]:.1f} trials/min", flush=True)
    ratios = [two / one for one, two in zip(rates[1], rates[2], strict=True)]
    return {"trials_per_minute": {str(k): v for k, v in rates.items()}, "ratio": ratios}


def timed_study(folder: Path, name: str, **settings) -> tuple[optuna.Study, float]:
    started = time.perf_counter()
    study = run_study(folder, name, **settings)
    return study, time.perf_counter() - started


def packed_part(folder: Path, seeds: int, n_trials: int, repeats: int) -> dict:
    """Today's path and populations side by side: the grid, TPE per seed, and the lr challenge's command."""
    result = {"population": DEFAULT_POPULATION, "grid": {}, "tpe": [], "commands": {"fit": [], "tune": []}}
    for column, population in COLUMNS.items():
        study, seconds = timed_study(folder, f"grid_{column}", sampler="grid", population=population)
        result["grid"][column] = {"seconds": seconds, "best": study.best_value, "epochs": epochs(study)}
        print(f"grid, {column}: {result['grid'][column]}", flush=True)
    best = result["grid"]["per_trial"]["best"]
    for seed in range(seeds):
        row = {"seed": seed}
        for column, population in COLUMNS.items():
            study, seconds = timed_study(
                folder, f"tpe{seed}_{column}", sampler="tpe", pruner="hyperband", pruner_options=PRUNER,
                seed=seed, n_trials=n_trials, population=population,
            )  # fmt: skip
            row[column] = {
                "seconds": seconds,
                "best": study.best_value,
                "gap": study.best_value - best,
                "pruned": sum(t.state.name == "PRUNED" for t in study.trials),
                "epochs": epochs(study),
            }
        result["tpe"].append(row)
        print(f"tpe seed {seed}: {row}", flush=True)
    lr_challenge = REPO / "configs/tune/lr_challenge.yaml"
    commands = {"fit": ["fit", "-c", str(REPO / "configs/seed.yaml")], "tune": ["tune", "-c", str(lr_challenge)]}
    for repeat in range(repeats):  # whole commands, imports included, each in a fresh directory
        for name, args in commands.items():
            where = folder / f"command_{name}_{repeat}"
            where.mkdir()
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "trainlab", *args], cwd=where, check=True, capture_output=True)
            result["commands"][name].append(time.perf_counter() - started)
        print(f"commands, repeat {repeat}: {[v[-1] for v in result['commands'].values()]}", flush=True)
    return result


def cv_part(folder: Path, repeats: int) -> dict:
    """A cv grid (12 points x 3 folds, 20 epochs) per trial and packed, interleaved."""
    result: dict = {"seconds": {column: [] for column in COLUMNS}, "max_difference": 0.0}
    for repeat in range(repeats):
        values = {}
        for column, population in COLUMNS.items():
            study, seconds = timed_study(
                folder, f"cv{repeat}_{column}", sampler="grid", space=CV_SPACE, population=population,
                cv={"folds": 3, "seed": 0}, overrides={**OVERRIDES, "trainer.max_epochs": 20},
            )  # fmt: skip
            result["seconds"][column].append(seconds)
            values[column] = {tuple(sorted(t.params.items())): t.value for t in study.trials}
        difference = max(abs(values["packed"][k] - v) for k, v in values["per_trial"].items())
        result["max_difference"] = max(result["max_difference"], difference)
        print(f"cv, repeat {repeat}: {[v[-1] for v in result['seconds'].values()]}, difference {difference:.2g}")
    return result


def cv_markdown(cv: dict) -> list[str]:
    per_trial, packed = cv["seconds"]["per_trial"], cv["seconds"]["packed"]
    ratios = [b / a for a, b in zip(per_trial, packed, strict=True)]
    return [
        "",
        f"CV inside tuning (`{cv['command']}`): a 12-point grid (lr x dropout on configs/default.yaml, 20 epochs)"
        " with `cv: {folds: 3}`, one fit per fold of each trial against populations packing trials x folds.",
        "",
        "| per trial: seconds | packed: seconds | packed / per trial | largest difference of a trial's value |",
        "|---|---|---|---|",
        f"| {spread(per_trial)} | {spread(packed)} | {spread(ratios)} | {cv['max_difference']:.2g} |",
    ]


def packed_markdown(packed: dict) -> list[str]:
    grid, tpe, commands = packed["grid"], packed["tpe"], packed["commands"]
    ratio = grid["packed"]["seconds"] / grid["per_trial"]["seconds"]
    lines = [
        "",
        f"Packed (`{packed['command']}`): one fit per trial (population 1, today's path) against populations "
        f"(population {packed['population']}), side by side in one run.",
        "",
        "| study | per trial: seconds | packed: seconds | packed / per trial | per trial: best | packed: best |",
        "|---|---|---|---|---|---|",
        f"| grid, 54 points | {grid['per_trial']['seconds']:.1f} | {grid['packed']['seconds']:.1f} | {ratio:.3f} | "
        f"{grid['per_trial']['best']:.4f} | {grid['packed']['best']:.4f} |",
    ]
    for row in tpe:
        a, b = row["per_trial"], row["packed"]
        lines.append(
            f"| TPE + Hyperband, 30 trials, seed {row['seed']} ({a['pruned']} / {b['pruned']} pruned) | "
            f"{a['seconds']:.1f} | {b['seconds']:.1f} | {b['seconds'] / a['seconds']:.3f} | "
            f"{a['best']:.4f} | {b['best']:.4f} |"
        )
    tpe_ratios = [row["packed"]["seconds"] / row["per_trial"]["seconds"] for row in tpe]
    command_ratios = [t / f for f, t in zip(commands["fit"], commands["tune"], strict=True)]
    lines += [
        "",
        f"Grid: best {grid['packed']['best']:.4f} packed, {grid['per_trial']['best']:.4f} per trial "
        f"(difference {abs(grid['packed']['best'] - grid['per_trial']['best']):.2g}); wall time ratio {ratio:.3f}.",
        f"TPE gap to the grid's best (min / median / max): per trial {spread([r['per_trial']['gap'] for r in tpe])}, "
        f"packed {spread([r['packed']['gap'] for r in tpe])}; packed / per-trial wall time {spread(tpe_ratios)}.",
        f"`trainlab tune -c configs/tune/lr_challenge.yaml` {spread(commands['tune'])} s against "
        f"`trainlab fit -c configs/seed.yaml` {spread(commands['fit'])} s; tune / fit {spread(command_ratios)}.",
    ]
    return lines


def spread(values) -> str:
    return f"{min(values):.3g} / {statistics.median(values):.3g} / {max(values):.3g}"


def markdown(results) -> str:
    lines = [
        f"Measured {results['date']} on {results['machine']}.",
        "",
        f"Search (`{results['search'].get('command', results['command'])}`): "
        f"{results['search']['grid']['trials']} grid points "
        "(lr x hidden_dims x dropout on configs/default.yaml, 40 epochs, no early stopping).",
        "",
        "| search | trials | epochs | best val/loss | gap to grid | epochs / grid's |",
        "|---|---|---|---|---|---|",
    ]
    grid = results["search"]["grid"]
    lines.append(f"| grid (exhaustive) | {grid['trials']} | {grid['epochs']} | {grid['best']:.4f} | 0 | 1.00 |")
    for row in results["search"]["tpe"]:
        lines.append(
            f"| TPE + Hyperband, seed {row['seed']} | {row['trials']} ({row['pruned']} pruned) | {row['epochs']} | "
            f"{row['best']:.4f} | {row['gap']:+.4f} | {row['epoch_share']:.2f} |"
        )
    tpe = results["search"]["tpe"]
    lines += [
        "",
        f"TPE gap to the grid's best (min / median / max): {spread([r['gap'] for r in tpe])}; "
        f"share of the grid's epochs: {spread([r['epoch_share'] for r in tpe])}.",
        "",
        f"Workers (`{results['workers'].get('command', results['command'])}`), random search, 12 trials each:",
        "",
        "| workers | trials per minute (min / median / max) |",
        "|---|---|",
    ]
    w = results["workers"]
    for key, values in w["trials_per_minute"].items():
        lines.append(f"| {key} | {spread(values)} |")
    lines += ["", f"2 workers / 1 worker (min / median / max over repeats): {spread(w['ratio'])}."]
    if "packed" in results:
        lines += packed_markdown(results["packed"])
    if "cv" in results:
        lines += cv_markdown(results["cv"])
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5, help="TPE studies (one per seed)")
    parser.add_argument("--tpe_trials", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the 1- vs 2-worker comparison")
    parser.add_argument("--worker_trials", type=int, default=12)
    parser.add_argument("--part", choices=["all", *PARTS], default="all")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "command": "python benchmarks/tuning.py " + " ".join(sys.argv[1:]),
    }
    with tempfile.TemporaryDirectory() as folder:
        previous = os.getcwd()
        os.chdir(folder)
        try:
            previous_results = args.out / "tuning.json"
            if args.part != "all" and previous_results.exists():  # keep the other part's last figures
                results.update({k: v for k, v in json.loads(previous_results.read_text()).items() if k in PARTS})
            if args.part in ("all", "search"):
                results["search"] = search_part(Path(folder), args.seeds, args.tpe_trials)
                results["search"]["command"] = results["command"]
            if args.part in ("all", "workers"):
                results["workers"] = workers_part(Path(folder), args.repeats, args.worker_trials)
                results["workers"]["command"] = results["command"]
            if args.part in ("all", "cv"):
                results["cv"] = cv_part(Path(folder), args.repeats)
                results["cv"]["command"] = results["command"]
            if args.part in ("all", "packed"):
                results["packed"] = packed_part(Path(folder), args.seeds, args.tpe_trials, args.repeats)
                results["packed"]["command"] = results["command"]
        finally:
            os.chdir(previous)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tuning.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (args.out / "tuning.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
