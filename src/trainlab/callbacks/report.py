"""After `test` (and a fit that tests): plots/*.png, the same figures in TensorBoard, the test metrics with
the hyperparameters in TensorBoard's HParams view, and report.html."""

import re
import struct
from pathlib import Path

import lightning.pytorch as pl
import torch

from trainlab import tasks
from trainlab.callbacks.outputs import defined_test_metrics, run_dir
from trainlab.callbacks.scoring import TestScores
from trainlab.io import read_json_if_exists, write_json_atomic


class ReportWriter(pl.Callback):
    def on_test_end(self, trainer, pl_module):
        folder = run_dir(trainer)  # every rank: log_dir is a collective under DDP
        if not trainer.is_global_zero or trainer.datamodule is None:
            return
        from trainlab.reporting import figures as fig
        from trainlab.reporting.report import save_plots, write_report

        data, task = trainer.datamodule, pl_module.task
        scored = TestScores.of(trainer).scored(trainer, pl_module)
        member_scores, scores, predicted, y = scored.member_scores, scored.scores, scored.predicted, scored.y
        metrics = defined_test_metrics(trainer, pl_module, warn=False)

        X_train, y_train = data.splits["train"]
        labels = data.labels(range(data.num_classes)) if task != "regression" else None  # the data's own names
        figures = {"data": fig.data_scatter(X_train.cpu().numpy(), y_train.cpu().numpy(), task, labels)}
        curves = learning_curves(trainer, folder)
        monitor = getattr(trainer.checkpoint_callback, "monitor", None) or f"{pl_module.held_out}/loss"
        metric = monitor if not monitor.endswith("loss") else tasks.epoch_keys(task, pl_module.held_out)[2]
        best = best_epoch(trainer)
        if curves:
            figures["learning_curves"] = fig.learning_curves(curves, metric, best)
        if task == "regression":
            figures["predicted_vs_actual"] = fig.predicted_vs_actual(y, predicted)
            figures["residuals"] = fig.residuals(y, predicted)
        elif "test/auroc" in metrics and metrics["test/auroc"] is None:  # a class is absent: no ROC curve exists
            figures["confusion_matrix"] = fig.confusion(y, predicted, data.num_classes, labels)
        else:
            figures["roc"] = fig.roc_curves(y, scores, labels)
            if task == "binary":
                figures["precision_recall"] = fig.precision_recall(y, scores)
                figures["calibration"] = fig.calibration(y, scores)
            figures["confusion_matrix"] = fig.confusion(y, predicted, data.num_classes, labels)
        images = save_plots(figures, folder / "plots")
        if trainer.logger is not None:
            log_to_tensorboard(trainer, pl_module, images, metrics)
        summary = [
            ("run directory", str(folder)),
            ("checkpoint tested", str(trainer.ckpt_path or "in memory")),
            ("best epoch", str(best) if best else "-"),
            ("task", task),
        ]
        if pl_module.members > 1:
            summary.append(("ensemble", members_spread(task, data.num_classes, member_scores, torch.from_numpy(y))))
        for split in ("train", "val", "test"):
            labels = data.splits[split][1]
            balance = (
                ""
                if task == "regression" or not len(labels)
                else ", classes "
                + " / ".join(str(int(c)) for c in torch.bincount(labels.long().cpu(), minlength=data.num_classes))
            )
            summary.append((f"{split} samples", f"{len(labels)}{balance}"))
        write_json_atomic(folder / "report.json", {"summary": summary})  # what `trainlab report` cannot re-derive
        diagnosis = read_json_if_exists(folder / "diagnosis.json")
        config = folder / "config.yaml"
        write_report(
            folder,
            f"trainlab run: {folder}",
            metrics,
            summary,
            images,
            diagnosis,
            config.read_text() if config.exists() else "",
        )


def members_spread(task: str, num_classes: int | None, member_scores: torch.Tensor, y: torch.Tensor) -> str:
    """The ensemble's members one by one on the test split: their headline metric's min, mean and max."""
    name = tasks.HEADLINE[task]
    target = y.long() if task != "regression" else y
    values = []
    for scores in member_scores:
        metric = tasks.make_metrics(task, num_classes, names=[name])[name].to(scores.device)
        values.append(float(metric(scores, target)))
    low, high, mean = min(values), max(values), sum(values) / len(values)
    return f"{len(values)} members; each alone: test {name} min {low:.4f}, mean {mean:.4f}, max {high:.4f}"


def learning_curves(trainer, folder: Path) -> dict[str, tuple[list[int], list[float]]]:
    """This run's per-epoch scalars so far (the logger flushed first)."""
    if trainer.logger is None:
        return {}
    trainer.logger.experiment.flush()
    from trainlab.reporting.report import read_curves

    return read_curves(folder)


def best_epoch(trainer) -> int | None:
    """The 1-based epoch of the best checkpoint, from its file name (best-epochNNN.ckpt)."""
    path = getattr(trainer.checkpoint_callback, "best_model_path", "") or ""
    found = re.search(r"best-epoch(\d+)", Path(path).name)
    return int(found.group(1)) if found else None


PNG_COLOURS = {0: 1, 2: 3, 4: 2, 6: 4}  # a PNG's colour type -> TensorBoard's colorspace (grey, RGB, grey+A, RGBA)


def png_summary(tag: str, png: bytes):
    """A TensorBoard image summary holding `png` as it is (add_image would take pixels and encode them again)."""
    from tensorboard.compat.proto.summary_pb2 import Summary

    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk, right after the 8-byte signature
    colours = PNG_COLOURS.get(png[25], 4)  # (3, a palette: the viewer decodes it to colours anyway)
    image = Summary.Image(height=height, width=width, colorspace=colours, encoded_image_string=png)
    return Summary(value=[Summary.Value(tag=tag, image=image)])


def log_to_tensorboard(trainer, pl_module, images: dict[str, bytes], metrics: dict) -> None:
    writer = trainer.logger.experiment
    for name, data in images.items():
        writer.file_writer.add_summary(png_summary(f"plots/{name}", data), trainer.global_step)
    # Named as tuning trials name theirs (config keys; metrics under hparams/), so that TensorBoard's HParams
    # view over lightning_logs compares fits and trials column by column; hparams/ keeps these values, logged
    # at step 0, off the per-epoch curves.
    params = {
        f"{pl_module.key}.{k}": (str(v) if isinstance(v, list | tuple) or v is None else v)
        for k, v in pl_module.hparams.items()
        if not k.startswith("_")
    }
    hparam_metrics = {f"hparams/{k}": v for k, v in metrics.items() if v is not None}
    trainer.logger.log_hyperparams(params, metrics=hparam_metrics)
    writer.flush()
