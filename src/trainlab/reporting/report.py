"""report.html: one self-contained page per run (images embedded, nothing fetched), and plots/*.png."""

import base64
import html
import io
import json
from pathlib import Path

from matplotlib.figure import Figure

from trainlab import tasks
from trainlab.io import write_bytes_atomic, write_text_atomic
from trainlab.tasks import metric_text


def read_curves(folder: Path) -> dict[str, tuple[list[int], list[float]]]:
    """Per-epoch train/ and held-out scalars of a run directory's TensorBoard events: {key: (epochs, values)}.
    The held-out ones are val/, or test/ for a run without a validation split (it evaluated the test split
    every epoch); a test after the fit adds no point to them."""
    if not list(folder.glob("events.out.tfevents.*")):
        return {}
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0}).Reload()
    tags = set(events.Tags()["scalars"])
    if "epoch" not in tags:
        return {}
    epoch_at = {e.step: int(e.value) + 1 for e in events.Scalars("epoch")}
    curves = {}
    held_out = f"{tasks.held_out_of(tags)}/"
    # the steps of training epochs: a test after the fit logs test/ values (and an epoch) at a step of its own
    trained = {e.step for e in events.Scalars("train/loss")} if "train/loss" in tags else set(epoch_at)
    for tag in sorted(t for t in tags if t.startswith(("train/", held_out))):
        points: dict[int, float] = {}  # per step its first value (the report's HParams entry logs at step 0 again)
        for e in events.Scalars(tag):
            if e.step in epoch_at and e.step in trained:
                points.setdefault(e.step, e.value)
        curves[tag] = ([epoch_at[step] for step in points], list(points.values()))
    return curves


def png_bytes(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def save_plots(figures: dict[str, Figure], folder: Path) -> dict[str, bytes]:
    """Each figure as plots/<name>.png; returns the PNG bytes by name."""
    folder.mkdir(parents=True, exist_ok=True)
    images = {name: png_bytes(figure) for name, figure in figures.items()}
    for name, data in images.items():
        write_bytes_atomic(folder / f"{name}.png", data)
    return images


def _table(rows: list[tuple[str, str]]) -> str:
    cells = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>{body}</body></html>\n"
    )


def _figures(images: dict[str, bytes]) -> str:
    return (
        '<div class="figures">'
        + "".join(
            f'<figure><img alt="{name}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'
            f"<figcaption>{html.escape(name.replace('_', ' '))}</figcaption></figure>"
            for name, data in images.items()
        )
        + "</div>"
    )


STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:.2em}.verdict{font-size:1.2em;padding:.5em 1em;border-radius:6px;background:#eef5ee}
.verdict.bad{background:#fbeeee}table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ddd;padding:.3em .8em;text-align:left}th{background:#f6f6f6}
.figures{display:flex;flex-wrap:wrap;gap:1em}.figures figure{margin:0}.figures img{max-width:100%}
pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:.85em}"""


def write_report(
    run_dir: Path,
    title: str,
    metrics: dict,
    summary: list[tuple[str, str]],
    images: dict[str, bytes],
    diagnosis: dict | None,
    config_text: str,
) -> Path:
    """The page: verdict, metrics, the run and its data, the figures, the config."""
    parts = [f"<h1>{html.escape(title)}</h1>"]
    if diagnosis:
        verdict = diagnosis["verdict"]
        remedies = "".join(f"<li>{html.escape(r)}</li>" for r in diagnosis.get("remedies", []))
        bad = "" if verdict == "healthy" else " bad"
        parts.append(f'<p class="verdict{bad}">Diagnosis: <b>{html.escape(verdict)}</b></p>')
        if remedies:
            parts.append(f"<ul>{remedies}</ul>")
    parts.append("<h2>Test metrics</h2>")
    parts.append(_table([(k, metric_text(v)) for k, v in sorted(metrics.items())]))
    parts.append("<h2>Run and data</h2>" + _table(summary))
    parts.append(f"<h2>Figures</h2>{_figures(images)}")
    if diagnosis:
        evidence = json.dumps(diagnosis.get("evidence", {}), indent=2)
        parts.append(f"<h2>Diagnosis evidence</h2><pre>{html.escape(evidence)}</pre>")
    parts.append(f"<h2>Config</h2><pre>{html.escape(config_text)}</pre>")
    return write_text_atomic(run_dir / "report.html", _page(title, "".join(parts)))


def write_comparison(
    path: Path, runs: list[str], metrics: list[dict], differences: dict[str, list], images: dict[str, bytes]
) -> Path:
    """Several runs side by side: what differs in their configs, their test metrics, curves overlaid."""
    head = "".join(f"<th>{html.escape(run)}</th>" for run in runs)

    def row(key, values):
        return f"<tr><th>{html.escape(key)}</th>" + "".join(f"<td>{html.escape(v)}</td>" for v in values) + "</tr>"

    config_rows = "".join(row(key, [str(v) for v in values]) for key, values in differences.items())
    keys = sorted({k for m in metrics for k in m})
    metric_rows = "".join(row(k, [metric_text(m[k]) if k in m else "-" for m in metrics]) for k in keys)
    body = (
        f"<h1>Comparison of {len(runs)} runs</h1>"
        f"<h2>What differs</h2><table><tr><th></th>{head}</tr>{config_rows}</table>"
        f"<h2>Test metrics</h2><table><tr><th></th>{head}</tr>{metric_rows}</table>"
        f"<h2>Learning curves</h2>{_figures(images)}"
    )
    return write_text_atomic(path, _page(f"Comparison of {len(runs)} runs", body))


def write_cv_report(path: Path, title: str, summary: dict, images: dict[str, bytes]) -> Path:
    """A cross-validation's page: each fold's held-out metrics, their mean and standard deviation, the
    out-of-fold metrics, and the folds' learning curves overlaid."""
    folds = summary["per_fold"]
    keys = sorted(summary["mean"])
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    rows = "".join(
        f"<tr><th>repeat {f['repeat']}, fold {f['fold']}</th>"
        + "".join(f"<td>{metric_text(f['metrics'].get(k))}</td>" for k in keys)
        + "</tr>"
        for f in folds
    )
    rows += (
        "<tr><th>mean &plusmn; std</th>"
        + "".join(
            f"<td><b>{metric_text(summary['mean'][k])}</b> &plusmn; {metric_text(summary['std'][k])}</td>" for k in keys
        )
        + "</tr>"
    )
    oof = "".join(
        f"<h3>repeat {o['repeat']}</h3>" + _table([(k, metric_text(v)) for k, v in sorted(o["metrics"].items())])
        for o in summary["oof"]
    )
    body = (
        f"<h1>{html.escape(title)}</h1>"
        f"<p>{summary['folds']} folds{' (stratified)' if summary['stratified'] else ''}, "
        f"{summary['repeats']} repeat(s), shuffle seed {summary['seed']}; config {html.escape(summary['config'])}</p>"
        f"<h2>Held-out metrics per fold</h2><table><tr><th></th>{head}</tr>{rows}</table>"
        f"<h2>Out-of-fold metrics (all folds' held-out predictions pooled)</h2>{oof}"
        f"<h2>Learning curves</h2>{_figures(images)}"
    )
    return write_text_atomic(path, _page(title, body))
