"""Your own data: CSV and Parquet files, and scikit-learn's bundled datasets."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
import yaml

import trainlab
from conftest import QUIET, REPO, config, run_cli
from trainlab.data import BundledDataModule, FileDataModule

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


def test_preprocessing_is_fitted_on_the_training_split_only():
    write_csv("train.csv")
    data = FileDataModule("train.csv", "label")
    data.setup()
    train = data.split_indices["train"]
    raw = np.genfromtxt("train.csv", delimiter=",", skip_header=1, usecols=(0, 1))
    enc = data.encoder
    assert enc.numeric == ["x1", "x2"] and enc.categorical == ["colour"]
    assert enc.medians["x1"] == pytest.approx(np.nanmedian(raw[train, 0]))
    assert enc.levels["colour"] == ["blue", "green", "red"]
    imputed = np.where(np.isnan(raw[train, 0]), np.nanmedian(raw[train, 0]), raw[train, 0])
    assert data.scaler.mean_[0] == pytest.approx(imputed.astype(np.float32).mean(), rel=1e-5)
    assert data.scaler.mean_[1] == pytest.approx(raw[train, 1].astype(np.float32).mean(), rel=1e-5)
    assert list(data.scaler.mean_[2:]) == [0, 0, 0] and list(data.scaler.scale_[2:]) == [1, 1, 1]  # one-hot kept
    X = data.splits["train"][0].numpy()
    assert set(np.unique(X[:, 2:])) == {0.0, 1.0} and (X[:, 2:].sum(axis=1) == 1).all()
    assert abs(X[:, 0].mean()) < 1e-5 and abs(X[:, 1].std() - 1) < 1e-2
    assert data.task == "binary" and data.class_labels == ["no", "yes"]


def test_properties_never_read_the_file_shape_reads_it_once(monkeypatch):
    from trainlab.data import table

    reads = []
    read = table._read_table
    monkeypatch.setattr(table, "_read_table", lambda path, kind: reads.append(path) or read(path, kind))
    write_csv("train.csv")
    data = FileDataModule("train.csv", "label")
    for name in ("task", "num_features", "num_classes"):
        with pytest.raises(RuntimeError, match="train.csv: not read yet"):
            getattr(data, name)
    assert reads == []
    assert data.shape() == {"input_dim": 5, "task": "binary", "num_classes": 2, "slots": 1}  # x1, x2, 3 colours
    assert data.shape() == data.shape() and len(reads) == 1
    assert (data.num_features, data.task, data.num_classes) == (5, "binary", 2) and len(reads) == 1


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
def test_csv_round_trip_through_a_checkpoint_and_a_new_file_in_a_fresh_process():
    write_csv("train.csv")
    write_csv("new.csv", n=40, seed=9, target=False, colours=("red", "green", "purple"))
    result = trainlab.fit(csv_config(), trainer__enable_progress_bar=False, run__report=False)
    assert result.metrics["test/auroc"] > 0.9
    # The training file changes after the fit: predictions must use the statistics saved in the checkpoint.
    write_csv("train.csv", seed=5)
    Path("config.yaml").write_text(yaml.safe_dump(csv_config()))
    command = [
        sys.executable,
        "-m",
        "trainlab",
        "predict",
        "-c",
        "config.yaml",
        "--ckpt_path",
        str(result.last_checkpoint),
    ]
    command += ["--data.init_args.predict_path", "new.csv", *QUIET]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    with open(result.run_dir / "predict" / "version_0" / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["dataset_index"]) for r in rows] == list(range(40))  # one per input row, in order
    assert {r["prediction"] for r in rows} <= {"yes", "no"} and all(r["target"] == "" for r in rows)
    probability = np.array([float(r["probability"]) for r in rows])
    assert [r["prediction"] for r in rows] == ["yes" if p > 0.5 else "no" for p in probability]
    # The same predictions from this process, with the checkpoint's own statistics:
    module = trainlab.models.MLPModule.load_from_checkpoint(result.last_checkpoint)
    from trainlab.data.table import Encoder, read_table

    state = __import__("torch").load(result.last_checkpoint, weights_only=True)["FileDataModule"]
    X = Encoder.from_state(state["encoder"], impute=True).transform(read_table("new.csv"), "new.csv")
    X = (X - np.array(state["scaler_mean"])) / np.array(state["scaler_scale"])
    import torch

    with torch.no_grad():
        expected = torch.sigmoid(module(torch.tensor(X, dtype=torch.float32))[0]).squeeze(-1).numpy()
    np.testing.assert_allclose(probability, expected, rtol=1e-5, atol=1e-6)


def test_parquet_files_train_and_cross_validate():
    write_csv("train.csv")
    table = pa_csv.read_csv("train.csv")
    pq.write_table(table, "train.parquet")
    result = trainlab.fit(csv_config("train.parquet"), trainer__enable_progress_bar=False, run__report=False)
    assert result.metrics["test/accuracy"] > 0.8
    Path("parquet.yaml").write_text(yaml.safe_dump(csv_config("train.parquet")))
    assert run_cli("cv", "-c", "parquet.yaml", "--folds", "3", "--trainer.max_epochs", "3", *QUIET) == 0
    summary = json.loads(Path("lightning_logs/cv/parquet/version_0/cv_results.json").read_text())
    assert len(summary["per_fold"]) == 3
    with open("lightning_logs/cv/parquet/version_0/oof_predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(int(r["dataset_index"]) for r in rows) == list(range(300))
    assert {r["target"] for r in rows} == {"yes", "no"}  # the file's own labels


def test_text_classes_keep_their_names_in_predictions_out_of_fold_rows_and_figures():
    from trainlab.reporting import figures

    write_csv("train.csv")
    base = csv_config(target="colour", predict_split="test")  # red, green, blue: three text classes
    base["trainer"]["max_epochs"] = 2
    Path("colour.yaml").write_text(yaml.safe_dump(base))
    result = trainlab.fit("colour.yaml", trainer__enable_progress_bar=False, run__report=False)
    assert run_cli("predict", "-c", "colour.yaml", "--ckpt_path", result.last_checkpoint, *QUIET) == 0
    with open(result.run_dir / "predict" / "version_0" / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    probabilities = ["probability_blue", "probability_green", "probability_red"]  # the labels, sorted
    assert list(rows[0]) == ["index", "dataset_index", *probabilities, "prediction", "target"]
    for row in rows:  # each row's prediction is the label of its largest probability
        assert row["prediction"] == max(probabilities, key=lambda k: float(row[k])).split("_", 1)[1]
    assert run_cli("cv", "-c", "colour.yaml", "--folds", "2", *QUIET) == 0
    with open("lightning_logs/cv/colour/version_0/oof_predictions.csv", newline="") as f:
        assert next(csv.reader(f))[3:6] == probabilities

    labels = ["blue", "green", "red"]
    y, predicted = np.array([0, 1, 2, 2]), np.array([0, 2, 2, 1])
    axes = figures.confusion(y, predicted, 3, labels).axes[0]
    assert [t.get_text() for t in axes.get_xticklabels()] == labels == [t.get_text() for t in axes.get_yticklabels()]
    scores = np.eye(3)[[0, 1, 2, 2]] * 0.8 + 0.2 / 3
    legend = figures.roc_curves(y, scores, labels).axes[0].get_legend().get_texts()
    assert [t.get_text().split(" vs rest")[0] for t in legend] == labels
    scatter = figures.data_scatter(np.random.default_rng(0).normal(size=(4, 2)), y.astype(float), "multiclass", labels)
    assert [t.get_text() for t in scatter.axes[0].get_legend().get_texts()] == labels  # one colour per class
    assert len(scatter.axes) == 1  # no continuous colour bar for classes


def write_rows(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


BAD_FILES = {
    "missing file": (lambda: "nowhere.csv", {}, "nowhere.csv: no such file"),
    "empty file": (lambda: (Path("empty.csv").write_text(""), "empty.csv")[1], {}, "empty.csv: the file is empty"),
    "header only": (lambda: write_rows("head.csv", COLUMNS, []), {}, "head.csv: the file has a header but no rows"),
    "no target column": (lambda: write_csv("t.csv"), {"target": "churn"}, "no target column 'churn'"),
    "not a number": (
        lambda: write_rows("nan.csv", ["x1", "label"], [[str(i), i % 2] for i in range(40)] + [["abc", 1]]),
        {},
        "column 'x1', row 41: 'abc' is not a number",
    ),
    "missing value refused": (lambda: write_csv("gap.csv"), {"missing": "error"}, "column 'x1', row 4: missing value"),
    "single class": (
        lambda: write_rows("one.csv", ["x1", "label"], [[i, "yes"] for i in range(30)]),
        {},
        "has a single class ('yes')",
    ),
    "too many classes": (
        lambda: write_rows("many.csv", ["x1", "label"], [[i, f"c{i % 30}"] for i in range(300)]),
        {},
        "has 30 classes; allowed: at most data.init_args.max_classes = 20",
    ),
    "binary with three classes": (
        lambda: write_csv("three.csv", colours=("a", "b", "c")),
        {"target": "colour", "task": "binary"},
        "has 3 classes; task binary needs exactly 2",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_data_files_get_one_line_naming_file_column_or_row(case, capsys):
    make, data, named = BAD_FILES[case]
    path = make()
    Path("bad.yaml").write_text(yaml.safe_dump(csv_config(str(path), **data)))
    assert run_cli("fit", "-c", "bad.yaml", *QUIET) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("trainlab: error:") and "\n" not in err and "Traceback" not in err
    assert named in err
    assert not Path("lightning_logs").exists()


def test_a_file_without_the_named_columns_is_answered_from_its_header_before_lightning_is_imported():
    """The early check reads only the header (CSV) or the schema (Parquet) and words the problem as
    FileDataModule does once the whole file is read."""
    from trainlab.early_checks import check_early
    from trainlab.errors import as_user_error
    from trainlab.lightning_cli import run_lightning_cli

    write_csv("train.csv")
    pq.write_table(pa_csv.read_csv("train.csv"), "train.parquet")
    Path("empty.csv").write_text("")
    cases = {
        "missing file": ({"path": "nowhere.csv"}, "nowhere.csv: no such file"),
        "empty file": ({"path": "empty.csv"}, "empty.csv: the file is empty"),
        "no target column": ({"target": "churn"}, "train.csv: no target column 'churn'; its columns: x1, x2, colour"),
        "no feature column": ({"features": ["x1", "x3"]}, "train.csv: no column 'x3' (data.init_args.features"),
        "parquet": ({"path": "train.parquet", "categorical": ["hue"]}, "train.parquet: no column 'hue'"),
    }
    for case, (data, expected) in cases.items():
        Path("bad.yaml").write_text(yaml.safe_dump(csv_config(**data)))
        args = ["fit", "-c", "bad.yaml", *QUIET]
        early = check_early(args)
        with pytest.raises(Exception) as full:
            run_lightning_cli(args)
        assert early is not None and expected in early, case
        assert early == str(as_user_error(full.value)), case  # the same words as the full path
    Path("good.yaml").write_text(yaml.safe_dump(csv_config(path="train.parquet", features=["x1", "colour"])))
    assert check_early(["fit", "-c", "good.yaml"]) is None
    code = "import sys; from trainlab.cli import main; main(sys.argv[1:])"
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, "fit", "-c", "bad.yaml"], capture_output=True, text=True
    )
    assert done.returncode == 2 and "no column 'hue'" in done.stderr and "lightning" not in done.stderr


def test_a_feature_column_absent_at_predict_time(capsys):
    write_csv("train.csv")
    result = trainlab.fit(csv_config(), trainer__enable_progress_bar=False, run__report=False, trainer__max_epochs=2)
    write_rows("partial.csv", ["x1", "colour"], [[0.1, "red"]])
    Path("config.yaml").write_text(yaml.safe_dump(csv_config()))
    args = ["predict", "-c", "config.yaml", "--ckpt_path", result.last_checkpoint, "--data.init_args.predict_path"]
    assert run_cli(*args, "partial.csv", *QUIET) == 2
    assert "partial.csv: no column 'x2', which the model was trained on" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "metric", "floor"), [("breast_cancer", "test/auroc", 0.97), ("diabetes", "test/r2", 0.3)]
)
def test_bundled_datasets_reach_their_marks_with_the_shipped_configs(name, metric, floor):
    result = trainlab.fit(config(name), trainer__enable_progress_bar=False, run__report=False)
    assert result.metrics[metric] > floor


def test_bundled_datasets_are_scikit_learns():
    from sklearn import datasets

    for name in ("breast_cancer", "iris", "wine", "digits", "diabetes"):
        data = BundledDataModule(name)
        X, y = data.load_arrays()
        bunch = getattr(datasets, f"load_{name}")()
        np.testing.assert_array_equal(X, bunch.data.astype(np.float32))
        assert X.shape[1] == data.num_features
        assert data.num_classes == (None if name == "diabetes" else len(np.unique(bunch.target)))


@pytest.mark.slow
def test_a_csv_file_tunes_and_reports():
    write_csv("train.csv")
    Path("csv.yaml").write_text(yaml.safe_dump(csv_config()))
    Path("tune.yaml").write_text(
        yaml.safe_dump(
            {
                "base": "csv.yaml",
                "sampler": "grid",
                "overrides": {"trainer.max_epochs": 3},
                "space": {"model.init_args.lr": [0.05, 0.005]},
            }
        )
    )
    assert run_cli("tune", "-c", "tune.yaml") == 0
    with open("lightning_logs/tune/tune/leaderboard.csv", newline="") as f:
        assert [r["state"] for r in csv.DictReader(f)] == ["COMPLETE", "COMPLETE"]
    result = trainlab.fit("lightning_logs/tune/tune/best_config.yaml", trainer__enable_progress_bar=False)
    page = (result.run_dir / "report.html").read_text()  # the report of a run on a file
    assert "test/auroc" in page and (result.run_dir / "plots" / "roc.png").exists()


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
