"""A real `tensorboard` server over a run: its HTTP API lists the run's scalars, figures and hparams."""

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import config, run_cli

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def test_tensorboard_serves_scalars_figures_and_hparams():
    assert (
        run_cli("fit", "-c", config("seed"), "--trainer.max_epochs", "3", "--trainer.enable_progress_bar", "false") == 0
    )
    port = free_port()
    tensorboard = Path(sys.executable).with_name("tensorboard")
    server = subprocess.Popen(
        [
            tensorboard,
            "--logdir",
            "lightning_logs",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--reload_interval",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                scalars = get(f"{base}/data/plugin/scalars/tags")
                if scalars:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "tensorboard did not come up"
            time.sleep(1)
        (run,) = [name for name in scalars if name.startswith("seed/version_0")][:1]
        # seed.yaml has no validation split: its per-epoch held-out numbers are the test split's
        assert {"train/loss", "test/loss", "test/accuracy", "grad_norm/global", "hparams/test/accuracy"} <= set(
            scalars[run]
        )
        images = get(f"{base}/data/plugin/images/tags")
        assert any("plots/roc" in tags for tags in images.values())
        plugins = get(f"{base}/data/plugins_listing")
        assert plugins["hparams"]["enabled"] and plugins["images"]["enabled"]
    finally:
        server.terminate()
        server.wait(timeout=30)
