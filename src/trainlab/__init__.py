"""trainlab: train, evaluate, tune and diagnose neural networks with Lightning.

Kept import-free so that `trainlab --help` and `--version` answer at once.
"""

__version__ = "0.1.0"
