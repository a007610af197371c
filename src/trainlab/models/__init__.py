from trainlab.models.mlp import MLP
from trainlab.models.module import MLPModule

__all__ = ["MLP", "MLPModule"]
