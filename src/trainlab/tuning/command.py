"""`trainlab tune -c TUNE_CONFIG`: search hyperparameters with Optuna, every trial a `trainlab fit`.

Re-running the same command resumes the study: finished trials are kept, a trial whose process died is
retried. The same command on several machines with one --storage URL shares the study between them."""

import argparse
import logging
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor

from trainlab.tuning.config import load_tune_config


def tune_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="trainlab tune", description=__doc__)
    parser.add_argument("-c", "--config", required=True, help="a tune config (see configs/tune/)")
    parser.add_argument("--workers", type=int, help="processes on this machine sharing the study")
    parser.add_argument("--storage", help="an Optuna storage URL shared by machines (postgresql://...)")
    parser.add_argument("--n_trials", type=int, help="the study's total number of finished trials")
    parser.add_argument("--timeout", type=float, help="seconds after which this command starts no new trial")
    args = parser.parse_args(argv)
    config = load_tune_config(
        args.config, workers=args.workers, storage=args.storage, n_trials=args.n_trials, timeout=args.timeout
    )

    os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")
    from trainlab.tuning.checks import check_search
    from trainlab.tuning.results import format_table, printed_columns, write_results
    from trainlab.tuning.study import open_storage, prepare_study

    quiet_lightning()
    search = check_search(config)
    study = prepare_study(search, open_storage(config))
    kept = sum(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials)
    target = search.target if search.target is not None else "no limit"
    print(
        f"study {config.name}: {config.sampler} search on {search.metric} ({search.direction}), "
        f"{kept} finished trials kept, target {target}, {config.workers} worker(s); {config.study_dir}"
    )
    if config.timeout is not None:
        search.deadline = time.time() + config.timeout  # the search's budget: checks and setup are not in it
    run_workers(search)

    study = prepare_study(search, open_storage(config))
    written = write_results(study, search)
    rows = written["rows"]
    print(format_table(rows, printed_columns(rows, search)))
    if "best" in written:
        best = written["best"]
        print(f"best: trial {best.number}, {search.metric} = {best.value:.6g}; {written['best_config']}")
    print(f"leaderboard: {written['leaderboard']}; plots: {config.study_dir / 'plots'}")
    return 0


def quiet_lightning() -> None:
    """Trials are many: keep Lightning's per-Trainer notices (devices, seed) and Optuna's per-trial log out
    of the way; the command prints one line per trial."""
    import optuna

    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def run_workers(search) -> None:
    """The study's trials in this process, or in --workers long-lived processes sharing the CPU's threads."""
    from trainlab.tuning.study import work

    workers = search.config.workers
    if workers == 1:
        work(search, 0, print_trial)
        return
    search.threads = max(1, (os.cpu_count() or 1) // workers)
    # fork: the workers start with Lightning already imported (a spawned one would spend seconds importing).
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method)) as pool:
        futures = [pool.submit(work, search, index, print_trial) for index in range(workers)]
        for future in futures:
            future.result()  # a worker's error (a UserError too) is raised here


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
