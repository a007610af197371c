"""The `trainlab` command. Kept light: heavy imports (Lightning, torch) happen only once a command runs,
so that `trainlab --help` and `trainlab --version` answer at once."""

import os
import re
import sys

from trainlab import __version__

LIGHTNING_COMMANDS = {
    "fit": "train a model (and, by default, test its best checkpoint)",
    "validate": "evaluate a checkpoint on the validation split (the test split if there is none)",
    "test": "evaluate a checkpoint on the test split; writes metrics.json",
    "predict": "predict a split with a checkpoint; writes predictions.csv",
}
OTHER_COMMANDS = {
    "report": "rebuild report.html from run directories; with several, a comparison page",
}

HELP = f"""usage: trainlab [-h] [--version] COMMAND -c CONFIG [--key value ...]

Train, evaluate, tune and diagnose neural networks with Lightning.

commands:
{chr(10).join(f"  {name:<10}{text}" for name, text in {**LIGHTNING_COMMANDS, **OTHER_COMMANDS}.items())}

Every command takes a YAML config (-c configs/seed.yaml) and dotted overrides
(--model.init_args.lr 0.001). `trainlab COMMAND -c CONFIG --print_config` shows the resolved
config with every default; `trainlab fit --help`, `--model.help trainlab.models.MLPModule` and
`--data.help trainlab.data.SyntheticDataModule` describe the keys. validate, test and predict
need --ckpt_path FILE.
Runs land in lightning_logs/<name>/version_N/.

options:
  -h, --help  show this help and exit
  --version   show the version and exit
"""


def fail(message: str) -> None:
    """One line on stderr and exit code 2: how every user error ends."""
    print(f"trainlab: error: {message}", file=sys.stderr)
    sys.exit(2)


def user_error_in(error: BaseException):
    """The UserError that caused `error`, if any (jsonargparse wraps errors raised while instantiating)."""
    from trainlab.errors import UserError

    while error is not None:
        if isinstance(error, UserError):
            return error
        error = error.__cause__  # explicit causes only: an error raised while handling another is not it
    return None


def condense_parser_error(message: str) -> str:
    """jsonargparse explains a bad value as a nested tree; keep the dotted key and the innermost reason."""
    keys, reasons, given = [], [], None
    for line in (raw.strip().removeprefix("- ").strip() for raw in message.splitlines()):
        key = re.match(r'Parser key "([^"]+)":\s*(.*)$', line)
        if key:
            keys.append(key.group(1))
            line = key.group(2)
        elif line.startswith("Problem with given class_path"):
            keys.append("init_args")
            continue
        elif line.startswith("Given value:"):
            given = line.removeprefix("Given value:").strip()
            continue
        if not line or line == "Errors:" or line.startswith(("Does not validate", "Subtypes:", "Given value type:")):
            continue
        if line != "Expected a <class 'NoneType'>" or not reasons:
            reasons.append(line)
    reason = "; ".join(dict.fromkeys(r for r in reasons if r != "Expected a <class 'NoneType'>")) or message
    reason = re.sub(r"<class '(\w+)'>", r"\1", reason)
    reason = re.sub(r"Expected a typing\.Literal\[(.*)\]\. Got value: (.*)", r"got '\2'; allowed: \1", reason)
    if given is not None and "Got value" not in reason and "NestedArg" not in given and "Namespace" not in given:
        reason += f" (got {given!r})"
    if "unrecognized arguments" in reason or "is not accepted" in reason or "not expected" in reason:
        reason += "; `--print_config` shows the keys there are"
    return f"{'.'.join(keys)}: {reason}" if keys else reason


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help"):
        print(HELP, end="")
        sys.exit(0 if args else 2)
    if args[0] in ("-V", "--version"):
        print(f"trainlab {__version__}")
        return
    if args[0] == "report":
        from trainlab.reporting.command import report_main

        sys.exit(report_main(args[1:]))
    if args[0] not in LIGHTNING_COMMANDS:
        fail(f"unknown command {args[0]!r}; allowed: {', '.join([*LIGHTNING_COMMANDS, *OTHER_COMMANDS])}")

    from argparse import ArgumentError

    # Lightning's own use of jsonargparse triggers deprecation notices users can do nothing about.
    os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")
    from trainlab.lightning_cli import run_lightning_cli

    try:
        run_lightning_cli(args)
    except Exception as error:
        from lightning.fabric.utilities.exceptions import MisconfigurationException

        from trainlab.errors import TrainingFailed

        cause = user_error_in(error)
        if cause is not None:
            fail(str(cause))
        if isinstance(error, TrainingFailed):
            print(f"trainlab: training failed: {error}", file=sys.stderr)
            sys.exit(3)
        if isinstance(error, ArgumentError):
            fail(condense_parser_error(str(error)))
        if isinstance(error, MisconfigurationException):  # Lightning refusing a trainer setting
            fail(f"trainer: {str(error).strip().splitlines()[0]}")
        raise  # an internal error: keep its traceback
