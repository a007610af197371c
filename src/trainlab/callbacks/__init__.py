from trainlab.callbacks.outputs import (
    BestCheckpoint,
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
    "BestCheckpoint",
    "DiscardOnBadInput",
    "EarlyStopNotice",
    "EpochProgressBar",
    "EpochSummary",
    "LastCheckpoint",
    "MetricsWriter",
    "PredictionsWriter",
    "SaveOnInterrupt",
]
