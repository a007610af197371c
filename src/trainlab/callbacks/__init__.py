from trainlab.callbacks.outputs import EpochSummary, LastCheckpoint, MetricsWriter, PredictionsWriter, SaveOnInterrupt
from trainlab.callbacks.progress import EpochProgressBar

__all__ = [
    "EpochProgressBar",
    "EpochSummary",
    "LastCheckpoint",
    "MetricsWriter",
    "PredictionsWriter",
    "SaveOnInterrupt",
]
