"""Training speed side by side, interleaved and repeated: (a) the chapter's plain-PyTorch loop,
(b) a naive Lightning port, (c) `trainlab fit` with its normal features on, (d) the bare floor loop.

Each variant trains the same MLP on the same data and evaluates a held-out split every epoch; we time
that training phase only (imports and data generation excluded) and report optimizer steps per second
(chapter workload) or training samples per second (large workload), min/median/max over repeats,
and the ratios of medians c/a, c/b, c/d. Also the peak RSS of `trainlab fit` on 1,000,000 x 32 samples.

    .venv/bin/python benchmarks/training_speed.py            # both workloads, 5 repeats, writes results/
    .venv/bin/python benchmarks/training_speed.py --workload chapter --repeats 3
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

import lightning.pytorch as pl
import torch
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn, optim
from torch.utils.data import DataLoader, TensorDataset

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import timing  # noqa: E402

from trainlab.cli import main as trainlab_main  # noqa: E402

WORKLOADS = {
    # the chapter: 1,000 samples (800 train / 200 evaluated every epoch), 2 features, MLP 2-10-1, batch 32
    "chapter": dict(n_samples=1000, features=2, informative=2, hidden=[10], batch=32, epochs=100, lr=0.01),
    # larger: 200,000 training samples x 32 features (+50,000 evaluated), MLP 32-64-64-1, batch 1024
    "large": dict(n_samples=250_000, features=32, informative=16, hidden=[64, 64], batch=1024, epochs=2, lr=0.001),
}


def make_data(w):
    """The chapter's Step 1 for a workload: generate, 80/20 split, scale on the training split."""
    X, y = make_classification(
        n_samples=w["n_samples"],
        n_features=w["features"],
        n_informative=w["informative"],
        n_redundant=0,
        n_clusters_per_class=1,
        random_state=42,
    )
    X = torch.tensor(X, dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.float32).view(-1, 1)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
    scaler = StandardScaler()
    X_train = torch.tensor(scaler.fit_transform(X_train), dtype=torch.float32)
    X_test = torch.tensor(scaler.transform(X_test), dtype=torch.float32)
    return X_train, y_train, X_test, y_test


def mlp(features, hidden):
    layers, width = [], features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    return nn.Sequential(*layers, nn.Linear(width, 1))


def chapter_loop(w, data):
    """(a) The chapter's Step 4, as written: DataLoader over TensorDataset, .item() per step."""
    X_train, y_train, X_test, y_test = data
    torch.manual_seed(0)
    model = mlp(w["features"], w["hidden"])
    criterion = nn.BCEWithLogitsLoss()
    optimizer = optim.Adam(model.parameters(), lr=w["lr"])
    train_loader = DataLoader(TensorDataset(X_train, y_train), batch_size=w["batch"], shuffle=True)
    test_loader = DataLoader(TensorDataset(X_test, y_test), batch_size=w["batch"], shuffle=False)
    start = time.perf_counter()
    steps = 0
    for _epoch in range(w["epochs"]):
        model.train()
        running_loss = 0.0
        for inputs, labels in train_loader:
            optimizer.zero_grad()
            loss = criterion(model(inputs), labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
            steps += 1
        model.eval()
        correct = total = 0
        test_loss = 0.0
        with torch.no_grad():
            for inputs, labels in test_loader:
                outputs = model(inputs)
                test_loss += criterion(outputs, labels).item()
                correct += ((torch.sigmoid(outputs) > 0.5).float() == labels).sum().item()
                total += labels.numel()
    return time.perf_counter() - start, steps


def floor_loop(w, data, fused=False):
    """(d) The floor: slice batches out of a permuted tensor, no DataLoader, one host sync per epoch.
    (e) The same with torch's fused Adam, which trainlab uses: what is left is the framework's cost."""
    X_train, y_train, X_test, y_test = data
    torch.manual_seed(0)
    model = mlp(w["features"], w["hidden"])
    criterion = nn.BCEWithLogitsLoss()
    optimizer = optim.Adam(model.parameters(), lr=w["lr"], fused=fused)
    n, b = len(X_train), w["batch"]
    start = time.perf_counter()
    steps = 0
    for _epoch in range(w["epochs"]):
        model.train()
        perm = torch.randperm(n)
        X, y = X_train[perm], y_train[perm]
        total = torch.zeros(())
        for i in range(0, n, b):
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(model(X[i : i + b]), y[i : i + b])
            loss.backward()
            optimizer.step()
            total += loss.detach()
            steps += 1
        model.eval()
        with torch.no_grad():
            outputs = model(X_test)
            accuracy = ((outputs > 0) == (y_test > 0.5)).float().mean()
        float(total), float(accuracy)  # the one host sync per epoch, to print a summary
    return time.perf_counter() - start, steps


class NaiveModule(pl.LightningModule):
    """(b) A straightforward Lightning port of the chapter's model."""

    def __init__(self, features, hidden, lr):
        super().__init__()
        self.model = mlp(features, hidden)
        self.criterion = nn.BCEWithLogitsLoss()
        self.lr = lr

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.criterion(self.model(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        outputs = self.model(x)
        self.log("val_loss", self.criterion(outputs, y))
        self.log("val_acc", ((torch.sigmoid(outputs) > 0.5).float() == y).float().mean())

    def configure_optimizers(self):
        return optim.Adam(self.parameters(), lr=self.lr)


def naive_lightning(w, data, workdir):
    X_train, y_train, X_test, y_test = data
    pl.seed_everything(0, verbose=False)
    trainer = pl.Trainer(
        max_epochs=w["epochs"],
        default_root_dir=workdir,
        callbacks=[timing.PhaseTimer()],
        enable_model_summary=False,
        num_sanity_val_steps=0,
        accelerator="cpu",
    )
    train = DataLoader(TensorDataset(X_train, y_train), batch_size=w["batch"], shuffle=True)
    val = DataLoader(TensorDataset(X_test, y_test), batch_size=w["batch"])
    trainer.fit(NaiveModule(w["features"], w["hidden"], w["lr"]), train, val)
    return timing.LAST["seconds"], timing.LAST["optimizer_steps"]


def trainlab_args(w) -> list[str]:
    hidden = "[" + ",".join(map(str, w["hidden"])) + "]"
    return [
        "fit",
        "-c",
        str(REPO / "configs" / "seed.yaml"),
        "--data.init_args.n_samples",
        str(w["n_samples"]),
        "--data.init_args.n_features",
        str(w["features"]),
        "--data.init_args.n_informative",
        str(w["informative"]),
        "--data.init_args.batch_size",
        str(w["batch"]),
        "--model.init_args.hidden_dims",
        hidden,
        "--model.init_args.lr",
        str(w["lr"]),
        "--trainer.max_epochs",
        str(w["epochs"]),
        "--trainer.accelerator",
        "cpu",
        "--run.test_after_fit",
        "false",
    ]


def trainlab_fit(w, data, workdir):
    """(c) trainlab fit with its normal features: checkpoints, TensorBoard, summary lines, progress bar."""
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        trainlab_main(trainlab_args(w) + ["--trainer.callbacks+=timing.PhaseTimer"])
    finally:
        os.chdir(cwd)
    return timing.LAST["seconds"], timing.LAST["optimizer_steps"]


def peak_rss_of_trainlab(n_samples=1_000_000, features=32):
    """Peak RSS (MB) of a whole `trainlab fit` process on n_samples x features, 1 epoch, batch 1024."""
    w = dict(n_samples=n_samples, features=features, informative=16, hidden=[64, 64], batch=1024, epochs=1, lr=0.001)
    code = (
        "import resource, sys; from trainlab.cli import main; main(sys.argv[1:]); "
        "print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    with tempfile.TemporaryDirectory() as workdir:
        args = trainlab_args(w) + [
            "--trainer.enable_progress_bar",
            "false",
            "--data.init_args.val_fraction",
            "0.1",
            "--data.init_args.test_fraction",
            "0.1",
        ]
        done = subprocess.run([sys.executable, "-c", code, *args], cwd=workdir, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    kb = int(done.stdout.split("PEAK_RSS_KB")[-1].split()[0])
    dataset_mb = n_samples * features * 4 / 2**20
    return {"peak_rss_mb": kb / 1024, "dataset_mb": dataset_mb, "limit_mb": 2.5 * dataset_mb + 700}


def fused_floor_loop(w, data):
    return floor_loop(w, data, fused=True)


VARIANTS = {
    "a_chapter_loop": chapter_loop,
    "b_naive_lightning": naive_lightning,
    "c_trainlab": trainlab_fit,
    "d_floor": floor_loop,
    "e_floor_fused_adam": fused_floor_loop,
}


def run_workload(name, repeats):
    w = WORKLOADS[name]
    data = make_data(w)
    rates = {v: [] for v in VARIANTS}
    unit = "steps/s" if name == "chapter" else "samples/s"
    for rep in range(repeats):
        for variant, fn in VARIANTS.items():  # interleaved: each repeat runs every variant once
            with tempfile.TemporaryDirectory() as workdir:
                kwargs = {"workdir": workdir} if variant in ("b_naive_lightning", "c_trainlab") else {}
                with open(os.devnull, "w") as quiet, redirect(quiet):
                    seconds, steps = fn(w, data, **kwargs)
            samples = len(data[0]) * w["epochs"]
            rates[variant].append(steps / seconds if unit == "steps/s" else samples / seconds)
            print(f"  {name} repeat {rep + 1}/{repeats} {variant}: {rates[variant][-1]:,.0f} {unit}", file=sys.stderr)
    summary = {v: {"min": min(r), "median": statistics.median(r), "max": max(r)} for v, r in rates.items()}
    med = {v: s["median"] for v, s in summary.items()}
    ratios = {
        "c/a": med["c_trainlab"] / med["a_chapter_loop"],
        "c/b": med["c_trainlab"] / med["b_naive_lightning"],
        "c/d": med["c_trainlab"] / med["d_floor"],
        "c/e": med["c_trainlab"] / med["e_floor_fused_adam"],
    }
    return {"workload": w, "unit": unit, "repeats": repeats, "rates": summary, "ratios": ratios}


class redirect:
    """Silence stdout and stderr of a variant (progress bars, summaries) at the file-descriptor level."""

    def __init__(self, sink):
        self.sink = sink

    def __enter__(self):
        sys.stdout.flush()
        sys.stderr.flush()
        self.saved = os.dup(1), os.dup(2)
        os.dup2(self.sink.fileno(), 1)
        os.dup2(self.sink.fileno(), 2)

    def __exit__(self, *exc):
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(self.saved[0], 1)
        os.dup2(self.saved[1], 2)
        os.close(self.saved[0])
        os.close(self.saved[1])


def markdown(results) -> str:
    lines = [
        f"Measured {results['date']} on {results['machine']}, torch {results['torch']}, "
        f"lightning {results['lightning']}; command: `{results['command']}`.",
        "",
    ]
    for name, r in results["workloads"].items():
        lines += [
            f"**{name}** workload ({r['unit']}, {r['repeats']} interleaved repeats):",
            "",
            "| variant | min | median | max |",
            "|---|---:|---:|---:|",
        ]
        for variant, s in r["rates"].items():
            lines.append(f"| {variant} | {s['min']:,.0f} | {s['median']:,.0f} | {s['max']:,.0f} |")
        lines += ["", "ratios of medians: " + ", ".join(f"{k} = {v:.2f}x" for k, v in r["ratios"].items()), ""]
    if "memory" in results:
        m = results["memory"]
        lines.append(
            f"Peak RSS of `trainlab fit` on 1,000,000 x 32 float32 samples: {m['peak_rss_mb']:,.0f} MB "
            f"(dataset {m['dataset_mb']:,.0f} MB; target at most {m['limit_mb']:,.0f} MB)."
        )
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=[*WORKLOADS, "all"], default="all")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-memory", action="store_true", help="skip the 1,000,000-sample peak-RSS run")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    names = list(WORKLOADS) if args.workload == "all" else [args.workload]
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "torch": torch.__version__,
        "lightning": pl.__version__,
        "command": "python benchmarks/training_speed.py " + " ".join(sys.argv[1:]),
        "workloads": {name: run_workload(name, args.repeats) for name in names},
    }
    if not args.no_memory:
        results["memory"] = peak_rss_of_trainlab()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "training_speed.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (args.out / "training_speed.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
