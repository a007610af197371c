"""Every command's bad input, in one place: one line naming what is wrong, a non-zero exit, no traceback,
and not one byte of what earlier runs wrote is changed. Plus random config values (hypothesis): the
config layer either builds them or refuses them with a UserError, never anything else."""

import hashlib
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conftest import QUIET, config, run_cli
from trainlab.errors import UserError


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def catalogue(checkpoint: Path) -> dict[str, tuple[list, str]]:
    Path("garbage.ckpt").write_bytes(b"not a checkpoint at all")
    Path("notes").mkdir(exist_ok=True)
    tune = {"base": config("seed"), "sampler": "grid", "space": {"model.init_args.lr": [0.1]}}
    Path("no_val.yaml").write_text(yaml.safe_dump(tune))
    with_val = {**tune, "overrides": {"data.init_args.val_fraction": 0.2}}
    Path("bad_space.yaml").write_text(yaml.safe_dump({**with_val, "space": {"model.init_args.nope": [1]}}))
    seed, regression = config("seed"), config("regression")
    return {
        "unknown command": (["train"], "unknown command 'train'"),
        "fit: missing config": (["fit", "-c", "missing.yaml"], "missing.yaml"),
        "fit: unknown key": (["fit", "-c", seed, "--model.init_args.depth", "3"], "depth"),
        "fit: bad value": (["fit", "-c", seed, "--data.init_args.batch_size", "0"], "data.init_args.batch_size"),
        "validate: no checkpoint": (["validate", "-c", seed], "--ckpt_path is required"),
        "test: not a checkpoint": (["test", "-c", seed, "--ckpt_path", "garbage.ckpt"], "garbage.ckpt"),
        "predict: missing checkpoint": (["predict", "-c", seed, "--ckpt_path", "gone.ckpt"], "gone.ckpt"),
        "predict: checkpoint of another task": (
            ["predict", "-c", regression, "--ckpt_path", checkpoint],
            "the checkpoint's model expects",
        ),
        "tune: no config": (["tune"], "-c/--config"),
        "tune: test split would choose": (["tune", "-c", "no_val.yaml"], "val_fraction > 0"),
        "tune: unknown key in the space": (["tune", "-c", "bad_space.yaml"], "model.init_args.nope"),
        "tune: bad worker count": (["tune", "-c", "no_val.yaml", "--workers", "0"], "workers=0"),
        "cv: one fold": (["cv", "-c", seed, "--folds", "1"], "--folds=1"),
        "cv: stratified regression": (["cv", "-c", regression, "--stratify", "true"], "regression target"),
        "cv: not an override": (["cv", "-c", seed, "lr=0.1"], "'lr=0.1'"),
        "report: not a run": (["report", "notes"], "notes: not a run directory"),
        "report: nothing given": (["report"], "runs"),
    }


def test_every_command_refuses_bad_input_in_one_line_and_damages_nothing(capsys):
    assert run_cli("fit", "-c", config("seed"), "--trainer.max_epochs", "2", *QUIET) == 0
    checkpoint = next(Path("lightning_logs").rglob("last.ckpt"))
    capsys.readouterr()
    for name, (args, named) in catalogue(checkpoint).items():
        before = snapshot(Path("lightning_logs"))
        code = run_cli(*args)
        err = capsys.readouterr().err.strip()
        assert code != 0, name
        assert err.startswith("trainlab: error:") and "\n" not in err and "Traceback" not in err, (name, err)
        assert named in err, (name, err)
        assert snapshot(Path("lightning_logs")) == before, name  # nothing written, nothing changed


# Random values for the keys users most often get wrong; None leaves the key at its default.
VALUES = {
    "model.init_args.lr": st.one_of(st.floats(-1, 10), st.just(float("nan")), st.just("fast")),
    "model.init_args.dropout": st.floats(-0.5, 1.5),
    "model.init_args.hidden_dims": st.lists(st.integers(-4, 64), max_size=3),
    "model.init_args.optimizer": st.sampled_from(["sgd", "adam", "adamw", "rmsprop", "lbfgs", ""]),
    "model.init_args.weight_decay": st.floats(-1, 1),
    "model.init_args.loss": st.sampled_from(["auto", "bce", "mse", "huber", "hinge"]),
    "data.init_args.batch_size": st.integers(-2, 2048),
    "data.init_args.val_fraction": st.floats(-0.2, 1.2),
    "data.init_args.test_fraction": st.floats(-0.2, 1.2),
    "data.init_args.n_samples": st.integers(-10, 3000),
    "data.init_args.generator": st.sampled_from(["classification", "moons", "blobs", "friedman1", "spiral"]),
    "trainer.max_epochs": st.integers(-3, 5),
    "run.monitor": st.sampled_from(["val/loss", "val/accuracy", "val/r2", "loss"]),
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.fixed_dictionaries({}, optional=VALUES))
@pytest.mark.slow
def test_random_config_values_build_or_are_refused_cleanly(values):
    from trainlab.lightning_cli import build_config

    try:
        cli = build_config(Path(config("seed")), values, "config")
        cli.datamodule.setup()  # the data itself: splits that cannot be made are refused here, cleanly too
    except UserError as error:
        message = str(error)
        assert "\n" not in message.strip() and "Traceback" not in message


def test_an_unwritable_log_folder_is_one_line(capsys):
    Path("lightning_logs").write_text("a file where the runs' folder should be")
    assert run_cli("fit", "-c", config("seed"), "--trainer.max_epochs", "1", *QUIET) == 4
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("trainlab: error: cannot write") and "lightning_logs/seed" in err
    assert "a part of the path is a file" in err
    assert Path("lightning_logs").read_text() == "a file where the runs' folder should be"


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_leaves_earlier_files_whole():
    import os
    import subprocess
    import sys

    from conftest import REPO

    assert (
        run_cli("fit", "-c", config("seed"), "--trainer.max_epochs", "3", "--trainer.enable_progress_bar", "false") == 0
    )
    run_dir = next(Path("lightning_logs").glob("seed/version_*"))
    before = snapshot(run_dir)
    assert (run_dir / "report.html").exists() and any((run_dir / "plots").iterdir())

    # One process runs both commands (one Python start instead of two); files may not grow past 4 KB, so
    # writes fail as on a full disk. Each command's exit code and last line of stderr follow a marker.
    script = (
        "import resource, signal, sys\n"
        "from trainlab.cli import main\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "for args in (['report', sys.argv[1]], ['fit', '-c', sys.argv[2], '--trainer.max_epochs', '2']):\n"
        "    try:\n"
        "        main(args)\n"
        "        code = 0\n"
        "    except SystemExit as stop:\n"
        "        code = stop.code\n"
        "    print(f'\\n@@ {args[0]} exit {code}', file=sys.stderr, flush=True)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(
        [sys.executable, "-c", script, str(run_dir), config("seed")], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    pieces = re.split(r"\n@@ (\w+) exit (\S+)\n", done.stderr)  # [report's stderr, "report", code, fit's ...]
    texts, commands, codes = pieces[0:-1:3], pieces[1::3], pieces[2::3]
    assert commands == ["report", "fit"] and codes == ["4", "4"], done.stderr[-3000:]
    for text in texts:
        assert text.strip().splitlines()[-1].startswith("trainlab: error: cannot write"), done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert snapshot(run_dir) == before  # the report rebuilt in place failed: the old files are whole
    assert not list(run_dir.rglob("*.tmp"))


def _column(kind: str, rows: int, rng):
    """A pyarrow array of `rows` values of one kind (numbers, text, dates, lists; gaps, NaN and inf among them)."""
    import datetime

    import pyarrow as pa

    if kind == "float":
        return pa.array(rng.normal(size=rows))
    if kind == "float with gaps":
        return pa.array([None if i % 4 == 1 else float(v) for i, v in enumerate(rng.normal(size=rows))])
    if kind == "float with nan":
        return pa.array([float("nan") if i % 5 == 2 else float(v) for i, v in enumerate(rng.normal(size=rows))])
    if kind == "float with inf":
        return pa.array([float("inf") if i == rows // 2 else float(v) for i, v in enumerate(rng.normal(size=rows))])
    if kind == "int":
        return pa.array(rng.integers(0, 3, size=rows))
    if kind == "text":
        return pa.array(rng.choice(["red", "green", "blue"], size=rows))
    if kind == "bool":
        return pa.array(rng.integers(0, 2, size=rows).astype(bool))
    if kind == "date":
        return pa.array([datetime.date(2024, 1, 1) + datetime.timedelta(days=i) for i in range(rows)])
    return pa.array([[1.0, float(i)] for i in range(rows)])  # a list column


KINDS = ["float", "float with gaps", "float with nan", "float with inf", "int", "text", "bool", "date", "list"]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.integers(0, 40),
    features=st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", "label"]), st.sampled_from(KINDS)), min_size=1, max_size=4
    ),
    target=st.sampled_from(KINDS),
    fmt=st.sampled_from(["csv", "parquet"]),
    seed=st.integers(0, 3),
)
@pytest.mark.slow
def test_random_data_files_train_or_are_refused_in_one_line(rows, features, target, fmt, seed, capsys):
    """Random schemas, column types, gaps, NaN and inf, repeated names: a fit, or one line and exit 2; never a
    traceback."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq
    import yaml

    assume(fmt == "parquet" or "list" not in [target, *(kind for _, kind in features)])  # CSV has no lists
    rng = np.random.default_rng(seed)
    names = [name for name, _ in features] + ["label"]
    arrays = [_column(kind, rows, rng) for _, kind in features] + [_column(target, rows, rng)]
    path = f"data.{fmt}"
    (pq.write_table if fmt == "parquet" else pa_csv.write_csv)(pa.Table.from_arrays(arrays, names=names), path)
    cfg = {
        "trainer": {"max_epochs": 1},
        "model": {"class_path": "trainlab.models.MLPModule", "init_args": {"hidden_dims": [4]}},
        "data": {"class_path": "trainlab.data.FileDataModule", "init_args": {"path": path, "target": "label"}},
        "run": {"doctor": None},
    }
    Path("random.yaml").write_text(yaml.safe_dump(cfg))
    code = run_cli("fit", "-c", "random.yaml", *QUIET)
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err, err
    assert code in (0, 2), (code, err)
    if code == 2:
        last = err.splitlines()[-1]
        assert last.startswith("trainlab: error: "), err
