"""Third-party Trainer callbacks (the `lightning.pytorch.callbacks_factory` entry points), looked up once per
process instead of once per Trainer.

Lightning scans every installed package's metadata for these factories each time a Trainer is built: 5 ms of
the 6 ms a Trainer costs here, a tenth of a small scikit-learn fit and more than a tuning trial's epoch. trainlab
looks the factories up once and still calls them for every Trainer, so each Trainer gets callbacks of its own,
as with Lightning. This replaces one private Lightning function (`_load_external_callbacks`, as the callback
connector imports it); where a Lightning release no longer has it, nothing is replaced and Lightning's own
lookup runs. tests/test_callback_factories.py fails loudly then, and checks that both give the same callbacks.
"""

import functools
import logging
from importlib.metadata import entry_points

from lightning.pytorch.trainer.connectors import callback_connector

log = logging.getLogger("lightning.pytorch.trainer.connectors.callback_connector")


@functools.cache
def factories(group: str) -> tuple:
    """The factory functions registered under the entry-point `group`, loaded once."""
    return tuple((point.name, point.load()) for point in entry_points(group=group))


def load_external_callbacks(group: str) -> list:
    """What Lightning's `_load_external_callbacks` returns: every factory's callbacks, made anew."""
    callbacks = []
    for name, factory in factories(group):
        made = factory()
        made = made if isinstance(made, list) else [made]
        if made:
            kinds = ", ".join(type(callback).__name__ for callback in made)
            log.info(f"Adding {len(made)} callbacks from entry point '{name}': {kinds}")
        callbacks.extend(made)
    return callbacks


def install() -> bool:
    """Make every Trainer built from now on use load_external_callbacks; False where Lightning changed."""
    if not hasattr(callback_connector, "_load_external_callbacks"):
        return False
    callback_connector._load_external_callbacks = load_external_callbacks
    return True
