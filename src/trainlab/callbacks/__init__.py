from trainlab.callbacks.outputs import EpochSummary, MetricsWriter, PredictionsWriter, SaveOnInterrupt
from trainlab.callbacks.progress import EpochProgressBar

__all__ = ["EpochProgressBar", "EpochSummary", "MetricsWriter", "PredictionsWriter", "SaveOnInterrupt"]
