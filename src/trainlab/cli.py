"""The `trainlab` command. Kept light: heavy imports (Lightning, torch) happen only once a command runs,
so that `trainlab --help` and `trainlab --version` answer at once."""

import sys

from trainlab import __version__

LIGHTNING_COMMANDS = {
    "fit": "train a model (and, by default, test its best checkpoint)",
    "validate": "evaluate a checkpoint on the validation split",
    "test": "evaluate a checkpoint on the test split; writes metrics.json",
    "predict": "predict a split with a checkpoint; writes predictions.csv",
}

HELP = f"""usage: trainlab [-h] [--version] COMMAND -c CONFIG [--key value ...]

Train, evaluate, tune and diagnose neural networks with Lightning.

commands:
{chr(10).join(f"  {name:<10}{text}" for name, text in LIGHTNING_COMMANDS.items())}

Every command takes a YAML config (-c configs/seed.yaml) and dotted overrides
(--model.init_args.lr 0.001). `trainlab COMMAND --help` lists every key and its default;
`trainlab COMMAND -c CONFIG --print_config` shows the resolved config.
Runs land in lightning_logs/<name>/version_N/.

options:
  -h, --help  show this help and exit
  --version   show the version and exit
"""


def fail(message: str) -> None:
    """One line on stderr and exit code 2: how every user error ends."""
    print(f"trainlab: error: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help"):
        print(HELP, end="")
        sys.exit(0 if args else 2)
    if args[0] in ("-V", "--version"):
        print(f"trainlab {__version__}")
        return
    if args[0] not in LIGHTNING_COMMANDS:
        fail(f"unknown command {args[0]!r}; allowed: {', '.join(LIGHTNING_COMMANDS)}")

    from trainlab.errors import UserError
    from trainlab.lightning_cli import run_lightning_cli

    try:
        run_lightning_cli(args)
    except UserError as error:
        fail(str(error))
