"""examples/chapter.ipynb runs top to bottom in a real kernel (few epochs and trials, set by environment)."""

import os

import nbformat
import pytest
from nbclient import NotebookClient

from tests.helpers import REPO


@pytest.mark.slow
def test_the_chapter_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINLAB_NOTEBOOK_EPOCHS", "4")
    monkeypatch.setenv("TRAINLAB_NOTEBOOK_TRIALS", "3")
    notebook = nbformat.read(REPO / "examples" / "chapter.ipynb", as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")  # none committed
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    text = "\n".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )
    for expected in ("test/accuracy", "lr 0.1", "+/-", "complete", "verdict:"):
        assert expected in text
    assert (tmp_path / "lightning_logs" / "seed").is_dir() and os.listdir(tmp_path / "lightning_logs" / "tune")
