"""`trainlab tune -c TUNE_CONFIG`: search hyperparameters with Optuna, every trial a `trainlab fit`.

Re-running the same command resumes the study: finished trials are kept, a trial whose process died is
retried. The same command on several machines with one --storage URL shares the study between them."""

from trainlab.errors import CommandParser, UserError
from trainlab.tuning.config import early_problem, load_tune_config


def tune_main(argv: list[str]) -> int:
    parser = CommandParser(prog="trainlab tune", description=__doc__)
    parser.add_argument("-c", "--config", required=True, help="a tune config (see configs/tune/)")
    parser.add_argument("--workers", type=int, help="processes on this machine sharing the study")
    parser.add_argument("--population", type=int, help="trials asked at once; same-shape ones train as one fit")
    parser.add_argument("--storage", help="an Optuna storage URL shared by machines (postgresql://...)")
    parser.add_argument("--n_trials", type=int, help="the study's total number of finished trials")
    parser.add_argument("--timeout", type=float, help="seconds after which this command starts no new trial")
    args = parser.parse_args(argv)
    config = load_tune_config(
        args.config,
        workers=args.workers,
        population=args.population,
        storage=args.storage,
        n_trials=args.n_trials,
        timeout=args.timeout,
    )
    problem = early_problem(config)  # answered before Lightning's import; tuning.checks checks it all again
    if problem is not None:
        raise UserError(problem)
    from trainlab.tuning.results import format_table, printed_columns
    from trainlab.tuning.search import run_search

    result = run_search(config, on_start=print_start, on_trial=print_trial)
    print(format_table(result.leaderboard, printed_columns(result.leaderboard, result.search)))
    if result.best_config is not None:
        print(f"best: trial {result.best_trial}, {result.metric} = {result.best_value:.6g}; {result.best_config}")
    print(f"leaderboard: {config.study_dir / 'leaderboard.csv'}; plots: {config.study_dir / 'plots'}")
    print(f"compare the trials: tensorboard --logdir {config.study_dir / 'trials'}")
    return 0


def print_start(study, search) -> None:
    config = search.config
    kept = sum(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials)
    target = search.target if search.target is not None else "no limit"
    print(
        f"study {config.name}: {config.sampler} search on {search.metric} ({search.direction}), "
        f"{kept} finished trials kept, target {target}, {config.workers} worker(s); {config.study_dir}",
        flush=True,
    )


def print_trial(study, trial) -> None:
    """One line per finished trial (an Optuna callback: it runs in the worker)."""
    if trial.state.name == "COMPLETE":
        outcome = f"{trial.value:.6g}"
    else:
        outcome = trial.user_attrs.get("stopped") or f"after {trial.user_attrs.get('epochs', '?')} epochs"
    params = ", ".join(
        f"{k.split('.')[-1]}={v:.4g}" if isinstance(v, float) else f"{k.split('.')[-1]}={v}"
        for k, v in trial.params.items()
    )
    print(f"trial {trial.number} {trial.state.name.lower()}: {outcome} ({params})", flush=True)
