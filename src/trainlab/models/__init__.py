"""The models, loaded on first use: `trainlab.models.mlp` and `packed` need torch only, not Lightning."""

MODULES = {"MLP": "trainlab.models.mlp", "MLPModule": "trainlab.models.module"}
__all__ = sorted(MODULES)


def __getattr__(name: str):
    if name in MODULES:
        import importlib

        return getattr(importlib.import_module(MODULES[name]), name)
    raise AttributeError(f"module 'trainlab.models' has no attribute {name!r}")
