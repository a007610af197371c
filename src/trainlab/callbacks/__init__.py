from trainlab.callbacks.outputs import EpochSummary, MetricsWriter, PredictionsWriter

__all__ = ["EpochSummary", "MetricsWriter", "PredictionsWriter"]
