from trainlab.data.base import TabularDataModule
from trainlab.data.synthetic import SyntheticDataModule

__all__ = ["SyntheticDataModule", "TabularDataModule"]
