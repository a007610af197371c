"""trainlab cv: folds equal scikit-learn's, the held-out fold never reaches fit, and the results add up."""

import contextlib
import csv
import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn import metrics as skm
from sklearn.model_selection import KFold, StratifiedKFold

from conftest import config, fork_trainlab, run_cli
from trainlab.data import SyntheticDataModule
from trainlab.data.folds import Fold

SMALL = ["--trainer.max_epochs", "6", "--data.init_args.val_fraction", "0.2", "--run.test_ckpt", "best"]


def cv_dir(name: str, version: int = 0) -> Path:
    return Path("lightning_logs/cv", name, f"version_{version}")


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("generator", ["classification", "regression"])
def test_folds_are_scikit_learns_and_the_held_out_fold_never_reaches_fit(generator):
    k, seed = 5, 7
    stratify = generator == "classification"
    splitter = (StratifiedKFold if stratify else KFold)(n_splits=k, shuffle=True, random_state=seed)
    held_out = []
    for index in range(k):
        data = SyntheticDataModule(
            generator=generator, n_samples=300, n_features=4, val_fraction=0.25, folds=[Fold(k, index, seed, stratify)]
        )
        data.setup()
        X, y = data.load_arrays()
        train_part, test_part = list(splitter.split(X, y))[index]
        split = data.split_indices
        assert sorted(split["test"]) == sorted(test_part)
        assert sorted(np.concatenate([split["train"], split["val"]])) == sorted(train_part)
        assert len(split["val"]) == round(0.25 * len(train_part))  # validation carved from the training folds
        # The scaler saw the training split only, and the data module validates (early stopping, checkpoints) on val.
        scaler = StandardScaler_of(X[split["train"]])
        np.testing.assert_allclose(data.scaler.mean_, scaler.mean_, rtol=1e-12)
        np.testing.assert_allclose(data.scaler.scale_, scaler.scale_, rtol=1e-12)
        assert data.validation_split == "val"
        held_out.append(split["test"])
    everything = np.concatenate(held_out)
    assert sorted(everything) == list(range(300))  # every sample held out exactly once


def StandardScaler_of(X):
    from sklearn.preprocessing import StandardScaler

    return StandardScaler().fit(X.astype(np.float32))


def test_cv_end_to_end_classification_metrics_add_up():
    args = ["cv", "-c", config("seed"), "--folds", "3", "--seed", "5", *SMALL, "--run.early_stopping.patience", "3"]
    assert run_cli(*args) == 0
    folder = cv_dir("seed")
    summary = json.loads((folder / "cv_results.json").read_text())
    assert [(f["repeat"], f["fold"]) for f in summary["per_fold"]] == [(0, 0), (0, 1), (0, 2)]
    for key, mean in summary["mean"].items():
        values = [f["metrics"][key] for f in summary["per_fold"]]
        assert mean == pytest.approx(np.mean(values), abs=1e-12)
        assert summary["std"][key] == pytest.approx(np.std(values, ddof=1), abs=1e-12)
    for f in summary["per_fold"]:  # each fold's own run, with its fold and early stopping on its own val split
        saved = (Path(f["run_dir"]) / "config.yaml").read_text()
        assert "folds:" in saved and f"index: {f['fold']}" in saved
        assert json.loads((Path(f["run_dir"]) / "metrics.json").read_text()) == pytest.approx(f["metrics"])

    rows = read_csv(folder / "oof_predictions.csv")
    index = np.array([int(r["dataset_index"]) for r in rows])
    assert sorted(index) == list(range(1000))  # every sample once
    data = SyntheticDataModule(**seed_data())
    X, y = data.load_arrays()
    expected = {
        int(i): fold
        for fold, (_, test) in enumerate(StratifiedKFold(3, shuffle=True, random_state=5).split(X, y))
        for i in test
    }
    assert all(int(r["fold"]) == expected[int(r["dataset_index"])] for r in rows)
    target = np.array([int(r["target"]) for r in rows])
    assert (target == y[index]).all()
    probability = np.array([float(r["probability"]) for r in rows])
    predicted = np.array([int(r["prediction"]) for r in rows])
    oof = summary["oof"][0]["metrics"]
    assert oof["oof/accuracy"] == pytest.approx(skm.accuracy_score(target, predicted), abs=1e-6)
    assert oof["oof/precision"] == pytest.approx(skm.precision_score(target, predicted), abs=1e-6)
    assert oof["oof/recall"] == pytest.approx(skm.recall_score(target, predicted), abs=1e-6)
    assert oof["oof/f1"] == pytest.approx(skm.f1_score(target, predicted), abs=1e-6)
    assert oof["oof/auroc"] == pytest.approx(skm.roc_auc_score(target, probability), abs=1e-6)
    assert (predicted == (probability > 0.5)).all()
    assert "Held-out metrics per fold" in (folder / "report.html").read_text()


def seed_data() -> dict:
    import yaml

    return yaml.safe_load(Path(config("seed")).read_text())["data"]["init_args"]


def test_cv_regression_with_repeats():
    args = ["cv", "-c", config("regression"), "--folds", "2", "--repeats", "2", "--seed", "3"]
    assert run_cli(*args, "--trainer.max_epochs", "3", "--data.init_args.n_samples", "300") == 0
    folder = cv_dir("regression")
    summary = json.loads((folder / "cv_results.json").read_text())
    assert not summary["stratified"] and len(summary["per_fold"]) == 4
    rows = read_csv(folder / "oof_predictions.csv")
    for repeat in (0, 1):
        mine = [r for r in rows if int(r["repeat"]) == repeat]
        assert sorted(int(r["dataset_index"]) for r in mine) == list(range(300))
        folds = KFold(2, shuffle=True, random_state=3 + repeat).split(np.zeros(300))
        expected = {int(i): fold for fold, (_, test) in enumerate(folds) for i in test}
        assert all(int(r["fold"]) == expected[int(r["dataset_index"])] for r in mine)
        target = np.array([float(r["target"]) for r in mine])
        predicted = np.array([float(r["prediction"]) for r in mine])
        oof = summary["oof"][repeat]["metrics"]
        assert oof["oof/r2"] == pytest.approx(skm.r2_score(target, predicted), rel=1e-5)
        assert oof["oof/mae"] == pytest.approx(skm.mean_absolute_error(target, predicted), rel=1e-5)


BAD = [
    (["--folds", "1"], "--folds=1"),
    (["--folds", "60", "--data.init_args.n_samples", "100"], "--folds=60"),
    (["--folds", "3", "--stratify", "true", "-c", config("regression")], "regression target"),
    (["--folds", "3", "--stratify", "maybe"], "--stratify=maybe"),
    (["--folds", "3", "--repeats", "0"], "--repeats=0"),
    (["--folds", "3", "--model.init_args.lr", "-1"], "model.init_args.lr"),
    (["--folds", "3", "oops"], "'oops'"),
    (["--folds", "3", "-c", "missing.yaml"], "missing.yaml"),
]


@pytest.mark.parametrize(("args", "named"), BAD, ids=[b[1] for b in BAD])
def test_bad_cv_input_is_one_line_and_runs_nothing(args, named, capsys):
    assert run_cli("cv", "-c", config("seed"), *args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("trainlab: error:") and "\n" not in err and "Traceback" not in err
    assert named in err
    assert not Path("lightning_logs/cv").exists()


@pytest.mark.slow
def test_two_workers_give_the_folds_one_worker_gives():
    args = ["cv", "-c", config("seed"), "--folds", "4", *SMALL]
    assert run_cli(*args, "--name", "one") == 0
    assert run_cli(*args, "--name", "two", "--workers", "2") == 0
    one = json.loads((cv_dir("one") / "cv_results.json").read_text())
    two = json.loads((cv_dir("two") / "cv_results.json").read_text())
    for a, b in zip(one["per_fold"], two["per_fold"], strict=True):
        assert a["metrics"] == pytest.approx(b["metrics"], abs=1e-4)
    assert (
        read_csv(cv_dir("two") / "oof_predictions.csv")[0].keys()
        == read_csv(cv_dir("one") / "oof_predictions.csv")[0].keys()
    )


def test_folds_exclude_test_leaves_the_test_split_unseen():
    settings = dict(n_samples=200, val_fraction=0.2, test_fraction=0.25)
    plain = SyntheticDataModule(**settings)
    plain.setup()
    held_out = []
    for index in range(4):
        data = SyntheticDataModule(**settings, folds=[Fold(4, index, 0)], folds_exclude_test=True)
        data.setup()
        assert not set(data.split_indices["test"]) & set(plain.split_indices["test"])
        assert not set(data.split_indices["train"]) & set(plain.split_indices["test"])
        held_out.extend(data.split_indices["test"])
    outside_test = np.concatenate([plain.split_indices["train"], plain.split_indices["val"]])
    assert sorted(held_out) == sorted(outside_test)  # the folds cover exactly what the test split is not


def tune_yaml(name: str, body: dict) -> str:
    import yaml

    Path(f"{name}.yaml").write_text(yaml.safe_dump({"base": config("seed"), "metric": "val/loss", **body}))
    return f"{name}.yaml"


@pytest.mark.slow
def test_cv_inside_tuning_scores_each_trial_by_its_mean_over_folds():
    import optuna

    body = {
        "sampler": "grid",  # lr 0.1 first, then the hopeless 1e-5: worse after its first fold than the first trial
        "population": 1,  # one fit per fold, reported fold by fold (tests/test_population.py packs them)
        "cv": {"folds": 2, "seed": 2},
        "pruner": "median",
        "pruner_options": {"n_startup_trials": 1},
        "overrides": {"trainer.max_epochs": 5, "model.init_args.optimizer": "sgd"},
        "space": {"model.init_args.lr": [0.1, 1.0e-5]},
    }
    assert run_cli("tune", "-c", tune_yaml("cvtune", body)) == 0
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend("lightning_logs/tune/cvtune/study.journal")
    )
    trials = optuna.load_study(study_name="cvtune", storage=storage).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "PRUNED"]
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    for trial in complete:
        folds = sorted(Path(trial.user_attrs["run_dir"]).glob("fold_*"))
        assert [f.name for f in folds] == ["fold_0", "fold_1"]
        losses = [json.loads((f / "metrics.json").read_text())["test/loss"] for f in folds]
        assert trial.value == pytest.approx(np.mean(losses), rel=1e-9)  # held-out folds' mean
        assert trial.user_attrs["fold_values"] == pytest.approx(losses)
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    assert pruned and all(len(t.user_attrs["fold_values"]) < 2 for t in pruned)  # stopped between folds
    assert all(t.params["model.init_args.lr"] == 1e-5 for t in pruned)


@pytest.mark.slow
def test_nested_cv_tunes_inside_each_outer_fold_without_seeing_it():
    import yaml

    inner = tune_yaml(
        "inner",
        {"sampler": "grid", "overrides": {"trainer.max_epochs": 4}, "space": {"model.init_args.lr": [0.1, 0.001]}},
    )
    args = ["cv", "-c", config("seed"), "--folds", "2", "--tune", inner, "--data.init_args.val_fraction", "0.25"]
    assert run_cli(*args, "--trainer.max_epochs", "4") == 0
    folder = cv_dir("seed")
    summary = json.loads((folder / "cv_results.json").read_text())
    assert len(summary["per_fold"]) == 2
    for fold in summary["per_fold"]:
        assert fold["chosen"]["model.init_args.lr"] in (0.1, 0.001)
        outer = yaml.safe_load((Path(fold["run_dir"]) / "config.yaml").read_text())
        assert outer["model"]["init_args"]["lr"] == fold["chosen"]["model.init_args.lr"]  # chosen values, retrained
        trials = sorted((folder / "tuning" / f"fold_{fold['fold']}" / "trials").iterdir())
        assert len(trials) == 2
        for trial in trials:  # every trial trained inside the outer training part and never tested on the outer fold
            saved = yaml.safe_load((trial / "config.yaml").read_text())
            assert saved["data"]["init_args"]["folds"] == [{"k": 2, "index": fold["fold"], "seed": 0, "stratify": True}]
            assert saved["run"]["test_after_fit"] is False and not (trial / "metrics.json").exists()
        assert fold["metrics"]["test/accuracy"] > 0.5
    assert sorted(int(r["dataset_index"]) for r in read_csv(folder / "oof_predictions.csv")) == list(range(1000))


def test_a_fold_that_diverges_in_a_worker_stops_the_cv_in_one_line(capsys):
    args = ["cv", "-c", config("seed"), "--folds", "2", "--workers", "2", "--model.init_args.lr", "1e12"]
    assert run_cli(*args, "--model.init_args.optimizer", "sgd", "--trainer.max_epochs", "3") == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith("trainlab: training failed:") and "Traceback" not in err


def test_a_signal_between_two_jobs_ends_a_worker_without_a_traceback(monkeypatch):
    """SIGTERM raises trainlab's Stopped wherever the worker is; waiting for its next job it must end as it does
    in a job (exit 128 + the signal), not with multiprocessing's traceback and exit 1."""
    from trainlab import workers
    from trainlab.errors import Stopped

    class SignalledWhileWaiting:
        def get(self):
            raise Stopped(signal.SIGTERM)

    monkeypatch.setattr(workers, "_claimed", None)  # _serve claims a share for this process: given back after
    with pytest.raises(SystemExit) as stop:
        workers._serve({"threads": torch.get_num_threads(), "gpu": None}, print, SignalledWhileWaiting(), None)
    assert stop.value.code == 128 + signal.SIGTERM


@pytest.mark.slow
def test_sigterm_to_one_cv_worker_ends_the_command_in_one_line_instead_of_waiting_forever():
    """The command runs in a process of its own, a fork of this one (a new interpreter spends ~5 s importing
    Lightning); its two workers are its children, and one of them is stopped in its fold (three folds: should
    the first fold end before the signal comes, its worker is in the third)."""
    args = ["cv", "-c", config("seed"), "--folds", "3", "--workers", "2", "--no-pack", "--trainer.max_epochs", "30"]
    command = fork_trainlab(*args, "--data.init_args.n_samples", "300")  # output, workers' too: out/err.log
    children = Path(f"/proc/{command.pid}/task/{command.pid}/children")
    folds = Path("lightning_logs/cv/seed/version_0/folds")
    deadline = time.monotonic() + 120
    while not (folds.is_dir() and len(list(folds.iterdir())) >= 2) and time.monotonic() < deadline:
        time.sleep(0.05)  # no clock decides: both workers are in a fold once both fold directories exist
    workers = children.read_text().split()
    os.kill(int(workers[0]), signal.SIGTERM)
    command.join(timeout=300)
    if command.is_alive():  # it waits forever: stop it and its workers, then fail
        for pid in [command.pid, *workers]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        command.join()
    err = Path("err.log").read_text()
    assert command.exitcode == 5, err[-2000:]
    assert err.strip().splitlines()[-1].startswith("trainlab: error: ") and "Traceback" not in err


def test_a_saved_run_config_is_a_base_for_cv():
    """A run directory's config.yaml (which records ckpt_path: null) cross-validates as its config did."""
    import trainlab

    fitted = trainlab.fit(
        config("seed"), **{"trainer.max_epochs": 1, "trainer.enable_progress_bar": False, "run.report": False}
    )
    result = trainlab.cross_validate(fitted.run_dir / "config.yaml", folds=2, overrides={"trainer.max_epochs": 1})
    assert len(result.per_fold) == 2 and "test/accuracy" in result.mean
