"""What a run prints (trainlab.callbacks.console): the epoch summary lines and the early-stopping notice."""

from tests.helpers import QUIET, config, run_cli


def test_early_stopping_stops_and_the_summary_line_is_printed(capsys):
    args = [
        "--trainer.max_epochs",
        "200",
        "--run.early_stopping.patience",
        "2",
        "--run.summary_every",
        "1",
        "--model.init_args.lr",
        "0.05",
        *QUIET,
    ]
    assert run_cli("fit", "-c", config("default"), *args) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("Epoch [")]
    assert 3 <= len(lines) < 200
    assert lines[0].startswith("Epoch [1/200], train/loss ") and "val/loss" in lines[0] and "val/accuracy" in lines[0]
    (notice,) = [line for line in out.splitlines() if line.startswith("Early stopping")]  # the stop says so
    assert notice.startswith(f"Early stopping at epoch {len(lines)}: val/loss did not improve for 2 epochs; best ")
    assert notice.endswith(f"at epoch {len(lines) - 2}")
