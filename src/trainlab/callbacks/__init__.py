from trainlab.callbacks.outputs import (
    DiscardOnBadInput,
    EarlyStopNotice,
    EpochSummary,
    LastCheckpoint,
    MetricsWriter,
    PredictionsWriter,
    SaveOnInterrupt,
)
from trainlab.callbacks.progress import EpochProgressBar

__all__ = [
    "DiscardOnBadInput",
    "EarlyStopNotice",
    "EpochProgressBar",
    "EpochSummary",
    "LastCheckpoint",
    "MetricsWriter",
    "PredictionsWriter",
    "SaveOnInterrupt",
]
