"""Packs: member k of a packed fit trains exactly as the unpacked run of its fold or seed."""

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

import trainlab
from conftest import config, read_json, run_cli
from trainlab.models.optim import PackedOptimizer
from trainlab.models.packed import PackedMLP
from trainlab.reporting.report import read_curves

QUIET_API = {"trainer.enable_progress_bar": False, "trainer.enable_model_summary": False, "run.verbose": False}


@pytest.mark.parametrize(
    "algorithm, options",
    [
        ("sgd", {}),
        ("sgd", {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
        ("adam", {"weight_decay": 0.01}),
        ("adamw", {"weight_decay": 0.01}),
        ("rmsprop", {}),
        ("rmsprop", {"momentum": 0.5, "weight_decay": 0.01}),
    ],
)
def test_the_packed_optimizer_is_torchs_algorithm_member_by_member(algorithm, options):
    torch.manual_seed(0)
    start = torch.randn(3, 40)
    ours = torch.nn.Parameter(start.clone())
    rates = [0.01, 0.03, 0.001]
    packed = PackedOptimizer(
        ours,
        algorithm,
        lr=rates,
        weight_decay=[options.get("weight_decay", 0.0)] * 3,
        momentum=[options.get("momentum", 0.0)] * 3,
        nesterov=options.get("nesterov", False),
    )
    torch_class = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    torch_class["rmsprop"] = torch.optim.RMSprop
    references = [torch.nn.Parameter(start[k].clone()) for k in range(3)]
    fused = {"fused": True} if algorithm != "rmsprop" else {}  # torch's fused kernels, as ours on the CPU
    optimizers = [torch_class[algorithm]([p], lr=rates[k], **options, **fused) for k, p in enumerate(references)]
    for step in range(30):
        grads = torch.randn(3, 40)
        ours.grad = grads.clone()
        packed.active = [0, 1, 2] if step < 10 else [0, 2]  # member 1 stops after 10 steps
        packed.step()
        for k, (p, optimizer) in enumerate(zip(references, optimizers, strict=True)):
            if k == 1 and step >= 10:
                continue
            p.grad = grads[k].clone()
            optimizer.step()
    for k in range(3):
        torch.testing.assert_close(ours[k], references[k], rtol=0, atol=0)  # torch's own arithmetic


def test_each_member_is_the_mlp_its_seed_builds_and_batch_norm_ignores_padding():
    from trainlab.models import MLP

    pack = PackedMLP([5, 6], 3, 2, [8, 4], activation="tanh", batch_norm=True)
    torch.manual_seed(6)
    alone = MLP(3, 2, [8, 4], activation="tanh", batch_norm=True).eval()
    x = torch.randn(10, 3)
    torch.testing.assert_close(pack.eval()(x)[1], alone(x), rtol=0, atol=1e-6)
    # training: member 0's batch has 4 real rows of 10; its statistics are those of the 4 rows alone
    pack.train()
    padded = torch.stack([torch.cat([x[:4], torch.full((6, 3), 1e3)]), x])
    out = pack(padded, counts=torch.tensor([4, 10]))
    torch.testing.assert_close(out[0, :4], pack(x[:4])[0], rtol=0, atol=1e-5)


def test_some_members_run_alone_as_they_run_in_the_whole_pack():
    """A pack whose other members stopped runs only the moving ones (forward(..., members)): their outputs,
    dropout masks, batch statistics and gradients are those they get in the whole pack; the others' running
    statistics and dropout streams stay untouched."""
    x = torch.randn(3, 16, 5)
    counts = torch.tensor([16, 9, 12])
    whole = PackedMLP([1, 2, 3], 5, 1, [8, 4], dropout=[0.2, 0.3, 0.1], batch_norm=True).train()
    part = copy.deepcopy(whole)
    part.resting = [True, False, False]  # member 0 stopped: no masks drawn for it
    before = part.generators[0].get_state()
    out = whole(x, counts)
    moving = torch.tensor([1, 2])
    out_part = part(x.index_select(0, moving), counts.index_select(0, moving), moving)
    torch.testing.assert_close(out_part, out[1:], rtol=0, atol=0)
    out[1:].sum().backward()
    out_part.sum().backward()
    torch.testing.assert_close(part.flat.grad[1:], whole.flat.grad[1:], rtol=0, atol=0)
    assert part.flat.grad[0].abs().sum() == 0 and torch.equal(part.generators[0].get_state(), before)
    for name in ("running_mean0", "running_var0", "running_mean1", "running_var1"):
        moved, kept = getattr(part, name), getattr(PackedMLP([1, 2, 3], 5, 1, [8, 4], batch_norm=True), name)
        torch.testing.assert_close(moved[1:], getattr(whole, name)[1:], rtol=0, atol=0)
        torch.testing.assert_close(moved[0], kept[0], rtol=0, atol=0)
    l1 = whole.l1_norms()
    torch.testing.assert_close(part.l1_norms(moving), l1[1:], rtol=0, atol=0)


@pytest.mark.parametrize("batch_norm, dropout", [(False, 0.0), (True, 0.0), (False, 0.3)])
def test_gradients_written_in_place_are_the_graphs_own(batch_norm, dropout):
    """One-device training runs the forward through leaves over flat's storage whose gradients are views of
    flat.grad: the same gradients, bit for bit, as the graph through flat, written into one buffer that
    stays (zeroed in place, never replaced); a later move of flat rebuilds the leaves."""
    x, y = torch.randn(2, 12, 4), torch.randn(2, 12, 1)
    nets = [PackedMLP([1, 2], 4, 1, [6, 5], "gelu", dropout, batch_norm).train() for _ in range(2)]
    nets[1].write_gradients_in_place = True
    through_flat = [0, 0]  # flat's own gradient hook fires only where flat is in the graph
    for index, net in enumerate(nets):
        net.flat.register_hook(lambda grad, index=index: through_flat.__setitem__(index, through_flat[index] + 1))
        for _ in range(2):  # the second backward accumulates onto the first, as torch does
            ((net(x) - y) ** 2).mean().backward()
    assert through_flat == [2, 0]
    torch.testing.assert_close(nets[1].flat.grad, nets[0].flat.grad, rtol=0, atol=0)
    buffer = nets[1].flat.grad
    buffer.zero_()
    masks = nets[1].generator_states()  # the next two forwards draw the same dropout masks
    ((nets[1](x) - y) ** 2).mean().backward()
    assert nets[1].flat.grad is buffer and buffer.abs().sum() > 0
    nets[1].flat.grad = None  # a new buffer (Lightning's set_to_none, a move to another device): new leaves
    nets[1].set_generator_states(masks)
    ((nets[1](x) - y) ** 2).mean().backward()
    torch.testing.assert_close(nets[1].flat.grad, buffer, rtol=0, atol=0)
    assert nets[1].flat.grad is not buffer
    with torch.no_grad():  # evaluation builds no graph and touches no gradient
        nets[1].eval()(x)


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


def test_ensemble_member_k_is_the_fit_of_seed_plus_k():
    settings = {**QUIET_API, "trainer.max_epochs": 4, "run.report": False}
    ensemble = trainlab.fit(config("seed"), **settings, **{"model.init_args.ensemble": 3, "seed_everything": 7})
    alone = trainlab.fit(config("seed"), **settings, **{"seed_everything": 8})
    members = torch.load(ensemble.last_checkpoint, weights_only=True)["state_dict"]["net.flat"]
    single = torch.load(alone.last_checkpoint, weights_only=True)["state_dict"]["net.flat"]
    assert members.shape[0] == 3 and single.shape[0] == 1
    torch.testing.assert_close(members[1], single[0], rtol=0, atol=1e-5)
    assert not torch.allclose(members[0], members[1])  # members differ: their own seeds and orders


def test_an_ensemble_predicts_its_members_mean_probability_and_reports_their_spread():
    from sklearn.metrics import accuracy_score

    from trainlab.data import SyntheticDataModule
    from trainlab.models import MLPModule

    settings = {**QUIET_API, "trainer.max_epochs": 3, "model.init_args.ensemble": 4, "data.init_args.n_samples": 800}
    fitted = trainlab.fit(config("multiclass"), **settings)
    predicted = trainlab.predict(config("multiclass"), fitted.last_checkpoint, **settings)
    summary = dict(read_json(fitted.run_dir / "report.json")["summary"])
    assert summary["ensemble"].startswith("4 members; each alone: test accuracy min ")
    # predictions.csv holds the mean of the four members' class probabilities, on the test split
    module = MLPModule.load_from_checkpoint(fitted.last_checkpoint, weights_only=True).eval()
    saved = torch.load(fitted.last_checkpoint, weights_only=True)["datamodule_hyper_parameters"]
    data = SyntheticDataModule(**{k: v for k, v in saved.items() if not k.startswith("_")})
    data.setup()
    X = data.splits["test"][0]
    with torch.no_grad():
        members = torch.softmax(module(X), dim=-1)
    assert members.shape[0] == 4 and not torch.allclose(members[0], members[1])
    written = np.stack([predicted.predictions[f"probability_{k}"] for k in range(4)], axis=1)
    np.testing.assert_allclose(written, members.mean(0).numpy(), rtol=1e-5, atol=1e-6)
    tested = read_json(fitted.run_dir / "metrics.json")["test/accuracy"]
    accuracy = accuracy_score(predicted.predictions["target"], predicted.predictions["prediction"])
    assert tested == pytest.approx(accuracy, abs=1e-6)


def test_ensemble_must_be_positive_and_one_under_ddp(capsys):
    assert run_cli("fit", "-c", config("seed"), "--model.init_args.ensemble", "0") == 2
    assert "model.init_args.ensemble=0 is not allowed" in capsys.readouterr().err
    assert not Path("lightning_logs").exists()


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
