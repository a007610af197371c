"""The parser's shortcuts (trainlab.parsing) against the full path they replace: the same configs accepted
as the same values, the same ones refused in the same words, the same hyperparameters recorded. These fail
loudly when a jsonargparse or Lightning release changes what the shortcuts rely on."""

from argparse import ArgumentError
from pathlib import Path

import pytest
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from tests.helpers import REPO, config
from trainlab.lightning_cli import build_config, run_lightning_cli
from trainlab.parsing import TrainlabParser, model_and_data_sections

BAD_FILES = {
    "typo.yaml": "trainer:\n  max_epoch: 5\n",  # an unknown key in a section
    "section.yaml": "trainr:\n  max_epochs: 3\n",  # an unknown section
    "nested.yaml": "model:\n  init_args:\n    hiden_dims: [3]\n",  # an unknown key of a class
    "value.yaml": "model:\n  init_args:\n    lr: abc\n",
    "trainer_value.yaml": "trainer:\n  max_epochs: abc\n",
    "options.yaml": "run:\n  early_stopping: {patience: abc}\n",
    "null.yaml": "data: null\n",  # a required section left out
    "logger.yaml": "trainer:\n  logger: {class_path: lightning.pytorch.loggers.CSVLogger, init_args: {nme: x}}\n",
}


def test_a_dump_without_its_second_validation_writes_what_a_validated_dump_writes():
    """TrainlabParser skips jsonargparse's check on dump (parse_args made it): the text must not change."""
    cli = build_config(Path(config("regression")), {"model.init_args.lr": 0.05, "trainer.max_epochs": 2}, "test")
    for options in ({}, {"skip_link_targets": False, "skip_none": False}):
        validated = LightningArgumentParser.dump(cli.parser, cli.config, **options)
        assert cli.parser.dump(cli.config, **options) == validated
        assert "lr: 0.05" in validated


def outcome(parse, parser, args: list[str]) -> str:
    try:
        return parser.dump(parse(parser, args))
    except ArgumentError as error:
        return f"refused: {error}"


def test_values_are_checked_once_and_the_same_configs_are_refused_in_the_same_words(tmp_path):
    parser = build_config(Path(config("seed")), {}, "").parser
    assert isinstance(parser, TrainlabParser)
    for name, text in BAD_FILES.items():
        (tmp_path / name).write_text(text)
    good = [["-c", config("seed")], ["-c", config("regression"), "--model.init_args.lr", "0.05"]]
    bad = [["-c", config("seed"), "-c", str(tmp_path / name)] for name in BAD_FILES]
    bad += [["-c", config("seed"), "--trainer.max_epoch=3"], ["-c", config("seed"), "--data.init_args.nope=1"], []]
    for args in good + bad:
        fast = outcome(TrainlabParser.parse_args, parser, args)
        assert fast == outcome(LightningArgumentParser.parse_args, parser, args), args
        assert fast.startswith("refused") == (args in bad), (args, fast)


def test_a_command_without_its_sections_is_refused_as_before():
    with pytest.raises(ArgumentError, match=r"required: fit\.data, fit\.model"):
        run_lightning_cli(["fit"])


@pytest.mark.parametrize(
    "name, overrides",
    [
        ("seed", {}),
        ("multiclass", {"model.init_args.population": [{"lr": 0.1}, {"lr": 0.01}]}),
        ("churn_csv", {"data.init_args.path": str(REPO / "examples/data/churn.csv")}),
    ],
)
def test_the_recorded_hyperparameters_are_the_sections_lightning_records(name, overrides):
    cli = build_config(Path(config(name)), overrides, "")
    assert set(cli.config_dump) == {"model", "data"}  # trainlab's _dump_config ran, not Lightning's
    del cli.config_dump
    LightningCLI._dump_config(cli)  # Lightning's own: the whole config dumped
    assert model_and_data_sections(cli.parser, cli.config) == {key: cli.config_dump[key] for key in ("model", "data")}


def test_config_yaml_is_written_as_pyyamls_own_emitter_writes_it():
    import yaml
    from jsonargparse._loaders_dumpers import dump_yaml_kwargs  # jsonargparse's settings, which trainlab keeps

    from trainlab.parsing import YAML_DUMP

    assert YAML_DUMP == dump_yaml_kwargs
    cli = build_config(Path(config("multiclass")), {"model.init_args.population": [{"lr": 0.1}]}, "")
    text = "".join(line for line in cli.parser.dump(cli.config).splitlines(True) if not line.startswith("#"))
    assert text == yaml.safe_dump(yaml.safe_load(text), **dump_yaml_kwargs)  # (the header line is a comment)


def test_the_defaults_worked_out_once_are_jsonargparses_own_handed_out_as_copies():
    from jsonargparse._common import parser_context

    from trainlab.lightning_cli import TrainlabCLI

    config_parser = build_config(Path(config("regression")), {}, "").parser
    with pytest.raises(ArgumentError):
        run_lightning_cli(["validate"])  # a command's parser and its subcommand's (no model, no data: refused)
    built = TrainlabCLI._parsers.values()
    parsers = [parser for parser, _ in built]
    parsers += [sub for _, kept in built for sub in kept.get("_subcommand_parsers", {}).values()]
    assert len(parsers) >= 3
    for parser in parsers:
        for lenient in (False, True):
            with parser_context(lenient_check=lenient):
                own = LightningArgumentParser.get_defaults(parser).as_dict()
                assert parser.get_defaults().as_dict() == own
                assert parser.get_defaults().as_dict() == own  # from the cache this time
    handed = config_parser.get_defaults()
    handed["trainer.max_epochs"] = -5
    assert config_parser.get_defaults()["trainer.max_epochs"] != -5


def test_the_defaults_follow_a_change_of_the_parser():
    parser = TrainlabParser(exit_on_error=False)
    parser.add_argument("--epochs", type=int, default=3)
    assert parser.get_defaults().epochs == 3
    parser.set_defaults(epochs=5)
    assert parser.get_defaults().epochs == 5
    parser.add_argument("--lr", type=float, default=0.1)
    assert parser.get_defaults().as_dict() == {"epochs": 5, "lr": 0.1}
