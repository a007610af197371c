"""The package's import graph runs one way: a module imports only modules of its own layer or below (at any
depth, function-level imports included), so no layer reaches up and no circle can form."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# Lowest first. A module belongs to the longest prefix listed.
LAYERS = [
    [
        "trainlab.errors",
        "trainlab.io",
        "trainlab.tasks",
        "trainlab.diagnosis",
        "trainlab.rules",
        "trainlab.unit_metrics",
    ],
    [
        "trainlab.early_checks",
        "trainlab.data",
        "trainlab.models",
        "trainlab.checkpoints",
        "trainlab.workers",
        "trainlab.threads",
        "trainlab.callback_factories",
    ],
    ["trainlab.callbacks", "trainlab.reporting"],  # (trainlab.reporting.command is a driver, below)
    ["trainlab.parsing", "trainlab.lightning_cli"],  # the config -> data, module, Trainer
    ["trainlab.run", "trainlab.array_fit"],  # the run layer: fit / test / predict -> a result in memory
    ["trainlab.cv", "trainlab.tuning", "trainlab.reporting.command"],  # the drivers
    ["trainlab.api", "trainlab.sklearn", "trainlab.cli", "trainlab.__main__", "trainlab.__init__"],  # the faces
]


def layer(module: str) -> int | None:
    matches = [
        (len(name), i)
        for i, names in enumerate(LAYERS)
        for name in names
        if module == name or module.startswith(name + ".")
    ]
    return max(matches)[1] if matches else None


def imported(path: Path) -> list[tuple[str, int]]:
    """The trainlab modules `path` imports (`from trainlab import tasks` is trainlab.tasks), with line numbers."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "trainlab":
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.append((full if layer(full) is not None else node.module, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "trainlab"]
    return found


def test_every_module_has_a_layer_and_imports_only_downwards():
    upward = []
    for path in sorted((SRC / "trainlab").rglob("*.py")):
        module = ".".join(path.relative_to(SRC).with_suffix("").parts)
        own = layer(module)
        assert own is not None, f"{module} belongs to no layer: add it to LAYERS"
        for target, line in imported(path):
            if target in ("trainlab", "trainlab.__init__"):
                continue  # the package itself only re-exports lazily
            if (layer(target) or 0) > own:
                upward.append(f"{module}:{line} imports {target}")
    assert upward == []


def test_reading_files_and_the_plain_networks_need_no_lightning():
    """A fitted estimator's preprocessing and network run without Lightning's import (seconds here)."""
    import subprocess
    import sys

    code = "import trainlab.data.table, trainlab.models.packed, trainlab.errors, trainlab.diagnosis"
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and "lightning" not in done.stderr
