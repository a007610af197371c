"""trainlab: train, evaluate, tune and diagnose neural networks with Lightning.

`trainlab.fit`, `validate`, `test`, `predict`, `tune`, `cross_validate` and `report` (see trainlab.api)
load on first use, so that importing trainlab, `trainlab --help` and `--version` stay instant.
"""

from pathlib import Path

__version__ = "0.1.0"
CONFIGS = Path(__file__).parent / "configs"  # the shipped configs (seed.yaml, default.yaml, tune/, ...)
API = ("fit", "validate", "test", "predict", "tune", "cross_validate", "report", "RunResult")


def __getattr__(name: str):
    if name in API:
        from trainlab import api

        return getattr(api, name)
    raise AttributeError(f"module 'trainlab' has no attribute {name!r}")
