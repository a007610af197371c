"""The config parser every trainlab command runs through: Lightning's, with the work it repeats cut out.

Lightning's config layer (jsonargparse) cost a short fit as much as its training: it works out the parser's
defaults anew for every parse, checks each value as it is read, checks every value again at the end, dumps the
whole config (the Trainer's ~50 keys, logger, callbacks) to record two sections of it, and dumps it again for
config.yaml. This module is the one place that relies on jsonargparse's and Lightning's private config API for
that; tests/test_parsing.py compares each shortcut with the full path and fails loudly when a new version
changes what it relies on.
"""

import json

import yaml
from jsonargparse import Namespace, set_dumper
from jsonargparse._common import lenient_check, parser_context  # private: see the module docstring
from jsonargparse._required import iter_required_keys  # private: see the module docstring
from lightning.pytorch.cli import LightningArgumentParser

# jsonargparse dumps YAML (config.yaml, --print_config) with PyYAML's pure-Python emitter; libyaml's writes the
# same text (tests/test_parsing.py compares them) in two thirds of the time.
YAML_DUMP = {"default_flow_style": False, "allow_unicode": True, "sort_keys": False}  # jsonargparse's settings
if getattr(yaml, "CSafeDumper", None) is not None:
    set_dumper("yaml", lambda data: yaml.dump(data, Dumper=yaml.CSafeDumper, **YAML_DUMP))


class TrainlabParser(LightningArgumentParser):
    """Lightning's parser, checking each value once."""

    def parse_args(self, *args, _skip_validation: bool = False, **kwargs) -> Namespace:
        """Parse as jsonargparse does, without its final second check of every value (a third of a parse: each
        class's arguments are parsed anew). Each value was checked as it was read (from a config file, an
        argument, or a class's nested arguments); the final pass still refuses unknown keys and missing
        sections, in jsonargparse's words."""
        config = super().parse_args(*args, _skip_validation=True, **kwargs)
        if not _skip_validation:  # jsonargparse parses a subcommand's arguments with its own final pass skipped
            try:
                with parser_context(lenient_check=True):  # keys only: values are not checked again
                    self.validate(config)
                missing = self.missing_keys(config)
                if missing:
                    raise TypeError(f"the following arguments are required: {', '.join(missing)}")
            except (TypeError, KeyError) as error:
                self.error(str(error), error)
        return config

    def get_defaults(self, skip_validation: bool = False, **kwargs) -> Namespace:
        """jsonargparse's defaults, worked out once per parser and handed out as copies: every parse starts from
        them, and working them out (each class section's defaults adapted anew) is a third of a parse. A change
        of the parser's arguments or defaults works them out again; default config files are read each time."""
        if kwargs or self.default_config_files:
            return super().get_defaults(skip_validation, **kwargs)
        arguments = tuple((id(action), id(action.default)) for action in self._actions)
        key = (skip_validation, lenient_check.get(), arguments)
        cache = self.__dict__.setdefault("_defaults_cache", {})
        if key not in cache:
            if len(cache) > 8:  # the parser changed since
                cache.clear()
            cache[key] = super().get_defaults(skip_validation)
        return cache[key].clone()

    def missing_keys(self, config: Namespace, prefix: str = "") -> list[str]:
        """The required keys (the subcommand, a command's model and data) the config leaves out or null."""
        missing = [prefix + key for key in iter_required_keys(self) if config.get(key) is None]
        subcommand = config.get("subcommand") if self._subcommands_action else None
        if subcommand is not None:
            subparser = self._subcommands_action._name_parser_map[subcommand]
            missing += subparser.missing_keys(config.get(subcommand) or Namespace(), f"{prefix}{subcommand}.")
        return missing

    def dump(self, namespace, *args, **kwargs) -> str:
        """Dump without a second check: each config trainlab dumps (the hyperparameters Lightning records,
        config.yaml, --print_config) came out of parse_args, which checked it (twice per run: 0.09 s of a 0.45 s
        fit)."""
        kwargs["skip_validation"] = True
        return super().dump(namespace, *args, **kwargs)


def model_and_data_sections(parser: TrainlabParser, config: Namespace) -> dict:
    """The `model` and `data` sections of a parsed config as plain data, as LightningCLI._dump_config gives
    them (it dumps the whole config and keeps these two: three times the work) for the hyperparameters it
    records in checkpoints."""
    subcommand = config.get("subcommand")
    prefix = f"{subcommand}." if subcommand else ""
    part = Namespace()
    if subcommand:
        part["subcommand"] = subcommand
    for key in ("model", "data"):
        if config.get(prefix + key) is not None:
            part[prefix + key] = config[prefix + key]
    # JSON, not Lightning's YAML round trip: the same plain values (the tests compare them), in a tenth of the time
    dumped = json.loads(parser.dump(part, skip_link_targets=False, skip_none=False, format="json"))
    return dumped[subcommand] if subcommand else dumped
