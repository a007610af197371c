"""How fast trainlab answers the commands a person types first: help, and the mistakes it refuses.

Whole commands as a user runs them (`trainlab ...` in a new process), interleaved and repeated;
min/median/max seconds each, against the goal of 3 s. A training command is timed alongside for scale.

    .venv/bin/python benchmarks/answers.py              # 5 repeats, writes results/answers.{json,md}
    .venv/bin/python benchmarks/answers.py --repeats 3
"""

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TRAINLAB = [sys.executable, "-m", "trainlab"]
SEED = str(HERE.parent / "configs" / "seed.yaml")

COMMANDS = {
    "trainlab --help": ["--help"],
    "trainlab fit --help": ["fit", "--help"],
    "trainlab test --help": ["test", "--help"],
    "trainlab tune --help": ["tune", "--help"],
    "trainlab cv --help": ["cv", "--help"],
    "trainlab report --help": ["report", "--help"],
    "missing config file": ["fit", "-c", "nowhere.yaml"],
    "misspelt section in a config": ["fit", "-c", "typo.yaml"],
    "--model.init_args.lr -0.1": ["fit", "-c", SEED, "--model.init_args.lr", "-0.1"],
    "--model.init_args.optimizer adagrad": ["fit", "-c", SEED, "--model.init_args.optimizer", "adagrad"],
    "--data.init_args.val_fraction 1.5": ["fit", "-c", SEED, "--data.init_args.val_fraction", "1.5"],
    "--model.init_args.hiden_dims [32] (misspelt key)": ["fit", "-c", SEED, "--model.init_args.hiden_dims", "[32]"],
    "--model.init_args.lr abc (not a number)": ["fit", "-c", SEED, "--model.init_args.lr", "abc"],
    "cv --model.init_args.dropout 1.5": ["cv", "-c", SEED, "--folds", "3", "--model.init_args.dropout", "1.5"],
    "--trainer.max_epochs many (not a number)": ["fit", "-c", SEED, "--trainer.max_epochs", "many"],
    "--trainer.max_epoch 5 (misspelt Trainer key)": ["fit", "-c", SEED, "--trainer.max_epoch", "5"],
    "a CSV without the config's target column": ["fit", "-c", "csv.yaml"],
    "tune: a dropout of 1.5 in the space": ["tune", "-c", "tune.yaml"],
    "--data.init_args.val_fraction 0.5 --data.init_args.test_fraction 0.6 (a joint rule)": [
        "fit",
        "-c",
        SEED,
        "--data.init_args.val_fraction",
        "0.5",
        "--data.init_args.test_fraction",
        "0.6",
    ],
    "test without --ckpt_path": ["test", "-c", SEED],
    "test --ckpt_path nowhere.ckpt": ["test", "-c", SEED, "--ckpt_path", "nowhere.ckpt"],
    "fit -c configs/seed.yaml (for scale)": ["fit", "-c", SEED, "--trainer.enable_progress_bar", "false"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    codes: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "typo.yaml").write_text("modle:\n  init_args: {lr: 0.1}\n")
        Path(folder, "data.csv").write_text("x1,x2,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(50)))
        data = "{class_path: trainlab.data.FileDataModule, init_args: {path: data.csv, target: churn}}"
        Path(folder, "csv.yaml").write_text(f"data: {data}\n")
        space = "{model.init_args.dropout: [0.1, 1.5]}"
        Path(folder, "tune.yaml").write_text(
            f"base: {SEED}\noverrides: {{data.init_args.val_fraction: 0.2}}\nspace: {space}\n"
        )
        for _ in range(args.repeats):
            for name, command in COMMANDS.items():
                start = time.perf_counter()
                done = subprocess.run([*TRAINLAB, *command], cwd=folder, capture_output=True, text=True)
                times[name].append(time.perf_counter() - start)
                codes[name] = done.returncode
    rows = {
        name: {
            "min": min(t),
            "median": statistics.median(t),
            "max": max(t),
            "exit": codes[name],
            "goal_met": statistics.median(t) <= 3.0,
        }
        for name, t in times.items()
    }
    lines = [
        f"# Answer times (whole commands, {args.repeats} repeats, {platform.node()}, {time.strftime('%Y-%m-%d')})",
        "",
        "`.venv/bin/python benchmarks/answers.py`; goal: help and refusals within 3 s.",
        "",
        "| command | exit | min s | median s | max s | within 3 s |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        goal = "-" if name.endswith("(for scale)") else ("yes" if row["goal_met"] else "no")
        lines.append(f"| {name} | {row['exit']} | {row['min']:.2f} | {row['median']:.2f} | {row['max']:.2f} | {goal} |")
    text = "\n".join(lines) + "\n"
    print(text)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "answers.md").write_text(text)
    (HERE / "results" / "answers.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
