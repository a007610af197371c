"""Every command's bad input, in one place: one line naming what is wrong, a non-zero exit, no traceback,
and not one byte of what earlier runs wrote is changed. Plus random config values (hypothesis): the
config layer either builds them or refuses them with a UserError, never anything else."""

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import QUIET, config, run_cli, snapshot
from trainlab.errors import UserError


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
