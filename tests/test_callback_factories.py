"""Third-party Trainer callbacks are looked up once per process (trainlab.callback_factories), as Lightning
would find them, and made anew for each Trainer."""

import sys

import lightning.pytorch as pl
import pytest
from lightning.fabric.utilities.registry import _load_external_callbacks

from trainlab import callback_factories

GROUP = "lightning.pytorch.callbacks_factory"


@pytest.fixture
def a_plugin(tmp_path, monkeypatch):
    """An installed package (a dist-info on sys.path) whose entry point gives a callback, Marker."""
    (tmp_path / "trainlab_test_plugin.py").write_text(
        "import lightning.pytorch as pl\n\n"
        "class Marker(pl.Callback):\n    pass\n\n"
        "def factory():\n    return Marker()\n"
    )
    info = tmp_path / "trainlab_test_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: trainlab-test-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{GROUP}]\nmarker = trainlab_test_plugin:factory\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    callback_factories.factories.cache_clear()
    yield tmp_path
    callback_factories.factories.cache_clear()
    sys.modules.pop("trainlab_test_plugin", None)


def names(callbacks) -> list[str]:
    return [type(c).__name__ for c in callbacks]


def test_trainlab_replaces_the_lookup_lightning_runs_for_each_trainer():
    from lightning.pytorch.trainer.connectors import callback_connector

    assert callback_factories.install(), (
        "Lightning's callback connector no longer has _load_external_callbacks: trainlab.callback_factories "
        "replaces nothing, and every Trainer scans the installed packages again (see that module)"
    )
    assert callback_connector._load_external_callbacks is callback_factories.load_external_callbacks


def test_each_trainer_gets_the_callbacks_lightning_would_give_it_made_anew(a_plugin):
    assert "Marker" in names(callback_factories.load_external_callbacks(GROUP))
    assert names(callback_factories.load_external_callbacks(GROUP)) == names(_load_external_callbacks(GROUP))
    callback_factories.install()
    options = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False}
    first = [c for c in pl.Trainer(**options).callbacks if type(c).__name__ == "Marker"]
    sys.path.remove(str(a_plugin))  # Lightning's own lookup would no longer find the plugin; the one made once does
    assert "Marker" not in names(_load_external_callbacks(GROUP))
    second = [c for c in pl.Trainer(**options).callbacks if type(c).__name__ == "Marker"]
    assert len(first) == len(second) == 1 and first[0] is not second[0]
