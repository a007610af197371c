"""The package as installed: the configs it ships."""

from pathlib import Path

from tests.helpers import REPO


def test_the_shipped_configs_are_the_packages_own():
    """configs/ links to the package's copy, so an installed trainlab (not editable) has them too."""
    import trainlab

    shipped = sorted(p.relative_to(trainlab.CONFIGS) for p in trainlab.CONFIGS.rglob("*.yaml"))
    assert Path("seed.yaml") in shipped and Path("tune/lr_challenge.yaml") in shipped
    assert (REPO / "configs").resolve() == trainlab.CONFIGS.resolve()
