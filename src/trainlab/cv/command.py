"""`trainlab cv -c CONFIG --folds K`: K-fold cross-validation of a fit config, every fold (and repeat)
trained together as one packed fit (--no-pack: one fit per fold).

Stratified for classification. Each fold's held-out part is its test split; early stopping and the
best checkpoint use a validation split carved from the training folds (data.init_args.val_fraction
of them). Any config key can be overridden as in `trainlab fit` (--model.init_args.lr 0.01).
Writes, under lightning_logs/cv/<name>/version_N/: folds/<fold>/ (each fold's run directory),
cv_results.json, oof_predictions.csv and report.html."""

from pathlib import Path

from trainlab.errors import CommandParser, UserError


def cv_main(argv: list[str]) -> int:
    parser = CommandParser(prog="trainlab cv", description=__doc__)
    parser.add_argument("-c", "--config", required=True, type=Path, help="a fit config")
    parser.add_argument("--folds", type=int, default=5, help="K, the number of folds (default 5)")
    parser.add_argument("--repeats", type=int, default=1, help="repeat with new shuffles (seed, seed + 1, ...)")
    parser.add_argument("--seed", type=int, default=0, help="the shuffle's seed (default 0)")
    parser.add_argument("--stratify", default="auto", help="auto (classification: yes), true or false")
    parser.add_argument("--workers", type=int, default=1, help="folds run side by side in N processes")
    parser.add_argument("--name", help="the directory name under lightning_logs/cv (default: the config's)")
    parser.add_argument("--tune", type=Path, help="nested CV: tune with this tune config inside each outer fold")
    parser.add_argument(
        "--no-pack",
        dest="pack",
        action="store_false",
        help="one fit per fold (the reference path); by default the folds train together as one packed fit",
    )
    args, rest = parser.parse_known_args(argv)
    overrides = parse_overrides(rest)
    from trainlab.early_checks import check_early

    problem = check_early(["-c", str(args.config), *rest])  # before Lightning's import: a bad value answers at once
    if problem is not None:
        raise UserError(problem)
    from trainlab.cv.run import cross_validate

    result = cross_validate(
        args.config,
        folds=args.folds,
        repeats=args.repeats,
        seed=args.seed,
        stratify=args.stratify,
        workers=args.workers,
        tune=args.tune,
        name=args.name,
        overrides=overrides,
        pack=args.pack,
        on_start=lambda plan: print(
            f"cv: {plan.folds} {'stratified ' if plan.stratify else ''}folds x {plan.repeats} repeat(s) of "
            f"{args.config}; {plan.cv_dir}",
            flush=True,
        ),
        on_fold=print_fold,
    )
    from trainlab.tasks import metric_text

    for key in sorted(result.mean):
        print(f"{key:>16}: {metric_text(result.mean[key])} +/- {metric_text(result.std[key])}")
    for repeat, metrics in enumerate(result.oof_metrics):
        pooled = ", ".join(f"{k.split('/')[1]} {metric_text(v)}" for k, v in sorted(metrics.items()))
        print(f"out-of-fold (repeat {repeat}): {pooled}")
    print(f"results: {result.cv_dir / 'cv_results.json'}; report: {result.cv_dir / 'report.html'}")
    return 0


def print_fold(result: dict) -> None:
    from trainlab.tasks import metric_text

    metrics = ", ".join(f"{k.split('/')[1]} {metric_text(v)}" for k, v in sorted(result["metrics"].items()))
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
