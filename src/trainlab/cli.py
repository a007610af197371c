"""The `trainlab` command. Kept light: heavy imports (Lightning, torch) happen only once a command runs,
so that `trainlab --help` and `trainlab --version` answer at once."""

import sys
from pathlib import Path

from trainlab import __version__

LIGHTNING_COMMANDS = {
    "fit": "train a model (and, by default, test its best checkpoint)",
    "validate": "evaluate a checkpoint on the validation split (the test split if there is none)",
    "test": "evaluate a checkpoint on the test split; writes metrics.json",
    "predict": "predict a split with a checkpoint; writes predictions.csv",
}
OTHER_COMMANDS = {
    "tune": "search hyperparameters with Optuna (grid, random, Bayesian; pruning; workers)",
    "cv": "K-fold cross-validation of a config (stratified; out-of-fold predictions)",
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


# `trainlab fit --help`: the keys a person changes first (Lightning's full list is `--help all`). Plain text,
# so that it answers at once; tests/test_cli.py checks every key here against the real signatures.
COMMAND_HELP = """usage: trainlab {command} -c CONFIG [--dotted.key VALUE ...]{ckpt}

{about}.

The keys changed most often (any key of a config can be given as --dotted.key VALUE):
  model   --model.init_args.hidden_dims [64,64]     widths of the hidden layers
          --model.init_args.activation relu         relu, leaky_relu, gelu, tanh, sigmoid
          --model.init_args.dropout 0.0             --model.init_args.batch_norm false
          --model.init_args.optimizer adam          adam, adamw, sgd, rmsprop
          --model.init_args.lr 0.001                --model.init_args.weight_decay 0.0
          --model.init_args.scheduler null          step, cosine, plateau
          --model.init_args.gradient_clip_val null  --model.init_args.ensemble 1
  data    --data.init_args.batch_size 32            --data.init_args.seed 42
          --data.init_args.val_fraction 0.2         --data.init_args.test_fraction 0.2
          --data.init_args.path FILE                --data.init_args.target COLUMN  (FileDataModule)
  trainer --trainer.max_epochs N                    --trainer.accelerator cpu|gpu|auto
          --trainer.devices N                       --trainer.strategy auto|ddp
  run     --run.monitor null                        (null: val/loss, or test/loss with no validation split)
          --run.early_stopping.patience 10
          --run.test_ckpt best|last                 --run.report true
          --seed_everything 42
{ckpt_line}
Every key and its default:   trainlab {command} -c CONFIG --print_config
All of a class's keys:       trainlab {command} --model.help trainlab.models.MLPModule
                             trainlab {command} --data.help trainlab.data.SyntheticDataModule
Lightning's full option list (long): trainlab {command} --help all
"""
CKPT = {
    "fit": ("", "  --ckpt_path FILE   resume from a checkpoint (checkpoints/last.ckpt: exactly where it stopped)\n"),
    "other": (" --ckpt_path FILE", "  --ckpt_path FILE   the trained model's checkpoint file (required)\n"),
}


def command_help(command: str) -> str:
    ckpt, ckpt_line = CKPT["fit" if command == "fit" else "other"]
    about = LIGHTNING_COMMANDS[command][0].upper() + LIGHTNING_COMMANDS[command][1:]
    return COMMAND_HELP.format(command=command, ckpt=ckpt, about=about, ckpt_line=ckpt_line)


def fail(message: str) -> None:
    """One line on stderr and exit code 2: how every user error ends."""
    print(f"trainlab: error: {message}", file=sys.stderr)
    sys.exit(2)


def _show_warning(message, category, filename, lineno, file=None, line=None, _default=None):
    """trainlab's own warnings as one line; everyone else's as Python shows them."""
    from trainlab.errors import TrainlabWarning

    if issubclass(category, TrainlabWarning):
        print(f"trainlab: warning: {message}", file=sys.stderr, flush=True)
    else:
        _default(message, category, filename, lineno, file, line)


def entry() -> None:
    """The `trainlab` console script (and `python -m trainlab`): main(), then a quick end of the process.

    Lightning and torch leave millions of objects behind; Python's shutdown runs the cycle collector over
    all of them, which cost 0.7 s per command here. gc.freeze() moves them out of its reach first: the
    process still ends normally (atexit handlers, flushed files, joined threads), only sooner."""
    import gc

    try:
        main()
    finally:
        gc.freeze()


def main(argv: list[str] | None = None) -> None:
    import functools
    import warnings

    if not isinstance(warnings.showwarning, functools.partial):
        warnings.showwarning = functools.partial(_show_warning, _default=warnings.showwarning)
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help"):
        print(HELP, end="")
        sys.exit(0 if args else 2)
    if args[0] in ("-V", "--version"):
        print(f"trainlab {__version__}")
        return
    if args[0] in OTHER_COMMANDS:
        if args[0] == "tune":
            from trainlab.tuning.command import tune_main as command_main
        elif args[0] == "cv":
            from trainlab.cv.command import cv_main as command_main
        else:
            from trainlab.reporting.command import report_main as command_main
        code = _guarded(lambda: command_main(args[1:]))
        sys.exit(code or 0)
    if args[0] not in LIGHTNING_COMMANDS:
        fail(f"unknown command {args[0]!r}; allowed: {', '.join([*LIGHTNING_COMMANDS, *OTHER_COMMANDS])}")
    if len(args) == 2 and args[1] in ("-h", "--help"):
        print(command_help(args[0]), end="")
        return
    if args[1:] == ["--help", "all"]:
        args = args[:2]
    from trainlab.early_checks import check_early

    problem = check_early(args)
    if problem is not None:
        fail(problem)

    from trainlab.lightning_cli import run_lightning_cli

    cli = _guarded(lambda: run_lightning_cli(args))
    if cli is not None and cli.trainer.is_global_zero:
        print(where(cli.trainer), flush=True)


def where(trainer) -> str:
    """The line that ends a command: its run directory and the files a person opens next."""

    # the logger's own directory: trainer.log_dir is a collective under DDP, and only rank zero asks
    run = Path(getattr(trainer.logger, "log_dir", None) or trainer.default_root_dir)
    names = ["report.html", "metrics.json", "predictions.csv", "diagnosis.json"]
    files = [name for name in names if (run / name).exists()]
    checkpoint = getattr(trainer.checkpoint_callback, "best_model_path", "") or ""
    if checkpoint and Path(checkpoint).exists() and Path(checkpoint).resolve().is_relative_to(run.resolve()):
        files.append(str(Path(checkpoint).resolve().relative_to(run.resolve())))  # this run's, not a loaded one
    if (run / "checkpoints" / "last.ckpt").exists():
        files.append("checkpoints/last.ckpt")
    return f"trainlab: outputs in {run}" + (f": {', '.join(files)}" if files else "")


def _stop_on_signals() -> dict:
    """SIGTERM and SIGINT raise Stopped wherever the command is (Lightning, which would turn SIGTERM into a
    clean exit 0, calls this handler too): the fit saves checkpoints/interrupted.ckpt on its way out.
    Returns the handlers it replaced (none off the main thread, where signals cannot be handled)."""
    import signal
    import threading

    from trainlab.errors import Stopped

    def stop(signum, frame):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the shutdown
        raise Stopped(signum)

    if threading.current_thread() is not threading.main_thread():
        return {}
    return {signum: signal.signal(signum, stop) for signum in (signal.SIGTERM, signal.SIGINT)}


def _guarded(command):
    """Run a command; end a user's mistake, a failed training, a disk that cannot be written, lost workers or
    a stop signal with one line."""
    import signal

    from trainlab.errors import Stopped, TrainingFailed, WorkersLost, as_user_error, write_problem

    replaced = _stop_on_signals()
    try:
        return command()
    except Stopped as stop:
        name = signal.Signals(stop.signum).name
        print(f"trainlab: stopped by {name} (exit {128 + stop.signum})", file=sys.stderr)
        sys.exit(128 + stop.signum)
    except WorkersLost as lost:
        print(f"trainlab: error: {lost}; run the same command again to redo what was lost", file=sys.stderr)
        sys.exit(5)
    except Exception as error:
        if isinstance(error, TrainingFailed):
            print(f"trainlab: training failed: {error}", file=sys.stderr)
            sys.exit(3)
        problem = write_problem(error)
        if problem is not None:
            print(f"trainlab: error: {problem}", file=sys.stderr)
            sys.exit(4)
        user_error = as_user_error(error)
        if user_error is not None:
            fail(str(user_error))
        raise  # an internal error: keep its traceback
    finally:
        for signum, handler in replaced.items():  # (main() may be called again in this process: tests)
            signal.signal(signum, handler)
