from trainlab.data.base import TabularDataModule
from trainlab.data.files import BundledDataModule, FileDataModule
from trainlab.data.synthetic import SyntheticDataModule

__all__ = ["BundledDataModule", "FileDataModule", "SyntheticDataModule", "TabularDataModule"]
