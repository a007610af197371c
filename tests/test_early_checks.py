"""Bad config files and values: one line naming the key or file and what is allowed, exit code 2, no
traceback, nothing written; answered before Lightning is imported (trainlab.early_checks) in the full
parser's words."""

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
import yaml

from tests.data.helpers import csv_config, write_csv
from tests.helpers import QUIET, config, run_cli

CASES = {
    "unknown key": (["--model.init_args.learning_rate", "0.1"], "model.init_args: Option 'learning_rate'"),
    "unknown top-level key": (["--epochs", "3"], "unrecognized arguments: --epochs 3"),
    "zero learning rate": (["--model.init_args.lr", "0"], "model.init_args.lr=0.0 is not allowed: a number > 0"),
    "negative learning rate": (["--model.init_args.lr", "-0.01"], "model.init_args.lr=-0.01 is not allowed"),
    "no training split": (
        ["--data.init_args.val_fraction", "0.5", "--data.init_args.test_fraction", "0.5"],
        "data.init_args.val_fraction + test_fraction=1.0 is not allowed: less than 1",
    ),
    "n_informative > n_features": (
        ["--data.init_args.n_informative", "3"],
        "data.init_args.n_informative=3 is not allowed: an integer from 1 to n_features",
    ),
    "unknown optimizer": (
        ["--model.init_args.optimizer", "adagrad"],
        "model.init_args.optimizer: got 'adagrad'; allowed: 'sgd', 'adam', 'adamw', 'rmsprop'",
    ),
    "unknown activation": (["--model.init_args.activation", "swish"], "model.init_args.activation: got 'swish'"),
    "unknown generator": (["--data.init_args.generator", "spirals"], "data.init_args.generator: got 'spirals'"),
    "loss that does not fit the task": (
        ["--model.init_args.loss", "mse"],
        "model.init_args.loss='mse' is not allowed: for task binary: auto or bce",
    ),
    "bad type": (["--trainer.max_epochs", "many"], "trainer.max_epochs: Expected a int (got 'many')"),
    "unknown monitor": (
        ["--run.monitor", "val/r2"],
        "run.monitor='val/r2' is not allowed: null or one of train/loss, test/loss",
    ),
    "trainer clipping": (
        ["--trainer.gradient_clip_val", "1.0"],
        "trainer.gradient_clip_val=1.0 is not allowed: null: trainlab clips in its own optimizer loop; "
        "set model.init_args.gradient_clip_val instead",
    ),
    "gradient accumulation": (["--trainer.accumulate_grad_batches", "4"], "trainer.accumulate_grad_batches=4"),
    "no logger": (["--trainer.logger", "false"], "trainer.logger=False is not allowed: a logger"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_config_values(case, capsys):
    args, message = CASES[case]
    assert run_cli("fit", "-c", config("seed"), *args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("trainlab: error: ")
    assert message in err[-1]
    assert not Path("lightning_logs").exists()


def test_bad_value_in_a_config_file(tmp_path, capsys):
    text = Path(config("seed")).read_text().replace("lr: 0.01", "lr: -1.0")
    (tmp_path / "bad.yaml").write_text(text)
    assert run_cli("fit", "-c", tmp_path / "bad.yaml") == 2
    assert "model.init_args.lr=-1.0 is not allowed" in capsys.readouterr().err


def test_unknown_key_in_a_config_file(tmp_path, capsys):
    text = Path(config("seed")).read_text().replace("lr: 0.01", "lr: 0.01\n    momentumm: 0.9")
    (tmp_path / "bad.yaml").write_text(text)
    assert run_cli("fit", "-c", tmp_path / "bad.yaml") == 2
    assert "model.init_args: Option 'momentumm' is not accepted" in capsys.readouterr().err


def test_missing_config_file(capsys):
    assert run_cli("fit", "-c", "nowhere.yaml") == 2
    err = capsys.readouterr().err
    assert err.startswith("trainlab: error: -c nowhere.yaml: no such file")


@pytest.mark.parametrize(
    "content, message",
    [
        ("model: [\n", "bad.yaml, line 2: not valid YAML"),
        ("- 1\n", "bad.yaml: holds a list; a config is a mapping of sections"),
        ("modle: {}\n", "bad.yaml: unknown section 'modle'; did you mean 'model'?"),
        ("base: seed.yaml\nspace: {}\n", "bad.yaml is a tune config (it has base/space); run it with: trainlab tune"),
    ],
)
def test_a_broken_config_file_is_named_before_lightning_is_imported(content, message):
    """These answer at once: the check runs before the seconds-long Lightning import."""
    Path("bad.yaml").write_text(content)
    code = "import sys; from trainlab.cli import main; main(sys.argv[1:])"
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, "fit", "-c", "bad.yaml"], capture_output=True, text=True
    )
    assert done.returncode == 2 and message in done.stderr and "lightning" not in done.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model.init_args.scheduler", "step", "--model.init_args.step_size", "0"], "model.init_args.step_size=0"),
        (["--model.init_args.scheduler", "plateau", "--model.init_args.gamma", "1.5"], "model.init_args.gamma=1.5"),
        (["--model.init_args.cosine_epochs", "0"], "model.init_args.cosine_epochs=0"),
        (["--data.init_args.factor", "1.5"], "data.init_args.factor=1.5"),
        (["--data.init_args.n_clusters_per_class", "0"], "data.init_args.n_clusters_per_class=0"),
        (["--data.init_args.seed", "-1"], "data.init_args.seed=-1"),
        (
            [
                "--data.init_args.n_samples",
                "12",
                "--data.init_args.n_classes",
                "4",
                "--data.init_args.n_informative",
                "2",
                "--data.init_args.generator",
                "blobs",
            ],
            "data.init_args.val_fraction, test_fraction: 12 samples cannot be",
        ),
        (["--trainer.accelerator", "gpu"], "trainer: "),
    ],
)
def test_values_that_would_fail_later_fail_first(args, message, capsys):
    assert run_cli("fit", "-c", config("default"), *args, *QUIET) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("trainlab: error: ") and message in err[-1]


@pytest.mark.parametrize(
    "args, expected",
    [
        (
            ["--model.init_args.hiden_dims", "[3]"],
            "model.init_args: Option 'hiden_dims' is not accepted; did you mean 'hidden_dims'?",
        ),
        (
            ["--data.init_args.n_sample", "3"],
            "data.init_args: Option 'n_sample' is not accepted; did you mean 'n_samples'?",
        ),
        (["--run.monitr", "val/loss"], "run: Option 'monitr' is not accepted; did you mean 'monitor'?"),
        (["--trainer.max_epoch=3"], "trainer: Option 'max_epoch' is not accepted; did you mean 'max_epochs'?"),
    ],
)
def test_a_misspelt_key_gets_a_did_you_mean(args, expected, capsys):
    assert run_cli("fit", "-c", config("seed"), *args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and expected in err


EARLY = [
    (["--model.init_args.lr", "-0.1"], "model.init_args.lr=-0.1 is not allowed: a number > 0"),
    (["--model.init_args.optimizer=adagrad"], "model.init_args.optimizer: got 'adagrad'; allowed: 'sgd', 'adam'"),
    (["--model.init_args.hidden_dims", "[16, 0]"], "model.init_args.hidden_dims=[16, 0] is not allowed: a list of"),
    (["--data.init_args.batch_size", "0"], "data.init_args.batch_size=0 is not allowed: an integer >= 1"),
    (["--run.summary_every", "-1"], "run.summary_every=-1 is not allowed: an integer >= 0"),
    (["-c", "dropout.yaml"], "model.init_args.dropout=1.5 is not allowed: a probability in [0, 1)"),  # from a file
    (["--model.init_args.hiden_dims", "[32]"], "model.init_args: Option 'hiden_dims' is not accepted; did you mean"),
    (
        ["--data.init_args.n_sample", "50"],
        "data.init_args: Option 'n_sample' is not accepted; did you mean 'n_samples'",
    ),
    (["--data.init_args.zzz", "1"], "data.init_args: Option 'zzz' is not accepted; `--print_config` shows the keys"),
    (["--model.init_args.lr", "abc"], "model.init_args.lr: Expected a float. Got value: abc"),
    (["--run.summary_every", "often"], "run.summary_every: Expected a int. Got value: often"),
    (
        ["--data.init_args.val_fraction", "0.5", "--data.init_args.test_fraction", "0.6"],
        "data.init_args.val_fraction + test_fraction=1.1 is not allowed: less than 1",
    ),
    (["--model.init_args.nesterov", "true"], "model.init_args.nesterov=True is not allowed: true only with optimizer"),
    (
        ["--model.init_args.scheduler", "plateau", "--model.init_args.gamma", "1.5"],
        "model.init_args.gamma=1.5 is not allowed: a factor in (0, 1) for plateau",
    ),
]


def test_the_early_check_reads_each_classs_keys_as_its_signature_gives_them():
    import inspect

    from trainlab.data import BundledDataModule, FileDataModule, SyntheticDataModule, TabularDataModule
    from trainlab.early_checks import CLASS_FILES, init_defaults, init_keys
    from trainlab.models import MLPModule

    classes = [MLPModule, TabularDataModule, SyntheticDataModule, FileDataModule, BundledDataModule]
    assert sorted(CLASS_FILES) == sorted(c.__name__ for c in classes)
    for cls in classes:
        keys = set()
        for klass in cls.__mro__:  # a **kwargs passed on to the base brings the base's arguments
            parameters = inspect.signature(klass.__init__).parameters
            keys |= {
                n for n, p in parameters.items() if n != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
            }
            if not any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
                break
        assert init_keys(cls.__name__) == keys, cls.__name__
        defaults = init_defaults(cls.__name__)  # the literal ones, which the joint rules fill in
        for name, value in defaults.items():
            assert value == next(
                inspect.signature(k.__init__).parameters[name].default
                for k in cls.__mro__
                if name in inspect.signature(k.__init__).parameters
            ), (cls.__name__, name)
        assert {"val_fraction", "test_fraction"} <= set(defaults) or cls.__name__ == "MLPModule"


# Runs each argument list through the console's main() in one process; prints each exit code and last stderr
# line, and whether Lightning was imported by then.
MAIN_EACH = """
import contextlib, io, json, sys
from trainlab.cli import main
answers = []
for args in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            main(args)
            code = 0
        except SystemExit as stop:
            code = stop.code
    answers.append([code, err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else ""])
print(json.dumps({"answers": answers, "lightning": any(m.startswith("lightning") for m in sys.modules)}))
"""


def main_in_one_process(cases: list[list[str]]) -> dict:
    done = subprocess.run([sys.executable, "-c", MAIN_EACH, json.dumps(cases)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_bad_values_are_answered_before_lightning_is_imported_in_the_full_parsers_words():
    """The early check (trainlab.early_checks) and the classes share trainlab.rules: the same message,
    without the seconds Lightning's import costs; a class of the user's own is left to the full parser."""
    from trainlab.early_checks import check_early
    from trainlab.errors import as_user_error
    from trainlab.lightning_cli import run_lightning_cli

    Path("dropout.yaml").write_text(yaml.safe_dump({"model": {"init_args": {"dropout": 1.5}}}))
    cases = [["fit", "-c", config("seed"), *extra] for extra, _ in EARLY]
    early = main_in_one_process(cases)
    assert not early["lightning"]  # every one answered before importing Lightning
    for args, (_, expected), (code, error) in zip(cases, EARLY, early["answers"], strict=True):
        assert code == 2 and error == f"trainlab: error: {error.split(': ', 2)[2]}" and expected in error, error
        with pytest.raises(Exception) as full:  # the full path, which checks every value with the classes
            run_lightning_cli(args)
        assert str(as_user_error(full.value)) == error.removeprefix("trainlab: error: ")
    for fine in (
        ["--model.init_args.lr", "1e-3"],
        ["--model.init_args.gradient_clip_val", "null"],
        ["--run.threads=2"],
    ):
        assert check_early(["fit", "-c", config("seed"), *fine]) is None  # what the parser takes passes
    own = ["fit", "-c", config("seed"), "--model", "mypackage.MyModel", "--model.init_args.lr", "-1"]
    assert check_early(own) is None  # not trainlab's class: left to the full parser, which refuses it
    with pytest.raises(Exception, match="mypackage"):
        run_lightning_cli(own)


TRAINER_EARLY = [  # (arguments, the early answer)
    (["--trainer.max_epochz", "5"], "trainer: Option 'max_epochz' is not accepted; did you mean 'max_epochs'?"),
    (["--trainer.max_epoch=5"], "trainer: Option 'max_epoch' is not accepted; did you mean 'max_epochs'?"),
    (["-c", "typo.yaml"], "trainer: Option 'max_epoch' is not accepted; did you mean 'max_epochs'?"),
    (["--trainer.gradient_clip_val", "0.5"], "trainer.gradient_clip_val=0.5 is not allowed: null: trainlab clips"),
    (["--trainer.accumulate_grad_batches", "4"], "trainer.accumulate_grad_batches=4 is not allowed: 1: for"),
    (["--trainer.max_epochs", "many"], "trainer.max_epochs: Expected a int (got 'many')"),
    (["--trainer.max_epochs", "2.5"], "trainer.max_epochs: Expected a int (got '2.5')"),
    (["-c", "word.yaml"], "trainer.enable_progress_bar: Expected a bool (got 'maybe')"),
    (["--trainer.num_nodes", "x"], "trainer.num_nodes: Expected a int. Got value: x"),
    (["--trainer.max_steps", "null"], "trainer.max_steps: Expected a int. Got value: None"),
]


def test_trainer_keys_and_values_are_checked_early_and_abbreviations_are_refused_by_both_checks():
    """The Trainer's keys and annotations are read from Lightning's source (not imported): a misspelt or
    abbreviated key, a word for a number or a flag, and the options trainlab replaces are answered before the
    import; the full parser refuses the same ones (no abbreviation is expanded) in the same words."""
    import inspect

    from lightning.pytorch import Trainer

    from trainlab.early_checks import check_early, trainer_keys
    from trainlab.errors import as_user_error
    from trainlab.lightning_cli import run_lightning_cli

    parameters = inspect.signature(Trainer.__init__).parameters
    assert set(trainer_keys()) == set(parameters) - {"self"}
    assert trainer_keys()["max_epochs"] == "Optional[int]" and parameters["max_epochs"].annotation == int | None
    Path("typo.yaml").write_text("trainer:\n  max_epoch: 5\n")
    Path("word.yaml").write_text("trainer:\n  enable_progress_bar: maybe\n")
    code = "import sys; from trainlab.cli import main; main(sys.argv[1:])"
    for extra, expected in TRAINER_EARLY:
        args = ["fit", "-c", config("seed"), *extra]
        early = check_early(args)
        assert early is not None and expected in early
        with pytest.raises(Exception) as full:
            run_lightning_cli(args)
        words = str(as_user_error(full.value))
        assert words == early
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, "fit", "-c", config("seed"), "-c", "typo.yaml"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and TRAINER_EARLY[2][1] in done.stderr and "lightning" not in done.stderr
    for fine in (["--trainer.max_epochs", "3"], ["--trainer.callbacks+=lightning.pytorch.callbacks.Timer"]):
        assert check_early(["fit", "-c", config("seed"), *fine]) is None


def test_a_file_without_the_named_columns_is_answered_from_its_header_before_lightning_is_imported():
    """The early check reads only the header (CSV) or the schema (Parquet) and words the problem as
    FileDataModule does once the whole file is read."""
    from trainlab.early_checks import check_early
    from trainlab.errors import as_user_error
    from trainlab.lightning_cli import run_lightning_cli

    write_csv("train.csv")
    pq.write_table(pa_csv.read_csv("train.csv"), "train.parquet")
    Path("empty.csv").write_text("")
    Path("folder.csv").mkdir()
    Path("gz.csv").write_bytes(gzip.compress(Path("train.csv").read_bytes()))
    Path("head1.csv").write_bytes(b"x1,caf\xe9\n1,0\n")
    cases = {
        "missing file": ({"path": "nowhere.csv"}, "nowhere.csv: no such file"),
        "empty file": ({"path": "empty.csv"}, "empty.csv: the file is empty"),
        "a folder": ({"path": "folder.csv"}, "folder.csv: a folder, not a file"),
        "compressed": ({"path": "gz.csv"}, "gz.csv: a gzip-compressed file (decompress it first), not CSV text"),
        "latin-1 header": ({"path": "head1.csv"}, "head1.csv: cannot be read as csv: its header is not UTF-8 text"),
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


@pytest.mark.parametrize(
    "args",
    [["test"], ["validate", "--ckpt_path", "null"], ["predict", "--ckpt_path", "last"], ["fit", "--ckpt_path=no.ckpt"]],
)
def test_a_missing_checkpoint_is_answered_before_lightning_is_imported_in_the_full_paths_words(args):
    from trainlab.early_checks import check_early
    from trainlab.errors import as_user_error
    from trainlab.lightning_cli import run_lightning_cli

    command = [args[0], "-c", config("seed"), *args[1:]]
    early = check_early(command)
    assert early is not None and early.startswith("--ckpt_path")
    with pytest.raises(Exception) as full:  # the path that trainlab.fit() and the drivers take
        run_lightning_cli(command)
    assert str(as_user_error(full.value)) == early


def test_the_early_check_takes_the_last_checkpoint_given_and_leaves_the_files_content_to_the_full_path(tmp_path):
    from trainlab.early_checks import check_early

    (tmp_path / "any.ckpt").write_bytes(b"not read here")
    (tmp_path / "saved.yaml").write_text("ckpt_path: null\n")  # as a run's config.yaml records it
    given = ["-c", config("seed"), "-c", str(tmp_path / "saved.yaml")]
    assert check_early(["test", *given, "--ckpt_path", str(tmp_path / "any.ckpt")]) is None
    assert check_early(["fit", *given]) is None
    assert "required for predict" in check_early(["predict", "--ckpt_path", str(tmp_path / "any.ckpt"), *given])
