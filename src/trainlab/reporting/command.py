"""`trainlab report RUN_DIR [RUN_DIR ...]`: rebuild report.html from run directories, never retraining;
with several runs, also a comparison page (the chapter's learning-rate mini-challenge in one view)."""

import json
import sys
from pathlib import Path

import yaml

from trainlab.errors import CommandParser

FIGURE_ORDER = [
    "data",
    "learning_curves",
    "roc",
    "precision_recall",
    "calibration",
    "confusion_matrix",
    "predicted_vs_actual",
    "residuals",
]


class NotAReport(Exception):
    """A run directory that cannot be reported; the message says why."""


def load_run(folder: Path) -> dict:
    if not folder.is_dir() or not ((folder / "config.yaml").exists() or (folder / "hparams.yaml").exists()):
        raise NotAReport("not a run directory (it has no config.yaml or hparams.yaml)")
    if not (folder / "metrics.json").exists():
        raise NotAReport(
            "no test metrics yet (metrics.json): run `trainlab test -c CONFIG --ckpt_path FILE`, "
            "or a fit with run.test_after_fit true"
        )
    from trainlab.reporting.report import read_curves

    try:
        metrics = json.loads((folder / "metrics.json").read_text())
        curves = read_curves(folder)
    except Exception as error:  # a damaged file of any kind: say which run and why, report the others
        raise NotAReport(f"unreadable ({type(error).__name__}: {str(error).splitlines()[0][:150]})") from None
    if not curves:
        _warn(
            f"{folder}: no readable per-epoch scalars in its TensorBoard events; "
            "the report leaves the learning curves out"
        )
    if not isinstance(metrics, dict):
        raise NotAReport(f"metrics.json holds {type(metrics).__name__}, not a mapping of metric names to values")
    config_text = (folder / "config.yaml").read_text() if (folder / "config.yaml").exists() else ""
    return {
        "folder": folder,
        "metrics": metrics,
        "curves": curves,
        "config_text": config_text,
        "config": _optional(folder / "config.yaml", yaml.safe_load, dict, "the config comparison") or {},
        "diagnosis": _optional(folder / "diagnosis.json", json.loads, dict, "the diagnosis"),
    }


def _optional(path: Path, parse, kind: type, part: str):
    """A file the report can do without: its content when it parses to a `kind`, else None with a warning
    (a damaged diagnosis.json must not cost the user the rest of the report)."""
    if not path.exists():
        return None
    try:
        content = parse(path.read_text())
        if content is None or isinstance(content, kind):
            return content
        problem = f"it holds {type(content).__name__}, not a mapping"
    except Exception as error:  # any damage: say what and go on
        problem = f"{type(error).__name__}: {str(error).splitlines()[0][:120] if str(error) else ''}"
    _warn(f"{path}: unreadable ({problem}); the report leaves {part} out")
    return None


def _warn(message: str) -> None:
    import warnings

    from trainlab.errors import TrainlabWarning

    warnings.warn(message, TrainlabWarning, stacklevel=2)


def flatten(tree, prefix: str = "") -> dict:
    if isinstance(tree, dict):
        out = {}
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


def differing(configs: list[dict]) -> dict[str, list]:
    """The config keys whose values differ between runs (the logger's version aside)."""
    flat = [flatten(c) for c in configs]
    keys = sorted({k for f in flat for k in f})
    return {
        k: [f.get(k, "-") for f in flat]
        for k in keys
        if len({json.dumps(f.get(k), sort_keys=True, default=str) for f in flat}) > 1
    }


def headline(run: dict) -> str:
    """The per-epoch metric a run's curves show beside the losses: the held-out accuracy or r2, else its loss."""
    from trainlab.tasks import held_out_of

    keys = run["curves"].keys()
    held_out = held_out_of(keys)
    return next((k for k in (f"{held_out}/accuracy", f"{held_out}/r2") if k in keys), f"{held_out}/loss")


def rebuild(run: dict) -> Path:
    from trainlab.reporting import figures
    from trainlab.reporting.report import png_bytes, write_report

    folder = run["folder"]
    plots = sorted(
        (folder / "plots").glob("*.png"),
        key=lambda p: (FIGURE_ORDER.index(p.stem) if p.stem in FIGURE_ORDER else len(FIGURE_ORDER), p.stem),
    )
    images = {p.stem: p.read_bytes() for p in plots}
    if "learning_curves" not in images and run["curves"]:
        images["learning_curves"] = png_bytes(figures.learning_curves(run["curves"], headline(run), None))
    saved = _optional(folder / "report.json", json.loads, dict, "the data summary")  # what the test wrote
    rows = (saved or {}).get("summary")
    if isinstance(rows, list) and all(isinstance(row, list) and len(row) == 2 for row in rows):
        summary = [tuple(row) for row in rows]
    else:
        best = sorted((folder / "checkpoints").glob("best-epoch*.ckpt"))
        summary = [("run directory", str(folder)), ("best checkpoint", best[-1].name if best else "-")]
    return write_report(
        folder, f"trainlab run: {folder}", run["metrics"], summary, images, run["diagnosis"], run["config_text"]
    )


def report_main(argv: list[str]) -> int:
    parser = CommandParser(prog="trainlab report", description=__doc__)
    parser.add_argument("runs", nargs="+", type=Path, help="run directories (lightning_logs/<name>/version_N)")
    parser.add_argument(
        "--out",
        type=Path,
        help="where the comparison of several runs goes: a file, or a folder for comparison.html in it "
        "(default: comparison.html)",
    )
    args = parser.parse_args(argv)
    if args.out is not None and len(args.runs) == 1:
        parser.error(f"--out {args.out}: a comparison needs two or more runs; one run's page is its report.html")
    runs, failed = [], 0
    for folder in args.runs:
        try:
            runs.append(load_run(folder))
        except NotAReport as problem:
            print(f"trainlab: error: {folder}: {problem}", file=sys.stderr)
            failed += 1
    pages = write_pages(runs, args.out or Path("comparison.html"))
    for index, page in enumerate(pages):
        print(f"{'comparison' if index == len(runs) else 'report'}: {page}")  # the comparison comes last
    return 2 if failed else 0


def build_reports(folders: list[Path], out: Path) -> list[Path]:
    """The pages of these run directories (and their comparison when several); a bad one raises a UserError."""
    from trainlab.errors import UserError

    runs = []
    for folder in folders:
        try:
            runs.append(load_run(folder))
        except NotAReport as problem:
            raise UserError(f"{folder}: {problem}") from None
    return write_pages(runs, out)


def comparison_path(out: Path) -> Path:
    """Where the comparison page goes: `out`, or comparison.html in it when it is a folder."""
    return out / "comparison.html" if out.is_dir() else out


def write_pages(runs: list[dict], out: Path) -> list[Path]:
    """Each run's report.html, then, for several runs, the comparison page at `out` (a file, or a folder)."""
    out = comparison_path(out)
    pages = [rebuild(run) for run in runs]
    if len(runs) > 1:
        from trainlab.reporting import figures
        from trainlab.reporting.report import png_bytes, write_comparison

        diffs = differing([run["config"] for run in runs])
        diffs.pop("trainer.logger.init_args.version", None)
        labels = run_labels(diffs, [run["folder"] for run in runs])
        overlay = figures.compare_curves(labels, [run["curves"] for run in runs], headline(runs[0]))
        pages.append(write_comparison(out, runs, labels, diffs, {"learning_curves": png_bytes(overlay)}))
    return pages


def run_labels(differences: dict[str, list], folders: list[Path]) -> list[str]:
    """Each run named by what sets it apart (`lr=0.1, dropout=0.2`); its directory when nothing does or two
    runs would share a name."""
    keys = [k for k in differences if not k.endswith(("ckpt_path", "weights_only"))]
    labels = [", ".join(f"{key.split('.')[-1]}={differences[key][i]}" for key in keys) for i in range(len(folders))]
    if not all(labels) or len(set(labels)) < len(labels):
        return [str(folder) for folder in folders]
    return labels
