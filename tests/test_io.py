import os
import stat

import pytest

from trainlab.io import UMASK, write_json_atomic, write_text_atomic


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


def test_written_files_get_the_usual_permissions(tmp_path):
    path = write_text_atomic(tmp_path / "predictions.csv", "index\n0\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~UMASK
