"""Files that cannot be written (a file where a folder should be, a full disk): one line naming the path,
exit 4, and what earlier runs wrote stays whole."""

import re
from pathlib import Path

from tests.helpers import QUIET, config, exit_code, in_fork, redirect_output, run_cli, snapshot


def test_an_unwritable_log_folder_is_one_line(capsys):
    Path("lightning_logs").write_text("a file where the runs' folder should be")
    assert run_cli("fit", "-c", config("seed"), "--trainer.max_epochs", "1", *QUIET) == 4
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("trainlab: error: cannot write") and "lightning_logs/seed" in err
    assert "a part of the path is a file" in err
    assert Path("lightning_logs").read_text() == "a file where the runs' folder should be"


def test_a_full_disk_is_one_line_and_leaves_earlier_files_whole():
    import os

    assert (
        run_cli("fit", "-c", config("seed"), "--trainer.max_epochs", "3", "--trainer.enable_progress_bar", "false") == 0
    )
    run_dir = next(Path("lightning_logs").glob("seed/version_*"))
    before = snapshot(run_dir)
    assert (run_dir / "report.html").exists() and any((run_dir / "plots").iterdir())

    # A fork runs both commands with files that may not grow past 4 KB, so that writes fail as on a full disk;
    # its stderr comes through a pipe (a file would be held to 4 KB too).
    read, write = os.pipe()
    process = in_fork(_on_a_full_disk, str(run_dir), config("seed"), write)
    os.close(write)
    with open(read) as pipe:
        stderr = pipe.read()
    assert exit_code(process) == 0, stderr[-3000:]
    pieces = re.split(r"\n@@ (\w+) exit (\S+)\n", stderr)  # [report's stderr, "report", code, fit's ...]
    texts, commands, codes = pieces[0:-1:3], pieces[1::3], pieces[2::3]
    assert commands == ["report", "fit"] and codes == ["4", "4"], stderr[-3000:]
    for text in texts:
        assert text.strip().splitlines()[-1].startswith("trainlab: error: cannot write"), stderr[-3000:]
    assert "Traceback" not in stderr
    assert snapshot(run_dir) == before  # the report rebuilt in place failed: the old files are whole
    assert not list(run_dir.rglob("*.tmp"))


def _on_a_full_disk(run_dir: str, config_file: str, stderr: int) -> None:
    """Report run_dir again, then fit: each command's exit code and last line of stderr follow a marker."""
    import os
    import resource
    import signal
    import sys

    redirect_output(os.devnull, stderr)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    sys.dont_write_bytecode = True  # a module first imported here would leave a .pyc the limit cut short
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
    for args in (["report", run_dir], ["fit", "-c", config_file, "--trainer.max_epochs", "2"]):
        code = run_cli(*args)
        print(f"\n@@ {args[0]} exit {code}", file=sys.stderr, flush=True)
    sys.exit(0)
