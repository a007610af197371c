"""`trainlab cv`: bad input is refused in one line and nothing runs."""

from pathlib import Path

import pytest

from tests.helpers import config, run_cli

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
