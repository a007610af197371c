from trainlab.callbacks.outputs import (
    EarlyStopNotice,
    EpochSummary,
    LastCheckpoint,
    MetricsWriter,
    PredictionsWriter,
    SaveOnInterrupt,
)
from trainlab.callbacks.progress import EpochProgressBar

__all__ = [
    "EarlyStopNotice",
    "EpochProgressBar",
    "EpochSummary",
    "LastCheckpoint",
    "MetricsWriter",
    "PredictionsWriter",
    "SaveOnInterrupt",
]
