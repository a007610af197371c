"""Files that cannot be written (a file where a folder should be, a full disk): one line naming the path,
exit 4, and what earlier runs wrote stays whole."""

import re
from pathlib import Path

import pytest

from tests.helpers import QUIET, config, run_cli, snapshot


def test_an_unwritable_log_folder_is_one_line(capsys):
    Path("lightning_logs").write_text("a file where the runs' folder should be")
    assert run_cli("fit", "-c", config("seed"), "--trainer.max_epochs", "1", *QUIET) == 4
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("trainlab: error: cannot write") and "lightning_logs/seed" in err
    assert "a part of the path is a file" in err
    assert Path("lightning_logs").read_text() == "a file where the runs' folder should be"


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_leaves_earlier_files_whole():
    import os
    import subprocess
    import sys

    from tests.helpers import REPO

    assert (
        run_cli("fit", "-c", config("seed"), "--trainer.max_epochs", "3", "--trainer.enable_progress_bar", "false") == 0
    )
    run_dir = next(Path("lightning_logs").glob("seed/version_*"))
    before = snapshot(run_dir)
    assert (run_dir / "report.html").exists() and any((run_dir / "plots").iterdir())

    # One process runs both commands (one Python start instead of two); files may not grow past 4 KB, so
    # writes fail as on a full disk. Each command's exit code and last line of stderr follow a marker.
    script = (
        "import resource, signal, sys\n"
        "from trainlab.cli import main\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "for args in (['report', sys.argv[1]], ['fit', '-c', sys.argv[2], '--trainer.max_epochs', '2']):\n"
        "    try:\n"
        "        main(args)\n"
        "        code = 0\n"
        "    except SystemExit as stop:\n"
        "        code = stop.code\n"
        "    print(f'\\n@@ {args[0]} exit {code}', file=sys.stderr, flush=True)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(
        [sys.executable, "-c", script, str(run_dir), config("seed")], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    pieces = re.split(r"\n@@ (\w+) exit (\S+)\n", done.stderr)  # [report's stderr, "report", code, fit's ...]
    texts, commands, codes = pieces[0:-1:3], pieces[1::3], pieces[2::3]
    assert commands == ["report", "fit"] and codes == ["4", "4"], done.stderr[-3000:]
    for text in texts:
        assert text.strip().splitlines()[-1].startswith("trainlab: error: cannot write"), done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert snapshot(run_dir) == before  # the report rebuilt in place failed: the old files are whole
    assert not list(run_dir.rglob("*.tmp"))
