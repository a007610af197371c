"""What a run leaves in its directory (trainlab.callbacks.outputs): metrics.json with null for an undefined
metric."""

import numpy as np

from tests.helpers import LEAN, read_json, run_cli, run_dirs


def test_a_class_absent_from_the_test_split_gives_null_metrics_and_a_report(capsys):
    """Class "c" only in the training rows (the same split scikit-learn's train_test_split makes): test/auroc is
    undefined, recorded as null with one warning; the report still comes, with no ROC curve."""
    import yaml
    from sklearn.model_selection import train_test_split

    rng = np.random.default_rng(0)
    n = 120
    x = rng.normal(size=(n, 2))
    labels = np.where(x[:, 0] > 0, "a", "b").astype(object)
    rest, _test = train_test_split(np.arange(n), test_size=0.25, random_state=7)
    train, _val = train_test_split(rest, test_size=0.2 / 0.75, random_state=7)
    labels[train[:6]] = "c"
    with open("rare.csv", "w") as f:
        f.write("x1,x2,label\n" + "".join(f"{a},{b},{y}\n" for (a, b), y in zip(x, labels, strict=True)))
    data = {
        "path": "rare.csv",
        "target": "label",
        "stratify": False,
        "seed": 7,
        "val_fraction": 0.2,
        "test_fraction": 0.25,
    }
    cfg = {
        "trainer": {"max_epochs": 3},
        "model": {"class_path": "trainlab.models.MLPModule", "init_args": {"hidden_dims": [8]}},
        "data": {"class_path": "trainlab.data.FileDataModule", "init_args": data},
    }
    with open("rare.yaml", "w") as f:
        yaml.safe_dump(cfg, f)
    assert run_cli("fit", "-c", "rare.yaml", *LEAN) == 0
    (run,) = run_dirs("trainlab")
    metrics = read_json(run / "metrics.json")
    assert metrics["test/auroc"] is None and isinstance(metrics["test/accuracy"], float)
    assert "test/auroc is undefined on this test split: class 2 is absent from the split" in capsys.readouterr().err
    assert "undefined" in (run / "report.html").read_text()
    plots = {p.stem for p in (run / "plots").glob("*.png")}
    assert "confusion_matrix" in plots and "roc" not in plots
