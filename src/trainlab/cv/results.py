"""A cross-validation's results: the folds' metrics aggregated (mean, standard deviation, out-of-fold metrics
per repeat) and the files they go to, cv_results.json, oof_predictions.csv and report.html."""

import csv
import io
from pathlib import Path

import numpy as np
import torch

from trainlab import tasks
from trainlab.cv.run import CVPlan
from trainlab.io import write_json_atomic, write_text_atomic


def summarise(values: list[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (numpy's, ddof=1; 0 for one value) of the folds that define the
    metric (None: a fold's held-out part cannot, one class only, say); None when no fold does."""
    array = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if not len(array):
        return None, None
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def oof_metrics(plan: CVPlan, rows: list[dict]) -> dict[str, float]:
    """The task's metrics on one repeat's out-of-fold predictions, all folds pooled (torchmetrics, as in test)."""
    scores = torch.from_numpy(np.concatenate([r["predictions"]["scores"] for r in rows]))
    target = torch.from_numpy(np.concatenate([r["predictions"]["target"] for r in rows]))
    metrics = tasks.make_metrics(plan.task, plan.num_classes)
    metrics.update(scores, target.long() if plan.task != "regression" else target)
    return {f"oof/{name}": float(value) for name, value in metrics.compute().items()}


def predictions_table(plan: CVPlan, results: list[dict]) -> str:
    """oof_predictions.csv: dataset_index, repeat, fold, the scores, prediction, target; by repeat then index."""
    columns = ["dataset_index", "repeat", "fold"]
    if plan.task == "binary":
        columns.append("probability")
    elif plan.task == "multiclass":
        columns += [f"probability_{name}" for name in plan.class_labels]
    columns += ["prediction", "target"]
    lines = []
    for result in results:
        p = result["predictions"]
        scores = p["scores"].reshape(len(p["target"]), -1) if plan.task != "multiclass" else p["scores"]
        for i, dataset_index in enumerate(p["dataset_index"]):
            lines.append(
                [int(dataset_index), result["repeat"], result["fold"], *scores[i].tolist()]
                + (
                    [p["prediction_label"][i], p["target_label"][i]]
                    if "target_label" in p
                    else [p["prediction"][i].item(), p["target"][i].item()]
                )
            )
    if plan.task == "regression":  # scores are the predictions themselves: one column is enough
        lines = [line[:3] + line[4:] for line in lines]
    lines.sort(key=lambda line: (line[1], line[0]))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(lines)
    return buffer.getvalue()


def aggregate(plan: CVPlan, results: list[dict]) -> dict:
    """cv_results.json's content: per fold, mean and standard deviation, out-of-fold metrics per repeat."""
    keys = sorted({key for r in results for key in r["metrics"]})
    summary = {key: summarise([r["metrics"][key] for r in results]) for key in keys}
    return {
        "config": str(plan.base),
        "folds": plan.folds,
        "repeats": plan.repeats,
        "seed": plan.seed,
        "stratified": plan.stratify,
        "per_fold": [
            {k: r[k] for k in ("repeat", "fold", "run_dir", "metrics", "chosen", "inner_best") if k in r}
            for r in results
        ],
        "mean": {key: value[0] for key, value in summary.items()},
        "std": {key: value[1] for key, value in summary.items()},
        "oof": [
            {"repeat": repeat, "metrics": oof_metrics(plan, [r for r in results if r["repeat"] == repeat])}
            for repeat in range(plan.repeats)
        ],
    }


def write_results(plan: CVPlan, results: list[dict]) -> dict:
    summary = aggregate(plan, results)
    write_json_atomic(plan.cv_dir / "cv_results.json", summary)
    write_text_atomic(plan.cv_dir / "oof_predictions.csv", predictions_table(plan, results))
    return summary


def write_report(plan: CVPlan, summary: dict, results: list[dict]) -> Path:
    """report.html: the fold table, mean and standard deviation, out-of-fold metrics, learning curves."""
    from trainlab.reporting import figures
    from trainlab.reporting.report import png_bytes, read_curves, write_cv_report

    labels = [plan.run_name(r["repeat"], r["fold"]) for r in results]
    curves = [r.get("curves") or read_curves(Path(r["run_dir"])) for r in results]  # packed folds bring theirs
    # the per-epoch held-out split: the inner validation split, or the held-out fold without one
    headline = tasks.epoch_keys(plan.task, tasks.held_out_of(curves[0] if curves else ()))[2]
    overlay = figures.compare_curves(labels, curves, headline)
    title = f"Cross-validation of {plan.base.name}"
    return write_cv_report(plan.cv_dir / "report.html", title, summary, {"learning_curves": png_bytes(overlay)})
