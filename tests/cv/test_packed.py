"""Packed cross-validation: every fold of a pack trains exactly as its own unpacked run, loads alone and
resumes after a kill; packs split by memory budget and by shape."""

from pathlib import Path

import numpy as np
import pytest
import torch

import trainlab
from tests.helpers import config, read_json, run_cli
from trainlab.reporting.report import read_curves


def fold_curves(cv_dir: Path, folds: int) -> list[dict]:
    return [read_curves(cv_dir / "folds" / f"fold_{k}") for k in range(folds)]


@pytest.mark.parametrize(
    "name, optimizer",
    [
        ("default", "adam"),
        ("multiclass", "sgd"),
        ("regression", "rmsprop"),
    ],
)
@pytest.mark.slow
def test_packed_cv_equals_one_fit_per_fold(name, optimizer):
    """Every fold of the packed cv has the per-epoch curves, early stop, test metrics and out-of-fold
    predictions of its own unpacked run (on 600 generated samples, not the config's thousands: the arithmetic
    of a pack does not depend on them)."""
    overrides = {
        "data.init_args.n_samples": 600,
        "trainer.max_epochs": 12,
        "model.init_args.optimizer": optimizer,
        "model.init_args.lr": 0.05 if optimizer == "sgd" else 0.01,
        "model.init_args.momentum": 0.9 if optimizer == "sgd" else 0.0,
        "data.init_args.val_fraction": 0.2,
        "run.early_stopping": {"patience": 2},
        "run.test_ckpt": "best",
    }
    packed = trainlab.cross_validate(config(name), folds=3, overrides=overrides)
    alone = trainlab.cross_validate(config(name), folds=3, overrides=overrides, pack=False)
    assert (packed.cv_dir / "packs").is_dir() and not (alone.cv_dir / "packs").exists()
    differences = []
    for p, a in zip(packed.per_fold, alone.per_fold, strict=True):
        assert set(p["metrics"]) == set(a["metrics"])
        differences += [abs(p["metrics"][k] - a["metrics"][k]) for k in a["metrics"]]
    assert max(differences) < 1e-4
    curves = [fold_curves(r.cv_dir, 3) for r in (packed, alone)]
    lengths = []
    for p, a in zip(*curves, strict=True):
        assert p["val/loss"][0] == a["val/loss"][0]  # the same epochs: each fold stopped where it stopped alone
        torch.testing.assert_close(torch.tensor(p["val/loss"][1]), torch.tensor(a["val/loss"][1]), rtol=1e-4, atol=1e-4)
        lengths.append(len(a["val/loss"][0]))
    for column in ("dataset_index", "fold"):
        assert (packed.predictions[column] == alone.predictions[column]).all()
    if name == "regression":
        np.testing.assert_allclose(packed.predictions["prediction"], alone.predictions["prediction"], rtol=1e-4)
    else:
        assert (packed.predictions["prediction"] == alone.predictions["prediction"]).all()
    if name == "default":
        assert len(set(lengths)) > 1 and min(lengths) < 12  # folds stopped early, at different epochs


@pytest.mark.slow
def test_a_packed_fold_loads_alone_and_a_packed_fit_resumes_exactly_after_a_kill():
    """One packed cv, two checks: a fold's config.yaml and checkpoint load alone (`trainlab test`) and test to
    the fold's metrics; and the pack stopped after 4 epochs and resumed from last.ckpt ends where the
    uninterrupted one ends, folds that had stopped early included."""
    settings = {"data.init_args.val_fraction": 0.2, "run.early_stopping": {"patience": 1}, "run.test_ckpt": "best"}
    whole = trainlab.cross_validate(config("default"), folds=3, overrides={"trainer.max_epochs": 10, **settings})
    one = whole.cv_dir / "folds" / "fold_1"
    assert run_cli("test", "-c", one / "config.yaml", "--ckpt_path", one / "checkpoints" / "model.ckpt") == 0
    (tested,) = (one / "test").glob("version_*")  # the test's outputs land inside the fold, as for any fit
    again = read_json(tested / "metrics.json")
    for key, value in whole.per_fold[1]["metrics"].items():
        assert again[key] == pytest.approx(value, abs=1e-5)

    pack_config = next((whole.cv_dir / "packs").glob("*/config.yaml"))
    pack_args = ["--run.last_checkpoint_every", "0", "--trainer.enable_progress_bar", "false"]
    assert (
        run_cli(
            "fit",
            "-c",
            pack_config,
            "--trainer.max_epochs",
            "4",
            "--run.test_after_fit",
            "false",
            "--trainer.logger.init_args.version",
            "cut",
            *pack_args,
        )
        == 0
    )
    cut = Path(pack_config).parents[1] / "cut" / "checkpoints" / "last.ckpt"
    assert torch.load(cut, weights_only=True)["epoch"] == 3
    assert (
        run_cli(
            "fit",
            "-c",
            pack_config,
            "--ckpt_path",
            cut,
            "--trainer.logger.init_args.version",
            "resumed",
            "--trainer.max_epochs",
            "10",
            *pack_args,
        )
        == 0
    )
    for k, fold in enumerate(whole.per_fold):
        resumed = read_json(whole.cv_dir / "folds" / f"fold_{k}" / "metrics.json")
        for key, value in fold["metrics"].items():
            assert resumed[key] == pytest.approx(value, abs=1e-6)


@pytest.mark.slow
def test_folds_split_into_packs_by_memory_budget_and_by_shape(monkeypatch):
    """Folds whose one-hot width differs (a category missing from some folds' training rows) train in
    packs of their own; a memory budget too small for one pack gives one fold per pack. Results are the
    same either way."""
    import csv as csv_module

    import yaml

    from trainlab.cv import packed

    rows = [["x", "colour", "label"]]
    for i in range(60):
        colour = "violet" if i == 7 else ("red", "green")[i % 2]  # violet: one row, in one fold only
        rows.append([f"{(i * 37 % 11) / 11:.3f}", colour, "yes" if (i * 37 % 11) > 5 else "no"])
    with open("data.csv", "w", newline="") as f:
        csv_module.writer(f).writerows(rows)
    data = {"class_path": "trainlab.data.FileDataModule", "init_args": {"path": "data.csv", "target": "label"}}
    base = {"trainer": {"max_epochs": 2}, "model": {"init_args": {"hidden_dims": [4]}}, "data": data}
    Path("c.yaml").write_text(yaml.safe_dump(base))
    plans = []  # the plan each cross-validation ran, packs included
    settings = {"folds": 3, "overrides": {"data.init_args.val_fraction": 0.25}, "on_start": plans.append}
    monkeypatch.setattr(packed, "PACK_MEMORY_BYTES", 1)
    split = trainlab.cross_validate("c.yaml", **settings)
    monkeypatch.setattr(packed, "PACK_MEMORY_BYTES", 2**31)
    together = trainlab.cross_validate("c.yaml", **settings)
    assert plans[0].packs == [[(0, 0)], [(0, 1)], [(0, 2)]]
    assert sorted(len(p) for p in plans[1].packs) == [1, 2]  # the fold holding violet out has one column fewer
    for a, b in zip(split.per_fold, together.per_fold, strict=True):
        assert a["metrics"] == pytest.approx(b["metrics"], abs=1e-5)


def test_packed_cv_on_several_devices_is_refused_in_one_line(capsys):
    code = run_cli("cv", "-c", config("seed"), "--folds", "2", "--trainer.devices", "2", "--trainer.strategy", "ddp")
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "--no-pack" in err and "trainer.devices=2" in err
