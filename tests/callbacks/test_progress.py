"""The progress bar: one bar per fit that counts epochs, summary lines printed above it, and its line ended
before a failed fit's message."""

from tests.helpers import config, run_cli


def test_progress_bar_counts_epochs_and_summary_lines_print_above_it(capsys):
    args = ["--trainer.max_epochs", "4", "--run.summary_every", "2", "--trainer.enable_model_summary", "false"]
    assert run_cli("fit", "-c", config("seed"), *args, "--run.report", "false") == 0
    out = capsys.readouterr().out
    assert "Training: 100%" in out and "4/4" in out and "epoch" in out
    assert "Epoch [2/4], train/loss" in out and "Epoch [4/4], train/loss" in out
    assert "Testing" in out  # the test after the fit has a bar over batches


def test_a_failed_fit_ends_the_progress_bar_line_before_its_message(capsys):
    args = ["--model.init_args.optimizer", "sgd", "--model.init_args.lr", "1e30", "--trainer.max_epochs", "3"]
    assert run_cli("fit", "-c", config("regression"), *args, "--trainer.enable_progress_bar", "true") == 3
    captured = capsys.readouterr()
    assert "Training" in captured.out and captured.out.endswith("\n")  # the bar's line is ended
    assert captured.err.strip().splitlines()[-1].startswith("trainlab: training failed: the training loss became")
