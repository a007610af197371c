"""Reading a file's columns (trainlab.data.table): numbers that cannot train and columns a model cannot take
named in one line, random schemas, gaps imputed with the training median, categories from the training
rows only, and a file read once per command."""

import csv
from pathlib import Path

import numpy as np
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import trainlab
from tests.data.helpers import csv_config, write_csv
from tests.helpers import QUIET, run_cli
from trainlab.data import FileDataModule


def test_a_category_seen_only_outside_training_is_no_level():
    write_csv("train.csv", n=200)
    rows = list(csv.reader(open("train.csv")))
    data = FileDataModule("train.csv", "label", seed=3)
    data.setup()
    test_row = int(data.split_indices["test"][0]) + 1  # +1: the header
    rows[test_row][2] = "purple"
    with open("train.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    data = FileDataModule("train.csv", "label", seed=3)
    data.setup()
    assert "purple" not in data.encoder.levels["colour"]
    row = np.where(data.split_indices["test"] == test_row - 1)[0][0]
    assert (data.splits["test"][0][row, 2:] == 0).all()  # unseen: all zeros


@pytest.mark.slow
def test_cv_and_tune_read_a_file_once_and_again_only_when_it_changes(monkeypatch):
    """tune and cv build the config many times (checks, plans, packs, trials): the file is read once per
    command; a fit alone keeps nothing; within one command a changed file is read anew."""
    from trainlab.data import table

    reads = []
    read = table._read_table
    monkeypatch.setattr(table, "_read_table", lambda path, kind: reads.append(path) or read(path, kind))
    write_csv("train.csv")
    Path("csv.yaml").write_text(yaml.safe_dump(csv_config()))
    assert run_cli("cv", "-c", "csv.yaml", "--folds", "2", "--trainer.max_epochs", "1", *QUIET) == 0
    assert len(reads) == 1
    tune = {"base": "csv.yaml", "sampler": "grid", "overrides": {"trainer.max_epochs": 1}}
    tune["space"] = {"model.init_args.lr": [0.05, 0.005]}
    for population in (1, 2):  # trials one by one, and packed
        Path("tune.yaml").write_text(yaml.safe_dump({**tune, "name": f"p{population}", "population": population}))
        reads.clear()
        assert run_cli("tune", "-c", "tune.yaml") == 0
        assert len(reads) == 1, population
    reads.clear()
    for _ in range(2):
        trainlab.fit("csv.yaml", trainer__max_epochs=1, trainer__enable_progress_bar=False, run__report=False)
    assert len(reads) == 2
    reads.clear()
    with table.shared_reads():
        first = table.read_table("train.csv")
        assert table.read_table("train.csv") is first
        write_csv("train.csv", seed=1)  # changed (its size differs): read anew
        assert table.read_table("train.csv") is not first and len(reads) == 2


@pytest.mark.parametrize(
    "column, value, fmt, expected",
    [
        ("x2", "inf", "csv", "column 'x2', row 6: inf is not a finite number"),
        ("x2", "-inf", "csv", "column 'x2', row 6: -inf is not a finite number"),
        ("x2", "1e300", "csv", "column 'x2', row 6: inf is not a finite number"),  # read as float32
        ("target", "inf", "csv", "target 'target', row 6: inf is not a finite number"),
        ("target", "nan", "parquet", "target 'target', row 6: nan is not a finite number"),
    ],
)
def test_numbers_that_cannot_train_are_refused_with_their_column_and_row(column, value, fmt, expected, capsys):
    """inf, -inf, values beyond float32 in a feature, NaN or inf in a target: one line, exit 2, nothing run."""
    import pyarrow as pa

    rng = np.random.default_rng(0)
    x1, x2 = rng.normal(size=40), rng.normal(size=40)
    columns = {"x1": x1, "x2": x2.astype(object), "target": (x1 + x2).astype(object)}
    columns[column][5] = float(value)
    table = pa.table({k: pa.array([float(v) for v in c]) for k, c in columns.items()})
    path = f"data.{fmt}"
    (pq.write_table if fmt == "parquet" else pa_csv.write_csv)(table, path)
    Path("c.yaml").write_text(yaml.safe_dump(csv_config(path, target="target")))
    assert run_cli("fit", "-c", "c.yaml", *QUIET) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and expected in err and path in err, err
    assert not Path("lightning_logs").exists()


def _table_with(name: str, column, target=None):
    import pyarrow as pa

    rng = np.random.default_rng(0)
    x1 = rng.normal(size=40)
    label = target if target is not None else pa.array(np.where(x1 > 0, "yes", "no"))
    return pa.Table.from_arrays([pa.array(x1), column, label], names=["x1", name, "label"])


def _days(n: int = 40):
    import datetime

    return [datetime.date(2024, 1, 1) + datetime.timedelta(days=i) for i in range(n)]


def _unusable_columns():
    import datetime

    import pyarrow as pa

    n = 40
    return {
        "date in a csv": ("csv", _table_with("when", pa.array(_days())), "input column 'when' holds dates or times"),
        "timestamp": (
            "parquet",
            _table_with("when", pa.array([datetime.datetime(2024, 1, 1, 10)] * n)),
            "input column 'when' holds dates or times",
        ),
        "list": ("parquet", _table_with("l", pa.array([[1.0, 2.0]] * n)), "input column 'l' holds values of type list"),
        "struct": (
            "parquet",
            _table_with("s", pa.array([{"u": 1}] * n)),
            "input column 's' holds values of type struct",
        ),
        "map": (
            "parquet",
            _table_with("m", pa.array([[("k", 1)]] * n, type=pa.map_(pa.string(), pa.int64()))),
            "input column 'm' holds values of type map",
        ),
        "date target": ("parquet", _table_with("x2", pa.array(np.ones(n)), pa.array(_days())), "target column 'label'"),
        "repeated name (csv)": (
            "csv",
            _table_with("x1", pa.array(np.ones(n))),
            "column 'x1' appears 2 times (columns 1, 2)",
        ),
        "repeated name (parquet)": (
            "parquet",
            _table_with("label", pa.array(np.ones(n))),
            "column 'label' appears 2 times (columns 2, 3)",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "date in a csv",
        "timestamp",
        "list",
        "struct",
        "map",
        "date target",
        "repeated name (csv)",
        "repeated name (parquet)",
    ],
)
def test_columns_a_model_cannot_take_are_named_in_one_line(case, capsys):
    """Dates, times, lists, structs, maps and repeated column names: one line naming the file and column."""
    fmt, table, expected = _unusable_columns()[case]
    path = f"data.{fmt}"
    (pq.write_table if fmt == "parquet" else pa_csv.write_csv)(table, path)
    Path("c.yaml").write_text(yaml.safe_dump(csv_config(path)))
    assert run_cli("fit", "-c", "c.yaml", *QUIET) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and expected in err and path in err and "Traceback" not in err, err
    assert not Path("lightning_logs").exists()


def test_a_date_column_left_out_of_the_features_is_no_obstacle():
    import pyarrow as pa

    pq.write_table(_table_with("when", pa.array(_days())), "dated.parquet")
    data = FileDataModule("dated.parquet", "label", features=["x1"])
    data.setup()
    assert data.encoder.numeric == ["x1"] and data.num_features == 1


def test_gaps_in_a_parquet_float_column_are_imputed_with_the_training_median():
    import pyarrow as pa

    values = np.random.default_rng(0).normal(size=60)
    values[[3, 17]] = np.nan  # a Parquet float's missing value is NaN, in a read-only Arrow buffer
    labels = pa.array(np.where(np.arange(60) % 2, "yes", "no"))
    pq.write_table(pa.table({"x1": pa.array(values), "label": labels}), "gaps.parquet")
    data = FileDataModule("gaps.parquet", "label")
    data.setup()
    train = data.split_indices["train"]
    assert data.encoder.medians["x1"] == pytest.approx(np.nanmedian(values[train]))
    assert all(bool(data.splits[split][0].isfinite().all()) for split in ("train", "val", "test"))


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
