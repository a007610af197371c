"""A fit chooses its CPU threads (trainlab.threads: one for a small model's step) and gives them back."""

import lightning.pytorch as pl
import pytest
import torch

import trainlab
from tests.helpers import config

SHORT = {"trainer.max_epochs": 3, "trainer.enable_progress_bar": False, "run.report": False}


class ThreadsProbe(pl.Callback):
    def on_train_epoch_start(self, trainer, pl_module):
        self.threads = torch.get_num_threads()


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({}, 1),  # the seed model's step is small: one thread
        ({"run.threads": 2}, 2),  # asked for
        ({"model.init_args.hidden_dims": [512, 512], "data.init_args.batch_size": 256}, "before"),  # large: torch's
    ],
)
def test_a_fit_chooses_its_cpu_threads_and_gives_them_back(overrides, expected):
    before = torch.get_num_threads()
    probe = ThreadsProbe()
    trainlab.fit(config("seed"), callbacks=[probe], **{**SHORT, "trainer.max_epochs": 1, **overrides})
    assert probe.threads == (before if expected == "before" else expected)
    assert torch.get_num_threads() == before
