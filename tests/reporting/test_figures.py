"""The figures show what predictions.csv says."""

import csv

import numpy as np
from sklearn import metrics as skm

from tests.helpers import LEAN, config, read_json, run_cli, run_dirs
from trainlab.reporting import figures


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {key: np.array([float(row[key]) for row in rows]) for key in rows[0]}


def test_figures_show_what_predictions_csv_says():
    assert run_cli("fit", "-c", config("default"), "--trainer.max_epochs", "4", *LEAN) == 0
    (run,) = run_dirs("default")
    (best,) = (run / "checkpoints").glob("best-*.ckpt")
    assert run_cli("predict", "-c", config("default"), "--ckpt_path", best, *LEAN) == 0
    predictions = read_csv(run / "predict" / "version_0" / "predictions.csv")
    y, p, predicted = predictions["target"], predictions["probability"], predictions["prediction"]
    # the confusion matrix figure annotates sklearn's counts
    matrix = skm.confusion_matrix(y, predicted)
    counts_ax = figures.confusion(y, predicted, 2).axes[0]
    assert sorted(int(t.get_text()) for t in counts_ax.texts) == sorted(matrix.ravel().tolist())
    # the ROC legend's AUC is the test/auroc the fit's test logged (the fit tested its best checkpoint)
    legend = figures.roc_curves(y, p).axes[0].get_legend().get_texts()[0].get_text()
    assert legend == f"AUC = {read_json(run / 'metrics.json')['test/auroc']:.4f}"
