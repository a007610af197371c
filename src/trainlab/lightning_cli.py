"""trainlab's LightningCLI: the fit/validate/test/predict commands over one config.

Besides Lightning's `trainer`, `model`, `data` and `seed_everything`, a config has a `run` section
(RunOptions) that says what to watch, when to stop and what to test after a fit.
"""

import inspect
import logging
import os
import re
import warnings
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import ClassVar, Literal

from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from trainlab import callback_factories, rules, tasks
from trainlab.callbacks import (
    BestCheckpoint,
    DiscardOnBadInput,
    EarlyStopNotice,
    EpochProgressBar,
    EpochSummary,
    LastCheckpoint,
    MetricsWriter,
    PredictionsWriter,
    SaveOnInterrupt,
)
from trainlab.callbacks.doctor import StepwiseDoctor, TrainingDoctor
from trainlab.callbacks.report import ReportWriter
from trainlab.callbacks.scoring import TestScores
from trainlab.checkpoints import LocalCheckpointIO, check_checkpoint, check_weights
from trainlab.data import BundledDataModule, FileDataModule, SyntheticDataModule, TabularDataModule
from trainlab.diagnosis import DoctorOptions
from trainlab.early_checks import override_args
from trainlab.errors import SECTION_CLASSES, UserError, as_user_error, checkpoint_required, require
from trainlab.models import MLPModule
from trainlab.parsing import TrainlabParser, model_and_data_sections
from trainlab.threads import CpuThreads


@dataclass
class EarlyStoppingOptions:
    """Stop when the monitored metric has not improved by `min_delta` for `patience` validations."""

    patience: int = 10
    min_delta: float = 0.0


@dataclass
class RunOptions:
    """What a run watches and does around the Trainer.

    Args:
        monitor: the metric that picks the best checkpoint and drives early stopping (val/loss,
            val/accuracy, val/f1, val/auroc, val/r2, ... or train/loss); without a validation split the
            per-epoch numbers are the test split's, named test/loss, test/accuracy, ...; null: the loss of
            the split evaluated every epoch (val/loss, or test/loss).
        mode: min or max; auto takes the metric's natural direction (max for accuracy, min for loss).
        early_stopping: patience and min_delta; null turns early stopping off.
        summary_every: print a one-line summary every N epochs (0: never).
        val_metrics_every: log the full set of per-epoch held-out metrics every N epochs; the loss, the
            headline metric (val/accuracy or val/r2) and `monitor` are logged every epoch.
        test_after_fit: after `fit`, test a checkpoint and write metrics.json into the run directory.
        test_ckpt: which checkpoint that test uses: best (on `monitor`) or last.
        last_checkpoint_every: seconds between writes of checkpoints/last.ckpt at epoch ends (it is
            always written when the fit ends; a kill loses at most this much training); 0: every epoch.
        report: after a test, write plots/*.png and report.html and log the figures to TensorBoard.
        threads: CPU threads torch uses while the Trainer runs; null: one for a small model's step (see
            trainlab.threads: measured faster, and far faster on a busy machine), torch's setting otherwise.
        verbose: print the test metrics' table, the doctor's verdict and, when interrupted, how to resume
            (the runs of trainlab cv and tune, which cannot be resumed alone, turn it off).
        doctor: the training doctor's thresholds (see trainlab.diagnosis); null turns it off.
    """

    monitor: str | None = None
    mode: Literal["auto", "min", "max"] = "auto"
    early_stopping: EarlyStoppingOptions | None = None
    summary_every: int = 10
    val_metrics_every: int = 1
    test_after_fit: bool = True
    test_ckpt: Literal["best", "last"] = "best"
    last_checkpoint_every: float = 1.0
    report: bool = True
    threads: int | None = None
    verbose: bool = True
    doctor: DoctorOptions | None = field(default_factory=DoctorOptions)


def _shape_of(key: str, data: TabularDataModule):
    return data.shape()[key]


def natural_mode(metric: str) -> str:
    """max for metrics where higher is better (accuracy, r2, ...), min for losses and errors."""
    return "max" if tasks.HIGHER_IS_BETTER[metric.split("/")[-1]] else "min"


def monitor_mode(run: RunOptions) -> str:
    return natural_mode(run.monitor) if run.mode == "auto" else run.mode


SECTION_CLASSES.update(
    model=[MLPModule],
    data=[TabularDataModule, SyntheticDataModule, FileDataModule, BundledDataModule],
    run=[RunOptions, EarlyStoppingOptions],
    trainer=[Trainer],
)


class TrainlabCLI(LightningCLI):
    def __init__(self, args=None, extra_callbacks=(), **kwargs):
        self.extra_callbacks = list(extra_callbacks)  # callbacks from Python (the tuner's), not from a config
        self.command = args[0] if args and args[0] in LightningCLI.subcommands() else None
        # No abbreviated options (--trainer.max_epoch is not --trainer.max_epochs; jsonargparse 5 drops them
        # too), so that the early check (trainlab.early_checks) and the parser refuse the same keys.
        exact = {"allow_abbrev": False}
        per_command = dict.fromkeys(self.subcommands(), exact)
        kwargs["parser_kwargs"] = {**exact, **kwargs.get("parser_kwargs", {}), **per_command}
        callback_factories.install()  # third-party callbacks looked up once per process, not per Trainer
        super().__init__(
            parser_class=TrainlabParser,
            model_class=MLPModule,
            datamodule_class=TabularDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            trainer_defaults={
                "logger": {
                    "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
                    "init_args": {"save_dir": "lightning_logs", "name": "trainlab", "default_hp_metric": False},
                },
                "log_every_n_steps": 1,  # everything is logged per epoch; this only silences a warning
                # A plain MLP's layer table says little that hidden_dims does not; --trainer.enable_model_summary
                # true brings it back.
                "enable_model_summary": False,
            },
            args=args,
            **kwargs,
        )

    def _dump_config(self) -> None:
        """Lightning's hook (private) that records the model's and the data's hyperparameters: only those two
        sections are dumped (see trainlab.parsing)."""
        if not hasattr(self, "config_dump"):
            self.config_dump = model_and_data_sections(self.parser, self.config)

    def subcommands(self) -> dict[str, set[str]]:
        """Only the command being run gets a parser (Lightning builds one per command, each with every class's
        arguments: about a third of a short fit's time, paid again by every fold and trial)."""
        every = LightningCLI.subcommands()
        return {self.command: every[self.command]} if self.command is not None else every

    # Parsers built in this process, by command: the classes and defaults they are built from never change.
    _parsers: ClassVar[dict] = {}

    def setup_parser(self, add_subcommands: bool, main_kwargs: dict, subparser_kwargs: dict) -> None:
        """Build a command's parser once per process and reuse it (45 ms each time, paid again by every fold and
        trial). Lightning keeps the subcommand parsers and their method arguments beside the parser: they are
        kept and restored with it (tests/test_lightning_cli.py checks that a reused parser runs like a new one)."""
        key = (add_subcommands, self.command, repr(main_kwargs), repr(subparser_kwargs))
        if key not in self._parsers:
            super().setup_parser(add_subcommands, main_kwargs, subparser_kwargs)
            names = ("_subcommand_parsers", "_subcommand_method_arguments") if add_subcommands else ()
            kept = {name: getattr(self, name) for name in names}  # (an AttributeError if Lightning renames them)
            self._parsers[key] = (self.parser, kept)
        self.parser, kept = self._parsers[key]
        for name, value in kept.items():
            setattr(self, name, value)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_class_arguments(RunOptions, "run")
        # The data decides what the model's input and output are; configs never repeat them. `shape()` may read
        # a file (once: it is idempotent), which is why the links call it rather than read properties.
        for target in ("input_dim", "task", "num_classes", "slots"):
            parser.link_arguments("data", f"model.init_args.{target}", partial(_shape_of, target), "instantiate")

    def parse_arguments(self, parser, args) -> None:
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path is None and subcommand in ("validate", "test", "predict"):
            raise UserError(checkpoint_required(subcommand))
        self.checkpoint = None
        if ckpt_path is not None:
            self.checkpoint = check_checkpoint(ckpt_path, set(inspect.signature(MLPModule.__init__).parameters))
            self._check_overrides_keep_the_checkpoint(subcommand, args or [])
            if subcommand in ("validate", "test", "predict"):
                self._write_inside_the_fit(subcommand, Path(ckpt_path), args or [])

    def _write_inside_the_fit(self, subcommand: str, ckpt_path: Path, args: list[str]) -> None:
        """An evaluation of a fit's checkpoint writes inside that fit's run directory, in
        <fit>/<command>/version_N, so that lightning_logs/<name>/version_N stay fits (and `trainlab report
        lightning_logs/<name>/version_*` reports fits). A logger directory given on the command line wins."""
        fit_dir = ckpt_path.parent.parent
        if ckpt_path.parent.name != "checkpoints" or not (fit_dir / "config.yaml").exists():
            return
        if any(re.match(r"--trainer\.logger\.init_args\.(save_dir|name|version)\b", str(a)) for a in args):
            return
        logger = self.config[subcommand]["trainer"].get("logger")
        init_args = getattr(logger, "init_args", None)
        if init_args is None or not {"save_dir", "name", "version"} <= set(vars(init_args)):
            return
        init_args.save_dir, init_args.name, init_args.version = str(fit_dir), subcommand, None

    def _check_overrides_keep_the_checkpoint(self, subcommand: str, args: list[str]) -> None:
        """Lightning builds a checkpoint's model from the checkpoint's own hyperparameters: a model value given on
        the command line that differs would be silently ignored, so it is refused."""
        hparams = self.checkpoint["hyper_parameters"]
        given = self.config[subcommand]["model"].get("init_args") or {}
        for arg in args:
            name = re.fullmatch(r"--model\.(?:init_args\.)?(\w+)(?:=.*)?", str(arg))
            if name is None or name.group(1) not in hparams:
                continue
            key = name.group(1)
            if _plain(given.get(key)) != _plain(hparams[key]):
                raise UserError(
                    f"--model.init_args.{key}={_plain(given.get(key))!r} differs from the checkpoint's "
                    f"{_plain(hparams[key])!r}: a checkpoint's model keeps its own settings (--ckpt_path resumes or "
                    "evaluates that model); drop the override, or train a new model without --ckpt_path"
                )

    def instantiate_trainer(self, **kwargs):
        run: RunOptions = self._get(self.config_init, "run")
        held_out = self.datamodule.validation_split  # the split evaluated every epoch: val, or test without one
        self.model.name_held_out(held_out)
        run.monitor = run.monitor or f"{held_out}/loss"
        self._check_run_options(run)
        self._check_trainer_options()
        self._check_checkpoint_fits_data()
        self._check_run_dir_is_new()
        self.model.log_val_metrics(every=run.val_metrics_every, always=[run.monitor])
        mode = monitor_mode(run)
        trainer = self._get(self.config_init, "trainer")
        if self.model.slot_evaluation is not None:
            callbacks = self._pack_callbacks(run, mode, trainer)
        else:
            callbacks = self._fit_callbacks(run, mode, trainer)
        self.trainer_defaults = {**self.trainer_defaults, "callbacks": callbacks + self.extra_callbacks}
        built = super().instantiate_trainer(**kwargs)
        self.model.check_devices(built)  # before anything is written
        # Only in place of the strategy's plain default: a config's own CheckpointIO (as a plugin or in the
        # strategy) and strategies that need theirs (XLA) keep it.
        if type(built.strategy.checkpoint_io) is TorchCheckpointIO:
            built.strategy.checkpoint_io = LocalCheckpointIO()
        return built

    def _fit_callbacks(self, run: RunOptions, mode: str, trainer: dict) -> list:
        callbacks = [
            DiscardOnBadInput(),
            CpuThreads(run.threads),
            TestScores(),
            EpochSummary(run.summary_every),
            MetricsWriter(),
            PredictionsWriter(),
            SaveOnInterrupt(resume_hint=run.verbose),
        ]
        if trainer.get("enable_progress_bar") is not False:
            callbacks.append(EpochProgressBar())
        if trainer.get("enable_checkpointing") is not False:
            best = BestCheckpoint(
                monitor=run.monitor, mode=mode, filename="best-epoch{epoch:03d}", auto_insert_metric_name=False
            )
            last = LastCheckpoint(every=run.last_checkpoint_every)
            callbacks += [best, last]  # in this order: last.ckpt records the best one's state
        if run.report:
            callbacks.append(ReportWriter())
        if run.doctor is not None:
            doctor = StepwiseDoctor if run.doctor.every_step else TrainingDoctor
            early_stopping = run.early_stopping is not None
            callbacks.append(doctor(run.doctor, run.monitor, early_stopping=early_stopping, verbose=run.verbose))
        if run.early_stopping is not None:
            stop = run.early_stopping
            callbacks.append(
                EarlyStopping(monitor=run.monitor, mode=mode, patience=stop.patience, min_delta=stop.min_delta)
            )
            if run.verbose:
                callbacks.append(EarlyStopNotice())
        return callbacks

    def _pack_callbacks(self, run: RunOptions, mode: str, trainer: dict) -> list:
        """A pack of several slots (packed cv folds): each slot stops early and keeps its best weights on its
        own (the module's SlotEvaluation), so Lightning's EarlyStopping and ModelCheckpoint, which watch one
        value, are left out; the slots' own run directories are written by the caller's SlotRuns callback."""
        stop = run.early_stopping
        self.model.slot_evaluation.configure(
            run.monitor, mode, stop.patience if stop else None, stop.min_delta if stop else 0.0
        )
        callbacks = [SaveOnInterrupt(resume_hint=run.verbose), CpuThreads(run.threads)]
        if trainer.get("enable_checkpointing") is not False:
            callbacks.append(LastCheckpoint(every=run.last_checkpoint_every))
        return callbacks

    def _check_trainer_options(self) -> None:
        """Trainer options that trainlab replaces or relies on."""
        trainer = self._get(self.config_init, "trainer")
        rules.check("trainer", rules.TRAINER, {key: trainer.get(key) for key in rules.TRAINER})
        logger = trainer.get("logger")
        require(
            logger is not False and logger != [],
            "trainer.logger",
            logger,
            "a logger: its version directory is the run directory (CSVLogger is the lightest)",
        )

    def _check_run_dir_is_new(self) -> None:
        """A logger version given explicitly must not be an earlier run's directory (its config.yaml, events and
        checkpoints would mix with this run's)."""
        logger = self._get(self.config_init, "trainer").get("logger")
        log_dir = getattr(logger, "log_dir", None)
        if log_dir is not None and (Path(log_dir) / "config.yaml").exists():
            raise UserError(
                f"trainer.logger.init_args.version={logger.version!r}: {log_dir} already holds a run; choose "
                "another version, or leave it out for the next free one"
            )

    def _check_checkpoint_fits_data(self) -> None:
        """A checkpoint must take the inputs and give the outputs the config's data has, and hold the weights of
        the model its hyperparameters describe."""
        if self.checkpoint is None:
            return
        hparams, data = self.checkpoint["hyper_parameters"], self.datamodule
        saved = {k: hparams.get(k) for k in ("input_dim", "task", "num_classes")}
        given = {k: v for k, v in data.shape().items() if k in saved}
        if saved != given:
            raise UserError(
                f"--ckpt_path: the checkpoint's model expects {saved} but the config's data gives {given}; "
                "use the config the checkpoint was trained with (config.yaml in its run directory)"
            )
        check_weights(
            f"--ckpt_path={self.config[self.subcommand]['ckpt_path']!r}", self.checkpoint["state_dict"], self.model
        )

    def _check_run_options(self, run: RunOptions) -> None:
        if self.datamodule.validation_split == "test":  # no validation split: the test split stands in
            why = "with data.init_args.val_fraction 0 it would choose on the test split"
            require(run.test_ckpt == "last", "run.test_ckpt", run.test_ckpt, f"last: best {why}")
            require(run.early_stopping is None, "run.early_stopping", run.early_stopping, f"null: stopping {why}")
            scheduler = self.model.hparams.scheduler
            require(scheduler != "plateau", "model.init_args.scheduler", scheduler, f"not plateau: plateau {why}")
        allowed = self.model.monitorable()
        why = " (without a validation split the test split is evaluated every epoch)" if "test/loss" in allowed else ""
        require(run.monitor in allowed, "run.monitor", run.monitor, f"null or one of {', '.join(allowed)}{why}")
        natural = natural_mode(run.monitor)
        require(
            run.mode in ("auto", natural),
            "run.mode",
            run.mode,
            f"auto or {natural}: {run.monitor} is better when it is {'higher' if natural == 'max' else 'lower'}",
        )
        rules.check("run", rules.RUN, {name: getattr(run, name) for name in rules.RUN})
        if run.early_stopping is not None:
            stop = run.early_stopping
            rules.check(
                "run.early_stopping", rules.EARLY_STOPPING, {"patience": stop.patience, "min_delta": stop.min_delta}
            )

    def after_fit(self) -> None:
        run: RunOptions = self._get(self.config_init, "run")
        if not run.test_after_fit or self.trainer.interrupted:
            return
        slots = self.model.slot_evaluation
        if slots is not None:  # the weights each slot tests are put in place in memory
            if run.test_ckpt == "best":
                slots.restore_best(self.model)
            self.trainer.test(self.model, datamodule=self.datamodule, verbose=False)
            return
        self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=self._tested_file(run), verbose=run.verbose)

    def _tested_file(self, run: RunOptions) -> str | None:
        """The absolute path of the checkpoint file this fit wrote that `run.test_ckpt` names (never one looked
        up by name in the working directory); None, the weights in memory, when it wrote none (fast_dev_run,
        enable_checkpointing false)."""
        trainer = self.trainer
        if trainer.fast_dev_run or trainer.checkpoint_callback is None:
            return None
        if run.test_ckpt == "best":
            path = trainer.checkpoint_callback.best_model_path
        else:
            path = next((c.path for c in trainer.checkpoint_callbacks if isinstance(c, LastCheckpoint)), None)
        path = trainer.strategy.broadcast(str(path) if path else None)  # under DDP every rank tests rank zero's file
        return str(Path(path).resolve()) if path else None


def _plain(value):
    """A config value as plain data (tuples as lists), for comparing a config's value with a checkpoint's."""
    return list(value) if isinstance(value, tuple) else value


# Lightning's notices that say nothing to act on: adverts, and which accelerators exist when none is used.
NOT_SHOWN = ("💡 Tip", "GPU available: False", "TPU available: False", "HPU available: False")


def _not_an_advert(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(NOT_SHOWN)


def run_lightning_cli(args: list[str], callbacks=(), run: bool = True) -> TrainlabCLI:
    """Run one Lightning command and return the CLI (its trainer, model and data). Bad input raises.

    callbacks are added to the Trainer's; with run=False, args hold no command and nothing is run
    (the config is parsed and its classes are built, which checks it)."""
    # Lightning's own use of jsonargparse triggers deprecation notices users can do nothing about.
    os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")
    # In-memory tensors need no loader workers; the warning that says otherwise is noise here.
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    # We always pass args explicitly (the CLI, the tests and the API share this path).
    warnings.filterwarnings("ignore", ".*LightningCLI's args parameter is intended.*")
    warnings.filterwarnings("ignore", ".*isinstance.treespec, LeafSpec.*")
    # Testing another run's checkpoint: its run directory is not ours, which is expected.
    warnings.filterwarnings("ignore", ".*The dirpath has changed from.*")
    # Validation and test values come from torchmetrics, which has already synchronised them across ranks.
    warnings.filterwarnings("ignore", ".*when logging on epoch level in distributed setting.*")
    # MLPModule.transfer_batch_to_device only skips batches already on the device; the data module defines none.
    warnings.filterwarnings("ignore", ".*overridden `transfer_batch_to_device` in `LightningModule`.*")
    # An undefined test metric gets trainlab's own one-line warning and a null in metrics.json (see tasks.py).
    warnings.filterwarnings("ignore", ".*samples in (targets|preds).*meaningless.*")
    # Predict batches carry their own sample indices (see TabularDataModule.predict_dataloader).
    warnings.filterwarnings("ignore", ".*Couldn't infer the batch indices.*")
    # "Seed set to 42" would come before any error about a config value; config.yaml records the seed.
    logging.getLogger("lightning.fabric.utilities.seed").setLevel(logging.WARNING)
    rank_zero_log = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if _not_an_advert not in rank_zero_log.filters:
        rank_zero_log.addFilter(_not_an_advert)
    return TrainlabCLI(args=args, extra_callbacks=callbacks, run=run, parser_kwargs={"exit_on_error": False})


def build_config(config: Path, overrides: dict, where: str) -> TrainlabCLI:
    """A config's classes with these overrides, built and checked, nothing run (before a tune or cv starts
    its runs); bad input raises a UserError that starts with `where`. A run's saved config.yaml serves too."""
    import tempfile

    import yaml

    try:
        content = yaml.safe_load(Path(config).read_text())
    except (OSError, yaml.YAMLError):
        content = None  # the parser names the problem below
    with tempfile.TemporaryDirectory() as folder:
        if isinstance(content, dict) and any(content.get(k) is None for k in COMMAND_KEYS if k in content):
            # A saved config.yaml holds the command's own keys (ckpt_path: null, ...), which a config parsed
            # without a command refuses; the command that runs the folds or trials accepts them.
            config = Path(folder) / "config.yaml"
            config.write_text(
                yaml.safe_dump({k: v for k, v in content.items() if k not in COMMAND_KEYS or v is not None})
            )
        try:
            return run_lightning_cli(["-c", str(config), *override_args(overrides)], run=False)
        except Exception as error:
            user_error = as_user_error(error)
            if user_error is None:
                raise
            raise UserError(f"{where}: {user_error}") from None


COMMAND_KEYS = ("ckpt_path", "weights_only")  # a command's own keys, which a saved config.yaml records
