"""The guard against a non-finite training loss (trainlab.models.divergence): the fit stops before the step
that would spoil the weights, with the numbers and the remedy. (A population's diverging unit:
tests/tuning/test_population.py.)"""

import math

import torch

from tests.helpers import QUIET, config, read_json, run_cli, run_dirs


def test_a_huge_learning_rate_stops_at_the_first_non_finite_loss(capsys):
    # SGD at lr 0.02 trains; the step schedule raises it ten-thousandfold after two epochs: the third diverges
    args = ["--model.init_args.optimizer", "sgd", "--model.init_args.lr", "0.02", "--model.init_args.scheduler"]
    args += [
        "step",
        "--model.init_args.step_size",
        "2",
        "--model.init_args.gamma",
        "10000",
        "--trainer.max_epochs",
        "6",
    ]
    args += ["--run.last_checkpoint_every", "0"]  # last.ckpt at every epoch's end
    assert run_cli("fit", "-c", config("regression"), *args, *QUIET) == 3
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("trainlab: training failed: the training loss became")
    assert "the learning rate (200 now, 0.02 configured) is likely too high" in err  # after the step schedule
    (run,) = run_dirs("regression")
    found = read_json(run / "diagnosis.json")
    assert found["verdict"] == "diverged"
    report = found["evidence"]["non_finite"]
    assert report["loss"] in ("inf", "-inf", "nan") and math.isfinite(report["last_finite_loss"])
    # the kept checkpoint is the last good epoch, and its weights are finite
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert report["epoch"] == 3 and checkpoint["epoch"] + 1 == 2  # epochs count from 1 here, from 0 in Lightning
    assert all(torch.isfinite(w).all() for w in checkpoint["state_dict"].values())


def test_the_guard_stops_before_the_step_that_would_spoil_the_weights():
    """The weights after the stop equal those of the same seeded run stopped by max_steps one step
    earlier: the step with the non-finite loss was never taken."""
    import lightning.pytorch as pl

    from trainlab.data import SyntheticDataModule
    from trainlab.errors import TrainingFailed
    from trainlab.models import MLPModule

    def run(max_steps=-1):
        pl.seed_everything(42)
        module = MLPModule(input_dim=10, task="regression", hidden_dims=[64, 64], optimizer="sgd", lr=0.1)
        trainer = pl.Trainer(
            max_epochs=50,
            max_steps=max_steps,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        data = SyntheticDataModule(generator="friedman1", n_samples=2000, n_features=10, noise=1.0, batch_size=64)
        try:
            trainer.fit(module, datamodule=data)
        except TrainingFailed as failure:
            return module, failure.report
        return module, None

    stopped, report = run()
    assert report is not None  # lr 0.1 with plain SGD diverges on this data
    steps_taken = report["step"] - 1
    assert steps_taken > 0
    reference, _ = run(max_steps=steps_taken)
    for a, b in zip(stopped.parameters(), reference.parameters(), strict=True):
        assert torch.isfinite(a).all() and torch.equal(a, b)
