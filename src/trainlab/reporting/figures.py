"""The figures of a run, as matplotlib Figures (Agg, no display, no pyplot state). Each takes plain arrays."""

import numpy as np
from matplotlib.figure import Figure
from sklearn import metrics as skm

from trainlab.tasks import held_out_of


def _figure(width: float = 5.0, height: float = 4.0, fitted: bool = False):
    """A figure with one axes. Its margins are fixed (rendering took half the time of matplotlib's
    constrained layout, which measures every text first) unless `fitted`: figures whose ticks show the
    user's own labels or values, whose widths cannot be known in advance."""
    fig = Figure(figsize=(width, height), layout="constrained" if fitted else None)
    if not fitted:
        fig.subplots_adjust(left=0.15, right=0.96, bottom=0.12, top=0.92)
    return fig, fig.subplots()


def _pair(width: float, height: float):
    """A figure with two axes side by side, fixed margins (numbers on their ticks, epochs below)."""
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=0.085, right=0.98, bottom=0.13, top=0.91, wspace=0.22)  # room for 6-digit losses
    return fig, fig.subplots(1, 2)


def data_scatter(X: np.ndarray, y: np.ndarray, task: str, labels: list | None = None) -> Figure:
    """The training split coloured by class (one colour per class, named by `labels`, the data's own class
    labels; default 0, 1, ...) or by target value: the first two features, or a 2-D PCA projection."""
    fig, ax = _figure(fitted=task == "regression")  # the colour bar shows the user's target values
    if X.shape[1] > 2:
        from sklearn.decomposition import PCA

        points, axes = PCA(n_components=2, random_state=0).fit_transform(X), ("PC 1", "PC 2")
    else:
        points = X if X.shape[1] == 2 else np.column_stack([X[:, 0], np.zeros(len(X))])
        axes = ("feature 1 (scaled)", "feature 2 (scaled)")
    if task == "regression":
        scatter = ax.scatter(points[:, 0], points[:, 1], c=y, cmap="viridis", s=12, alpha=0.7)
        fig.colorbar(scatter, ax=ax, label="target")
    else:
        classes = y.astype(int)
        names = class_names(labels, int(classes.max()) + 1)
        for k in np.unique(classes):
            rows = classes == k
            ax.scatter(points[rows, 0], points[rows, 1], color=f"C{k % 10}", s=12, alpha=0.7, label=str(names[k]))
        ax.legend(title="class", loc="best", fontsize="small")
    ax.set(title="Training data", xlabel=axes[0], ylabel=axes[1])
    ax.grid(True, alpha=0.3)
    return fig


def class_names(labels: list | None, num_classes: int) -> list:
    """The classes' names: the data's own labels (a file's text classes), else 0 .. num_classes - 1."""
    return list(labels) if labels is not None and len(labels) >= num_classes else list(range(num_classes))


def learning_curves(curves: dict[str, tuple[list[int], list[float]]], metric: str, best_epoch: int | None) -> Figure:
    """Loss curves (left) and a held-out metric (right) per epoch; the best epoch marked."""
    fig, (loss_ax, metric_ax) = _pair(9, 3.8)
    for key in ("train/loss", f"{held_out_of(curves)}/loss"):
        if key in curves:
            loss_ax.plot(*curves[key], label=key)
    loss_ax.set(title="Loss", xlabel="epoch")
    if metric in curves:
        metric_ax.plot(*curves[metric], label=metric, color="tab:green")
    metric_ax.set(title=metric, xlabel="epoch")
    for ax in (loss_ax, metric_ax):
        if best_epoch is not None:
            ax.axvline(best_epoch, color="grey", linestyle="--", label=f"best epoch {best_epoch}")
        ax.grid(True, alpha=0.3)
        ax.legend()
    return fig


def roc_curves(y: np.ndarray, scores: np.ndarray, labels: list | None = None) -> Figure:
    """ROC curve with its AUC (binary), or one-vs-rest curves per class with the macro AUC (multiclass);
    classes named by `labels` (default 0, 1, ...)."""
    fig, ax = _figure()
    if scores.ndim == 1:
        fpr, tpr, _ = skm.roc_curve(y, scores)
        ax.plot(fpr, tpr, label=f"AUC = {skm.roc_auc_score(y, scores):.4f}")
    else:
        names = class_names(labels, scores.shape[1])
        for k in range(scores.shape[1]):
            fpr, tpr, _ = skm.roc_curve(y == k, scores[:, k])
            ax.plot(fpr, tpr, label=f"{names[k]} vs rest, AUC = {skm.roc_auc_score(y == k, scores[:, k]):.4f}")
        ax.set_title(f"macro AUC = {skm.roc_auc_score(y, scores, multi_class='ovr', average='macro'):.4f}")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set(xlabel="false positive rate", ylabel="true positive rate")
    if scores.ndim == 1:
        ax.set_title(f"ROC curve (positive class: {class_names(labels, 2)[1]})")
    ax.legend(loc="lower right")
    return fig


def precision_recall(y: np.ndarray, scores: np.ndarray) -> Figure:
    fig, ax = _figure()
    precision, recall, _ = skm.precision_recall_curve(y, scores)
    ax.plot(recall, precision, label=f"AP = {skm.average_precision_score(y, scores):.4f}")
    ax.set(title="Precision-recall curve", xlabel="recall", ylabel="precision", ylim=(0, 1.02))
    ax.legend(loc="lower left")
    return fig


def confusion(y: np.ndarray, predicted: np.ndarray, num_classes: int, labels: list | None = None) -> Figure:
    """Counts (left) and row-normalised rates (right), each cell annotated; classes named by `labels`."""
    names = [str(name) for name in class_names(labels, num_classes)]
    counts = skm.confusion_matrix(y, predicted, labels=list(range(num_classes)))
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig = Figure(figsize=(9, 4), layout="constrained")
    for ax, matrix, title, fmt in zip(
        fig.subplots(1, 2), (counts, rates), ("counts", "row-normalised"), ("{:d}", "{:.2f}"), strict=True
    ):
        ax.imshow(matrix, cmap="Blues")
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(
                j,
                i,
                fmt.format(value),
                ha="center",
                va="center",
                color="white" if value > matrix.max() / 2 else "black",
            )
        ax.set(
            title=f"Confusion matrix ({title})",
            xlabel="predicted",
            ylabel="actual",
            xticks=range(num_classes),
            yticks=range(num_classes),
            xticklabels=names,
            yticklabels=names,
        )
    return fig


def calibration(y: np.ndarray, scores: np.ndarray) -> Figure:
    from sklearn.calibration import calibration_curve

    fig, ax = _figure()
    observed, predicted = calibration_curve(y, scores, n_bins=10, strategy="quantile")
    ax.plot(predicted, observed, marker="o", label="model")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
    ax.set(title="Calibration", xlabel="mean predicted probability", ylabel="fraction of positives")
    ax.legend()
    return fig


def predicted_vs_actual(y: np.ndarray, predicted: np.ndarray) -> Figure:
    fig, ax = _figure(fitted=True)
    ax.scatter(y, predicted, s=10, alpha=0.6)
    low, high = float(min(y.min(), predicted.min())), float(max(y.max(), predicted.max()))
    ax.plot([low, high], [low, high], color="grey", linestyle=":", label="identity")
    ax.set(
        title=f"Predicted against actual (R2 = {skm.r2_score(y, predicted):.4f})", xlabel="actual", ylabel="predicted"
    )
    ax.legend()
    return fig


def residuals(y: np.ndarray, predicted: np.ndarray) -> Figure:
    fig, ax = _figure(fitted=True)
    ax.hist(predicted - y, bins=40)
    ax.set(title="Residuals (predicted - actual)", xlabel="residual", ylabel="samples")
    return fig


def compare_curves(labels: list[str], curves: list[dict], metric: str) -> Figure:
    """Several runs' losses (train dashed, held-out solid) and a held-out metric, overlaid."""
    held_out = metric.split("/")[0]  # the metric is a held-out one: val/..., or test/... (no validation split)
    fig, (loss_ax, metric_ax) = _pair(10, 4)
    colours = [f"C{i % 10}" for i in range(len(labels))]
    for label, run, colour in zip(labels, curves, colours, strict=True):
        if "train/loss" in run:
            loss_ax.plot(*run["train/loss"], color=colour, linestyle="--", alpha=0.7)
        if f"{held_out}/loss" in run:
            loss_ax.plot(*run[f"{held_out}/loss"], color=colour, label=label)
        if metric in run:
            metric_ax.plot(*run[metric], color=colour, label=label)
    loss_ax.set(title=f"Loss ({held_out} solid, train dashed)", xlabel="epoch")
    metric_ax.set(title=metric, xlabel="epoch")
    for ax in (loss_ax, metric_ax):
        ax.grid(True, alpha=0.3)
        if ax.lines and len(labels) <= 12:  # beyond that a legend hides the curves
            ax.legend(fontsize="small")
    return fig
