"""Peak memory of `trainlab fit` on a large CSV: 1,000,000 rows x 50 numeric columns (a binary target),
one epoch, batch 1024, in a fresh process. Target: peak RSS under 3x the table's float32 size + 700 MB.
Also the same table as Parquet. Repeated (min/median/max); the file is written once per format.

    .venv/bin/python benchmarks/file_memory.py              # writes results/file_memory.{md,json}
    .venv/bin/python benchmarks/file_memory.py --rows 200000 --repeats 1
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

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CODE = (
    "import resource, sys; from trainlab.cli import main\n"
    "try:\n    main(sys.argv[1:])\nexcept SystemExit as stop:\n    assert not stop.code, stop.code\n"
    "print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
)


def write_table(folder: Path, rows: int, columns: int) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, columns)).astype(np.float32)
    y = (X[:, :5].sum(axis=1) > 0).astype(np.int8)
    table = pa.table({**{f"x{j}": X[:, j] for j in range(columns)}, "target": y})
    paths = {"csv": folder / "big.csv", "parquet": folder / "big.parquet"}
    pa_csv.write_csv(table, paths["csv"])
    pq.write_table(table, paths["parquet"])
    return paths


def peak_rss_mb(folder: Path, path: Path) -> float:
    config = {
        "seed_everything": 0,
        "trainer": {"max_epochs": 1, "enable_progress_bar": False, "enable_model_summary": False},
        "model": {"class_path": "trainlab.models.MLPModule", "init_args": {"hidden_dims": [64, 64]}},
        "data": {
            "class_path": "trainlab.data.FileDataModule",
            "init_args": {"path": str(path), "target": "target", "batch_size": 1024},
        },
        "run": {"report": False, "summary_every": 0, "verbose": False},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    done = subprocess.run(
        [sys.executable, "-c", CODE, "fit", "-c", "config.yaml"], cwd=folder, capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return int(done.stdout.split("PEAK_RSS_KB")[-1].split()[0]) / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--columns", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    table_mb = args.rows * args.columns * 4 / 2**20
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "command": "python benchmarks/file_memory.py " + " ".join(sys.argv[1:]),
        "rows": args.rows,
        "columns": args.columns,
        "table_float32_mb": table_mb,
        "limit_mb": 3 * table_mb + 700,
        "peak_rss_mb": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = write_table(folder, args.rows, args.columns)
        results["file_mb"] = {kind: path.stat().st_size / 2**20 for kind, path in paths.items()}
        for _ in range(args.repeats):
            for kind, path in paths.items():
                results["peak_rss_mb"].setdefault(kind, []).append(peak_rss_mb(folder, path))
                print(kind, f"{results['peak_rss_mb'][kind][-1]:.0f} MB", flush=True)
    lines = [
        f"Measured {results['date']} on {results['machine']}; command: `{results['command']}`.",
        "",
        f"{args.rows:,} rows x {args.columns} columns: {table_mb:.0f} MB as float32; "
        f"limit 3x + 700 MB = {results['limit_mb']:.0f} MB.",
        "",
        "| file | size on disk | peak RSS of `trainlab fit`, 1 epoch (min / median / max) |",
        "|---|---|---|",
    ]
    for kind, values in results["peak_rss_mb"].items():
        spread = f"{min(values):.0f} / {statistics.median(values):.0f} / {max(values):.0f} MB"
        lines.append(f"| {kind} | {results['file_mb'][kind]:.0f} MB | {spread} |")
    table = "\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "file_memory.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "file_memory.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
