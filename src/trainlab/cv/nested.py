"""Nested cross-validation: `trainlab cv -c CONFIG --folds K --tune TUNE_CONFIG`.

For each outer fold, a study (the tune config's search, on CONFIG) tunes on the outer training part only:
by the tune config's own cv (inner folds of the outer training part) or by a validation split carved
from it. The chosen values are then trained on the outer training part and tested on the outer fold,
which no trial ever saw. The mean over outer folds is an unbiased estimate of the whole procedure
(tuning included); cv_results.json lists the values chosen in each fold."""

import dataclasses
from pathlib import Path

from trainlab.cv.run import CVPlan, run_fold
from trainlab.errors import UserError


def run_nested(plan: CVPlan, tune_config: Path, workers: int | None = None, on_fold=None) -> list[dict]:
    from trainlab.tuning.config import load_tune_config
    from trainlab.tuning.search import run_search

    results = []
    for repeat, index in plan.jobs():
        fold = {"k": plan.folds, "index": index, "seed": plan.seed + repeat, "stratify": plan.stratify}
        search = load_tune_config(tune_config, workers=workers)
        inner = {**plan.overrides, **search.overrides, "data.init_args.folds": [fold]}
        if not search.cv:
            inner["run.test_after_fit"] = False  # a trial's test split is the outer fold: never look at it
        search = dataclasses.replace(
            search,
            base=plan.base,
            name=plan.run_name(repeat, index),
            output_dir=plan.cv_dir / "tuning",
            overrides=inner,
        )
        tuned = run_search(search)
        if tuned.best_params is None:
            raise UserError(
                f"outer fold {index} (repeat {repeat}): no trial of its study finished (all pruned, failed or "
                f"out of time); see {tuned.study_dir / 'leaderboard.csv'} and widen the search or its budget"
            )
        chosen = {**search.overrides, **tuned.best_params, "run.monitor": tuned.search.monitor}
        for key in ("data.init_args.folds", "run.test_after_fit"):
            chosen.pop(key, None)  # the outer fold's own run sets these
        result = run_fold(plan, repeat, index, extra=chosen)
        result["chosen"] = tuned.best_params
        result["inner_best"] = tuned.best_value
        results.append(result)
        if on_fold:
            on_fold(result)
    return results
