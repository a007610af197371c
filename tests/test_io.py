"""Atomic writes: a kill at any moment leaves the old file or the new one; files follow the umask; JSON is
strict."""

import json
import os
import stat

import pytest

from trainlab.io import write_json_atomic, write_text_atomic


def test_an_interrupted_write_leaves_the_old_file_and_no_debris(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    write_json_atomic(target, {"test/accuracy": 0.9})
    before = target.read_text()

    def crash(*args):
        raise KeyboardInterrupt  # a kill between writing the new file and putting it in place

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        write_json_atomic(target, {"test/accuracy": 0.1})
    assert target.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_written_files_follow_the_umask(tmp_path):
    previous = os.umask(0o027)
    try:
        path = write_text_atomic(tmp_path / "predictions.csv", "index\n0\n")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_json_is_strict_even_for_non_finite_numbers(tmp_path):
    path = write_json_atomic(tmp_path / "diagnosis.json", {"loss": float("inf"), "history": [1.0, float("nan")]})
    assert json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-standard JSON: {c}")) == {
        "loss": "inf",
        "history": [1.0, "nan"],
    }
