"""Tune configs: bad keys and values are refused before any trial, answered before Lightning is imported in
the checks' words."""

import subprocess
import sys

import pytest

from tests.helpers import run_cli
from tests.tuning.helpers import STUDY, tune_config
from trainlab.errors import UserError
from trainlab.tuning.config import load_tune_config

BAD = [
    ({"space": {"model.init_args.nope": [1, 2]}}, "model.init_args.nope"),
    ({"space": {"model.init_args.lr": {"low": 0.1, "high": 0.01}}}, "low 0.1 >= high 0.01"),
    ({"space": {"model.init_args.lr": {"low": 0.0, "high": 0.1, "log": True}}}, "log scale"),
    ({"space": {"model.init_args.lr": []}}, "non-empty list"),
    ({"space": {"model.init_args.dropout": [0.1, 1.5]}}, "dropout"),
    ({"space": {"model.init_args.optimizer": ["adam", "lbfgs"]}}, "lbfgs"),
    ({"sampler": "bayesian"}, "sampler='bayesian'"),
    ({"pruner": "asha"}, "pruner='asha'"),
    ({"storage": "postgresql://nobody@127.0.0.1:1/none"}, "--storage"),
    ({"storage": "sqlite:////no/such/folder/study.db"}, "--storage"),
    ({"sampler": "grid", "space": {"model.init_args.lr": {"low": 0.001, "high": 0.1}}}, "a grid must be finite"),
    ({"overrides": {"trainer.max_epochs": 5}}, "val_fraction > 0"),
    ({"metric": "val/r2"}, "metric='val/r2'"),
    ({"space": {"data.init_args.seed": [1, 2]}}, "trials must see the same data and splits"),
    ({"metric": "val/accuracy", "mode": "min"}, "run.mode='min' is not allowed: auto or max"),
    ({"colour": "blue"}, "unknown key 'colour'"),
]


@pytest.mark.parametrize(("change", "named"), BAD, ids=[b[1] for b in BAD])
def test_bad_tune_config_is_refused_before_any_trial(change, named, capsys):
    settings = {"sampler": "random", "n_trials": 2, "space": {"model.init_args.lr": [0.1, 0.01]}, **change}
    path = tune_config("bad", **settings)
    assert run_cli("tune", "-c", path) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("trainlab: error:") and "\n" not in err and "Traceback" not in err
    assert named in err
    assert not (STUDY / "bad" / "trials").exists()  # nothing ran


EARLY = [
    ({"space": {"model.init_args.nope": [1, 2]}}, "space.model.init_args.nope=1: model.init_args: Option 'nope'"),
    ({"space": {"model.init_args.dropout": [0.1, 1.5]}}, "space.model.init_args.dropout=1.5: model.init_args.dropout"),
    ({"space": {"model.init_args.optimizer": ["adam", "lbfgs"]}}, "space.model.init_args.optimizer='lbfgs': "),
    ({"overrides": {"trainer.max_epoch": 3}}, "base seed.yaml with overrides: trainer: Option 'max_epoch' is not"),
    ({"overrides": {"data.init_args.batch_size": 0}}, "base seed.yaml with overrides: data.init_args.batch_size=0"),
]


@pytest.mark.slow
def test_a_tune_configs_bad_key_or_value_is_answered_before_lightning_is_imported_in_the_checks_words():
    from trainlab.tuning.checks import check_search
    from trainlab.tuning.config import early_problem, load_tune_config

    for change, expected in EARLY:
        path = tune_config("early", **{"space": {"model.init_args.lr": [0.1, 0.01]}, "sampler": "grid", **change})
        config = load_tune_config(path)
        early = early_problem(config)
        with pytest.raises(Exception) as full:
            check_search(config)
        assert early is not None and early.startswith(expected) and early == str(full.value), (early, full.value)
    assert (
        early_problem(load_tune_config(tune_config("fine", {"model.init_args.lr": [0.1, 0.01]}, sampler="grid")))
        is None
    )
    code = "import sys; from trainlab.cli import main; main(sys.argv[1:])"
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, "tune", "-c", path], capture_output=True, text=True
    )
    assert done.returncode == 2 and expected in done.stderr and "lightning" not in done.stderr, done.stderr[-300:]


@pytest.mark.parametrize(
    ("value", "named"),
    [(0, "population"), (2.5, "population"), ("many", "population")],
)
def test_a_bad_population_is_refused_in_one_line(value, named):
    path = tune_config("bad", {"model.init_args.lr": [0.1, 0.01]}, sampler="grid", population=value)
    with pytest.raises(UserError, match=f"^{named}=.*integer >= 1"):
        load_tune_config(path)
