"""Your own data: CSV and Parquet files, and scikit-learn's bundled datasets."""

import csv
import gzip
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
from tests.data.helpers import COLUMNS, csv_config, write_csv
from tests.helpers import QUIET, REPO, config, run_cli
from trainlab.data import BundledDataModule, FileDataModule


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
    "a folder": (lambda: (Path("folder.csv").mkdir(), "folder.csv")[1], {}, "folder.csv: a folder, not a file"),
    "compressed": (
        lambda: (Path("gz.csv").write_bytes(gzip.compress(b"x1,label\n1,0\n2,1\n")), "gz.csv")[1],
        {},
        "gz.csv: a gzip-compressed file (decompress it first), not CSV text; allowed: UTF-8 CSV text or a .parquet",
    ),
    "utf-16": (
        lambda: (Path("wide.csv").write_text("x1,label\n1,0\n2,1\n", encoding="utf-16"), "wide.csv")[1],
        {},
        "wide.csv: UTF-16 text (save the file as UTF-8), not CSV text",
    ),
    "latin-1 header": (
        lambda: (Path("head1.csv").write_bytes(b"x1,caf\xe9\n1,0\n2,1\n"), "head1.csv")[1],
        {},
        "head1.csv: cannot be read as csv: its header is not UTF-8 text; save the file as UTF-8",
    ),
    "latin-1 text": (
        lambda: (
            Path("latin.csv").write_bytes(b"x1,label\n" + b"".join(b"%d,caf\xe9\n" % i for i in range(30))),
            "latin.csv",
        )[1],
        {},
        "latin.csv: target column 'label' holds text that is not UTF-8 (another encoding, such as Latin-1)",
    ),
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
    "a constant number": (
        lambda: write_rows("constant.csv", ["x1", "label"], [[i, 5] for i in range(30)]),
        {},
        "constant.csv: target 'label' has a single class (5); classification needs at least 2",
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


@pytest.mark.parametrize(
    "content, message",
    [
        ("x1\n0.5\n", "no column 'x2', which the model was trained on"),
        ("x1,x2\n", "the file has a header but no rows"),
        ("", "the file is empty"),
    ],
)
def test_predicting_a_bad_file_writes_nothing(content, message, trained_on_a_file, capsys):
    config_file, _, checkpoint = trained_on_a_file
    Path("new.csv").write_text(content)
    args = ["--ckpt_path", checkpoint, "--data.init_args.predict_path", "new.csv"]
    assert run_cli("predict", "-c", config_file, *args, *QUIET) == 2
    assert message in capsys.readouterr().err
    assert not list(Path().glob("lightning_logs/*/version_*"))
