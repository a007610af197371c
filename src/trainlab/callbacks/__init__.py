from trainlab.callbacks.checkpointing import BestCheckpoint, LastCheckpoint, SaveOnInterrupt
from trainlab.callbacks.console import EarlyStopNotice, EpochSummary
from trainlab.callbacks.outputs import DiscardOnBadInput, MetricsWriter, PredictionsWriter
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
