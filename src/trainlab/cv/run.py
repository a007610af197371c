"""K-fold cross-validation: the plan, then one `trainlab fit` per fold, on the same code path (results.py puts
the folds' results side by side).

Each fold's run is the config with `data.init_args.folds` set: the held-out fold is its test split, the
scaler is fitted on its training folds only, and early stopping and checkpoints watch a validation split
carved from the training folds. The fold's tested model predicts the held-out fold: those are the
out-of-fold predictions. Each fold's weights are seeded afresh (the config's seed plus the fold number).
"""

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from lightning.pytorch.callbacks import Callback

from trainlab.data.table import shared_reads
from trainlab.errors import UserError
from trainlab.io import remove_if_only_setup
from trainlab.run import QUIET, quiet_lightning


@dataclass
class CVPlan:
    """What every fold needs (picklable: folds may run in worker processes)."""

    base: Path
    overrides: dict
    folds: int
    repeats: int
    seed: int
    stratify: bool
    task: str
    num_classes: int | None
    init_seed: int
    cv_dir: Path
    outer: list = field(default_factory=list)  # enclosing folds (nested CV)
    packs: list | None = None  # the (repeat, fold) jobs of each pack, when the folds train packed
    class_labels: list = field(default_factory=list)  # the data's own class labels (classification)

    def jobs(self) -> list[tuple[int, int]]:
        return [(repeat, index) for repeat in range(self.repeats) for index in range(self.folds)]

    def run_name(self, repeat: int, index: int) -> str:
        return f"fold_{index}" if self.repeats == 1 else f"repeat_{repeat}_fold_{index}"

    def fold_overrides(self, repeat: int, index: int) -> dict:
        fold = {"k": self.folds, "index": index, "seed": self.seed + repeat, "stratify": self.stratify}
        return {
            **QUIET,
            **self.overrides,
            "run.test_after_fit": True,  # the held-out fold is the fold run's test split: it must be tested
            "data.init_args.folds": [*self.outer, fold],
            "seed_everything": self.init_seed + 1000 * repeat + index,
            "trainer.logger.init_args.save_dir": str(self.cv_dir),
            "trainer.logger.init_args.name": "folds",
            "trainer.logger.init_args.version": self.run_name(repeat, index),
        }


class HeldOutPredictions(Callback):
    """After the fold's test, the tested model's outputs on the held-out fold (its test split)."""

    def on_test_end(self, trainer, pl_module) -> None:
        from trainlab.callbacks.scoring import TestScores

        data = trainer.datamodule
        scored = TestScores.of(trainer).scored(trainer, pl_module)  # the scores metrics.json was computed from
        prediction, y = scored.predicted, scored.y
        self.rows = {
            "dataset_index": data.split_indices["test"],
            "scores": scored.scores,
            "prediction": prediction,
            "target": y,
        }
        if pl_module.task != "regression":  # the data's own labels (a file's text classes), for the table
            self.rows["prediction_label"] = data.labels(prediction.astype(int).tolist())
            self.rows["target_label"] = data.labels(y.astype(int).tolist())


def run_fold(plan: CVPlan, repeat: int, index: int, extra: dict | None = None) -> dict:
    """Fit one fold (with `extra` overrides on top: nested CV's chosen values) and test it on its held-out part."""
    from trainlab.run import run

    held_out = HeldOutPredictions()
    from trainlab.workers import device_overrides

    overrides = {**plan.fold_overrides(repeat, index), **device_overrides(), **(extra or {})}
    result = run("fit", plan.base, overrides=overrides, callbacks=[held_out])
    return {
        "repeat": repeat,
        "fold": index,
        "run_dir": str(result.run_dir),
        "metrics": {k: v for k, v in result.metrics.items() if k.startswith("test/")},
        "predictions": held_out.rows,
    }


def run_folds(plan: CVPlan, workers: int = 1, on_fold=None, pack: bool = True) -> list[dict]:
    """Every (repeat, fold) of the plan, in this process or in `workers` processes; results in plan order.

    Packed (the default): the folds train as packs, one fit each (see cv/packed.py), one pack per worker;
    else one fit per fold."""
    jobs = plan.jobs()
    if pack:
        from trainlab.cv.packed import plan_packs, run_pack

        packs = plan.packs or plan_packs(plan, jobs, workers)
        if workers == 1 or len(packs) == 1:
            found = [result for jobs_of_pack in packs for result in run_pack(plan, jobs_of_pack)]
        else:
            from trainlab.workers import run_all

            found = [r for chunk in run_all(workers, run_pack, [(plan, p) for p in packs]) for r in chunk]
        found.sort(key=lambda r: (r["repeat"], r["fold"]))
        for result in found:
            if on_fold:
                on_fold(result)
        return found
    if workers == 1:
        results = []
        for job in jobs:
            results.append(run_fold(plan, *job))
            if on_fold:
                on_fold(results[-1])
        return results
    from trainlab.workers import run_all

    results = run_all(workers, run_fold, [(plan, *job) for job in jobs], on_result=on_fold)
    return results


def next_version(folder: Path) -> Path:
    """folder/version_N with N one past the highest there (Lightning's convention), made now, so that two
    runs started together never share one."""
    while True:
        taken = [int(p.name.split("_")[1]) for p in folder.glob("version_*") if p.name.split("_")[1].isdigit()]
        candidate = folder / f"version_{max(taken, default=-1) + 1}"
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            continue


def plan_cv(
    config: Path,
    overrides: dict,
    folds: int,
    repeats: int = 1,
    seed: int = 0,
    stratify: str = "auto",
    output_dir: Path = Path("lightning_logs/cv"),
    name: str | None = None,
    outer: list | None = None,
    packs: int | None = None,
) -> CVPlan:
    """Check everything before any fold runs: the config with the overrides, and the folds against the data.
    With `packs` (at least that many: one per worker), the folds are cut into packs (see cv/packed.py)."""
    from trainlab.data.folds import Fold, check_folds, fold_split
    from trainlab.lightning_cli import build_config

    if repeats < 1:
        raise UserError(f"--repeats={repeats} is not allowed: an integer >= 1")
    if stratify not in ("auto", "true", "false"):
        raise UserError(f"--stratify={stratify} is not allowed: auto, true or false")
    cli = build_config(config, overrides, f"{config}")
    data = cli.datamodule
    stratified = data.task != "regression" if stratify == "auto" else stratify == "true"
    y = data.load_arrays()[1]
    kept = np.arange(len(y))
    for fold in outer or []:  # nested: these folds cut the outer folds' training part
        kept = fold_split(kept, y, data.task, Fold(**fold), "--folds")[0]
    check_folds(y[kept], data.task, folds, stratified, "--folds")
    # The seed the config asks for: LightningCLI replaces `true` (any seed) by the one it drew, which in a
    # process that already trained is the last run's; folds need seeds of their own, reproducibly.
    seed_everything = overrides.get("seed_everything", yaml.safe_load(config.read_text()).get("seed_everything"))
    if isinstance(seed_everything, str) and seed_everything.lstrip("-").isdigit():
        seed_everything = int(seed_everything)
    plan = CVPlan(
        base=config,
        overrides=overrides,
        folds=folds,
        repeats=repeats,
        seed=seed,
        stratify=stratified,
        task=data.task,
        num_classes=data.num_classes,
        class_labels=data.labels(range(data.num_classes)) if data.task != "regression" else [],
        init_seed=seed_everything if isinstance(seed_everything, int) and not isinstance(seed_everything, bool) else 0,
        cv_dir=next_version(output_dir / (name or config.stem)),
        outer=list(outer or []),
    )
    if packs is not None:
        from trainlab.cv.packed import plan_packs

        try:
            plan.packs = plan_packs(plan, plan.jobs(), packs, cli)
        except UserError:
            remove_if_only_setup(plan.cv_dir)  # claimed above: nothing is left behind by a refused plan
            raise
    return plan


@dataclass
class CVResult:
    """What a cross-validation measured (cv_results.json, as Python objects).

    Attributes:
        cv_dir: lightning_logs/cv/<name>/version_N.
        per_fold: per fold: repeat, fold, run_dir, metrics (test/... on the held-out fold), and in nested CV
            the values chosen ("chosen") and the inner study's best value ("inner_best").
        mean, std: per metric, over all folds (std: ddof=1).
        oof_metrics: per repeat, the metrics of the pooled out-of-fold predictions.
        predictions: oof_predictions.csv as {column: numpy array}.
    """

    cv_dir: Path
    per_fold: list[dict]
    mean: dict[str, float]
    std: dict[str, float]
    oof_metrics: list[dict[str, float]]
    predictions: dict[str, np.ndarray]


@shared_reads()  # a file is read once, not once per fold, pack and check
def cross_validate(
    config: str | Path,
    folds: int = 5,
    repeats: int = 1,
    seed: int = 0,
    stratify: str = "auto",
    workers: int = 1,
    tune: str | Path | None = None,
    name: str | None = None,
    overrides: dict | None = None,
    pack: bool = True,
    on_start=None,
    on_fold=None,
) -> CVResult:
    """K-fold cross-validation of a fit config (nested, with a tune config); see `trainlab cv --help`.
    `pack` trains the folds as one pack (false: one fit per fold, the reference path)."""
    config = Path(config)
    if not config.is_file():
        raise UserError(f"-c={str(config)!r} is not allowed: a fit config file (YAML)")
    if workers < 1:
        raise UserError(f"--workers={workers} is not allowed: an integer >= 1")
    if tune is not None:
        from trainlab.tuning.config import load_tune_config

        load_tune_config(tune)  # its mistakes are named before anything runs
    quiet_lightning()
    packs = workers if pack and tune is None else None
    plan = plan_cv(config, dict(overrides or {}), folds, repeats, seed, stratify, name=name, packs=packs)
    if on_start:
        on_start(plan)
    try:
        if tune is None:
            results = run_folds(plan, workers, on_fold=on_fold, pack=pack)
        else:
            from trainlab.cv.nested import run_nested

            results = run_nested(plan, Path(tune), workers if workers > 1 else None, on_fold=on_fold)
    except UserError:
        remove_if_only_setup(plan.cv_dir)  # bad input found once the folds started: no empty version left
        raise
    from trainlab.cv.results import write_report, write_results

    summary = write_results(plan, results)
    write_report(plan, summary, results)
    with open(plan.cv_dir / "oof_predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    from trainlab.run import column

    return CVResult(
        cv_dir=plan.cv_dir,
        per_fold=summary["per_fold"],
        mean=summary["mean"],
        std=summary["std"],
        oof_metrics=[o["metrics"] for o in summary["oof"]],
        predictions={key: column([row[key] for row in rows]) for key in rows[0]},
    )
