"""Checks of a tune config against its base fit config, made before any trial runs: the base config builds
with the fixed overrides, chooses on a validation split, and builds again with every value the space can
take at its ends (each choice, each range's low and high), so that a bad key or value fails now, not in
trial 17."""

from trainlab.errors import UserError, require
from trainlab.tuning.config import TuneConfig
from trainlab.tuning.population import PACKABLE
from trainlab.tuning.study import Search, fit_overrides


def check_search(config: TuneConfig) -> Search:
    """The Search a valid tune config describes; raises a UserError naming the first bad key."""
    from trainlab.lightning_cli import build_config, natural_mode

    # run.mode is checked below, with the tuned metric as run.monitor (as every trial runs)
    cli = build_config(config.base, config.overrides, f"base {config.base.name} with overrides")
    held_out = cli.datamodule.validation_split  # test: no validation split (allowed with cv, checked below)
    names = [m.split("/", 1)[1] for m in cli.model.monitorable() if not m.startswith("train/")]
    base_monitor = cli.config_init["run"].monitor  # the base's, or its held-out loss
    metric = config.metric or (
        base_monitor if base_monitor.startswith("train/") else f"val/{base_monitor.split('/')[1]}"
    )
    allowed = [f"val/{name}" for name in names]
    require(metric in allowed, "metric", metric, f"a validation metric of this task: {', '.join(allowed)}")
    # what the trials' fits call it: with cv and no validation split each fold's run evaluates its held-out fold
    monitor = metric if held_out == "val" else f"{held_out}/{metric.split('/', 1)[1]}"
    require(
        held_out == "val" or config.cv is not None,
        "overrides",
        config.overrides,
        "a validation split to choose on: set data.init_args.val_fraction > 0 (the base config has none, "
        "and tuning on the test split would leak it into the choice), or cross-validate (cv: {folds: K})",
    )
    require(
        cli.trainer.world_size == 1,
        "overrides",
        "a multi-device trainer",
        "one device per trial (trials run in-process); run trials side by side with --workers instead",
    )
    direction = "maximize" if natural_mode(metric) == "max" else "minimize"
    # with a pack: the metric, every member setting's extremes and the other keys' first extremes in one build
    firsts = {p.key: p.extremes()[0] for p in config.space if p.key not in PACKABLE}
    members = packable(config, cli.model) and _check_members_at_once(config, monitor, firsts)
    if not members:
        build_config(config.base, fit_overrides(config, monitor, {}), f"metric {metric} with mode {config.mode}")
    for param in config.space:
        if members and param.key in PACKABLE:
            continue
        for value in param.extremes()[1:] if members else param.extremes():
            build_config(
                config.base, fit_overrides(config, monitor, {param.key: value}), f"space.{param.key}={value!r}"
            )
    if config.cv is not None:
        from trainlab.data.folds import check_folds

        y = cli.datamodule.load_arrays()[1]
        task = cli.datamodule.task
        check_folds(y, task, config.cv["folds"], task != "regression", "cv.folds")
    search = Search(config, metric, direction, cli.trainer.max_epochs, monitor=monitor)
    search.task = cli.datamodule.task
    search.packable = packable(config, cli.model)
    return search


def _check_members_at_once(config: TuneConfig, metric: str, firsts: dict) -> bool:
    """Whether one build with the metric and a population holding every extreme of the member settings
    (lr, dropout, ...) passes: each config build costs about half a second. False: check one by one (which
    names the bad value as the space gives it)."""
    from trainlab.lightning_cli import build_config

    extremes = [{PACKABLE[p.key]: value} for p in config.space if p.key in PACKABLE for value in p.extremes()]
    try:
        population = {"model.init_args.population": extremes or None}
        build_config(config.base, fit_overrides(config, metric, {**firsts, **population}), "")
    except UserError:
        return False
    return True


def packable(config: TuneConfig, model) -> bool:
    """Whether the trials can train as populations (tuning/population.py); else one fit per trial. Not for a
    model other than MLPModule, nor ReduceLROnPlateau (it watches one validation loss)."""
    from trainlab.models import MLPModule

    schedulers = {model.hparams.get("scheduler")}
    schedulers |= {v for p in config.space if p.key == "model.init_args.scheduler" for v in p.choices}
    return type(model) is MLPModule and "plateau" not in schedulers
