"""After a test: plots/*.png that decode and show what they claim, the same figures and the hyperparameters
in TensorBoard, and a self-contained report.html; none of it when turned off."""

import io
import re

import PIL.Image
import pytest
from matplotlib.image import imread

from tests.helpers import LEAN, config, read_json, run_cli, run_dirs

EXPECTED = {
    "seed": {"data", "learning_curves", "roc", "precision_recall", "calibration", "confusion_matrix"},
    "multiclass": {"data", "learning_curves", "roc", "confusion_matrix"},
    "regression": {"data", "learning_curves", "predicted_vs_actual", "residuals"},
}


@pytest.mark.parametrize("name", EXPECTED)
def test_a_fit_that_tests_leaves_figures_and_a_self_contained_report(name):
    assert run_cli("fit", "-c", config(name), "--trainer.max_epochs", "4", *LEAN) == 0
    (run,) = run_dirs(name)
    plots = {p.stem: p for p in (run / "plots").glob("*.png")}
    assert set(plots) == EXPECTED[name]
    for path in plots.values():
        image = imread(path)
        assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 300  # a real picture
    page = (run / "report.html").read_text()
    assert len(re.findall(r'<img alt="[a-z_]+" src="data:image/png;base64,', page)) == len(plots)
    assert "http://" not in page and "https://" not in page  # nothing fetched: it opens offline
    for key, value in read_json(run / "metrics.json").items():
        assert f"<th>{key}</th><td>{value:.4f}</td>" in page
    assert f"Diagnosis: <b>{read_json(run / 'diagnosis.json')['verdict']}</b>" in page
    assert "model:" in page and "class_path: trainlab.models.MLPModule" in page  # the config


def test_tensorboard_has_the_figures_and_the_hparams():
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert run_cli("fit", "-c", config("seed"), "--trainer.max_epochs", "3", *LEAN) == 0
    (run,) = run_dirs("seed")
    events = EventAccumulator(str(run), size_guidance={"images": 0}).Reload()
    assert {f"plots/{name}" for name in EXPECTED["seed"]} <= set(events.Tags()["images"])
    for name in EXPECTED["seed"]:  # each figure as plots/ holds it, with its size
        (image,) = events.Images(f"plots/{name}")
        png = (run / "plots" / f"{name}.png").read_bytes()
        assert image.encoded_image_string == png
        assert (image.width, image.height) == PIL.Image.open(io.BytesIO(png)).size
    hparams = events.PluginTagToContent("hparams")
    assert hparams  # the HParams view's session data, with the test metrics as its metrics
    # named as tuning trials name theirs: config keys, metrics under hparams/ (off the per-epoch curves)
    assert any(b"hparams/test/accuracy" in content for content in hparams.values())
    assert any(b"model.init_args.lr" in content for content in hparams.values())
    assert events.Scalars("hparams/test/accuracy")[0].value == pytest.approx(
        read_json(run / "metrics.json")["test/accuracy"]
    )


def test_no_report_when_turned_off():
    assert run_cli("fit", "-c", config("seed"), "--trainer.max_epochs", "2", "--run.report", "false", *LEAN) == 0
    (run,) = run_dirs("seed")
    assert not (run / "report.html").exists() and not (run / "plots").exists()
