"""Run a study: check its config, create or resume it, run its trials (in this process or in worker
processes), write its results. The CLI (tuning/command.py) and trainlab.tune() share it."""

import time
from dataclasses import dataclass, field
from pathlib import Path

from trainlab.data.table import shared_reads
from trainlab.run import quiet_lightning
from trainlab.tuning.config import TuneConfig


@dataclass
class TuneResult:
    """What a study found: its best trial (number, value, config values, best_config.yaml) and leaderboard."""

    study_dir: Path
    metric: str
    best_trial: int | None
    best_value: float | None
    best_params: dict | None  # dotted config key -> value
    best_config: Path | None
    leaderboard: list[dict]
    search: object = field(repr=False)


@shared_reads()  # a file is read once, not once per check, trial and pack
def run_search(config: TuneConfig, on_start=None, on_trial=None) -> TuneResult:
    """Check the config, create or resume the study, run its trials, write its results."""
    from trainlab.errors import Stopped, WorkersLost
    from trainlab.tuning.checks import check_search
    from trainlab.tuning.results import write_results
    from trainlab.tuning.storage import open_storage
    from trainlab.tuning.study import open_study, prepare_study

    quiet_trials()
    search = check_search(config)
    study = prepare_study(search, open_storage(config))
    if on_start is not None:
        on_start(study, search)
    if config.timeout is not None:
        search.deadline = time.time() + config.timeout  # the search's budget: checks and setup are not in it
    try:
        run_workers(search, on_trial)
    except (WorkersLost, Stopped):  # what finished is written; the lost trials are retried by the next run
        write_results(open_study(search, open_storage(config)), search)
        raise
    study = open_study(search, open_storage(config))  # as the workers left it
    written = write_results(study, search)
    best = written.get("best")
    return TuneResult(
        study_dir=config.study_dir,
        metric=search.metric,
        best_trial=best.number if best else None,
        best_value=best.value if best else None,
        best_params={p.key: p.decode(best.params[p.key]) for p in config.space} if best else None,
        best_config=written.get("best_config"),
        leaderboard=written["rows"],
        search=search,
    )


def quiet_trials() -> None:
    """Trials are many: keep Lightning's per-Trainer notices and Optuna's per-trial log out of the way; the
    command prints one line per trial."""
    import optuna

    quiet_lightning()
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def run_workers(search, on_trial=None) -> None:
    """The study's trials in this process, or in --workers long-lived processes (see trainlab.workers)."""
    from trainlab import workers
    from trainlab.tuning.objective import work

    count = search.config.workers
    if count == 1:
        work(search, 0, on_trial)
        return
    workers.run_all(count, work, [(search, index, on_trial) for index in range(count)])
