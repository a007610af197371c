"""Shared fixtures: every test runs in its own temporary directory, so runs land in tmp lightning_logs/."""

import json
from pathlib import Path

# Lightning's log handler keeps the stderr of the moment it is imported: import it here, not first inside a
# test whose captured stderr is closed when the test ends.
import lightning.pytorch  # noqa: F401
import pytest

from trainlab.cli import main

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false", "--run.report", "false"]


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_cli(*args: str) -> int:
    """Run `trainlab ARGS` in this process; return its exit code (0 when it returns normally)."""
    try:
        main([str(a) for a in args])
    except SystemExit as stop:
        return stop.code or 0
    return 0


def config(name: str) -> str:
    return str(CONFIGS / f"{name}.yaml")


def run_dirs(name: str) -> list[Path]:
    return sorted(Path("lightning_logs", name).glob("version_*"), key=lambda p: int(p.name.split("_")[1]))


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())
