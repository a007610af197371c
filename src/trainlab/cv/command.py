"""`trainlab cv -c CONFIG --folds K`: K-fold cross-validation of a fit config, one fit per fold.

Stratified for classification. Each fold's held-out part is its test split; early stopping and the
best checkpoint use a validation split carved from the training folds (data.init_args.val_fraction
of them). Any config key can be overridden as in `trainlab fit` (--model.init_args.lr 0.01).
Writes, under lightning_logs/cv/<name>/version_N/: folds/<fold>/ (each fold's run directory),
cv_results.json, oof_predictions.csv and report.html."""

import argparse
from pathlib import Path

from trainlab.errors import UserError


def cv_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="trainlab cv", description=__doc__)
    parser.add_argument("-c", "--config", required=True, type=Path, help="a fit config")
    parser.add_argument("--folds", type=int, default=5, help="K, the number of folds (default 5)")
    parser.add_argument("--repeats", type=int, default=1, help="repeat with new shuffles (seed, seed + 1, ...)")
    parser.add_argument("--seed", type=int, default=0, help="the shuffle's seed (default 0)")
    parser.add_argument("--stratify", default="auto", help="auto (classification: yes), true or false")
    parser.add_argument("--workers", type=int, default=1, help="folds run side by side in N processes")
    parser.add_argument("--name", help="the directory name under lightning_logs/cv (default: the config's)")
    parser.add_argument("--tune", type=Path, help="nested CV: tune with this tune config inside each outer fold")
    args, rest = parser.parse_known_args(argv)
    overrides = parse_overrides(rest)
    if not args.config.is_file():
        raise UserError(f"-c={str(args.config)!r} is not allowed: a fit config file (YAML)")
    if args.workers < 1:
        raise UserError(f"--workers={args.workers} is not allowed: an integer >= 1")
    if args.tune is not None:
        from trainlab.tuning.config import load_tune_config

        load_tune_config(args.tune)  # its mistakes are named before anything runs

    from trainlab.cv.run import plan_cv, run_folds, write_report, write_results
    from trainlab.tuning.search import quiet_lightning

    quiet_lightning()
    plan = plan_cv(args.config, overrides, args.folds, args.repeats, args.seed, args.stratify, name=args.name)
    kind = "stratified " if plan.stratify else ""
    print(f"cv: {plan.folds} {kind}folds x {plan.repeats} repeat(s) of {args.config}; {plan.cv_dir}", flush=True)
    if args.tune is None:
        results = run_folds(plan, args.workers, on_fold=print_fold)
    else:
        from trainlab.cv.nested import run_nested

        workers = args.workers if args.workers > 1 else None  # else the tune config's own
        results = run_nested(plan, args.tune, workers, on_fold=print_fold)
    summary = write_results(plan, results)
    keys = sorted(summary["mean"])
    for key in keys:
        print(f"{key:>16}: {summary['mean'][key]:.4f} +/- {summary['std'][key]:.4f}")
    for oof in summary["oof"]:
        pooled = ", ".join(f"{k.split('/')[1]} {v:.4f}" for k, v in sorted(oof["metrics"].items()))
        print(f"out-of-fold (repeat {oof['repeat']}): {pooled}")
    print(f"results: {plan.cv_dir / 'cv_results.json'}; report: {write_report(plan, summary, results)}")
    return 0


def print_fold(result: dict) -> None:
    metrics = ", ".join(f"{k.split('/')[1]} {v:.4f}" for k, v in sorted(result["metrics"].items()))
    chosen = f" (chosen: {result['chosen']})" if "chosen" in result else ""
    print(f"repeat {result['repeat']} fold {result['fold']}: {metrics}{chosen}", flush=True)


def parse_overrides(rest: list[str]) -> dict:
    """`--dotted.key value` (or `--dotted.key=value`) pairs after the cv options."""
    overrides, i = {}, 0
    while i < len(rest):
        token = rest[i]
        if not token.startswith("--") or "." not in token:
            raise UserError(f"{token!r} is not allowed: cv options, or config overrides as --dotted.key value")
        if "=" in token:
            key, value = token[2:].split("=", 1)
            i += 1
        elif i + 1 < len(rest):
            key, value = token[2:], rest[i + 1]
            i += 2
        else:
            raise UserError(f"{token} has no value: config overrides are --dotted.key value")
        overrides[key] = value
    return overrides
