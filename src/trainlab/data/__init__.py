"""The data modules, loaded on first use: `trainlab.data.table` (files, encoders) imports no Lightning, so a
fitted estimator's preprocessing works without paying for it."""

MODULES = {
    "TabularDataModule": "trainlab.data.base",
    "FileDataModule": "trainlab.data.files",
    "BundledDataModule": "trainlab.data.files",
    "SyntheticDataModule": "trainlab.data.synthetic",
}
__all__ = sorted(MODULES)


def __getattr__(name: str):
    if name in MODULES:
        import importlib

        return getattr(importlib.import_module(MODULES[name]), name)
    raise AttributeError(f"module 'trainlab.data' has no attribute {name!r}")
