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
    path: Path, runs: list[dict], labels: list[str], differences: dict[str, list], images: dict[str, bytes]
) -> Path:
    """Several runs side by side: what differs in their configs, their verdicts, their test metrics with the
    best of each marked, what the comparison says in words, curves overlaid. `runs` as load_run reads them."""
    head = "".join(
        f"<th>{html.escape(label)}<br><small>{html.escape(str(r['folder']))}</small></th>"
        for label, r in zip(labels, runs, strict=True)
    )

    def row(key, cells):
        return f"<tr><th>{html.escape(key)}</th>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"

    config_rows = "".join(row(key, [html.escape(str(v)) for v in values]) for key, values in differences.items())
    verdicts = [html.escape((r["diagnosis"] or {}).get("verdict", "-")) for r in runs]
    metrics = [r["metrics"] for r in runs]
    metric_rows = ""
    for key in sorted({k for m in metrics for k in m}):
        best = best_runs(key, [m.get(key) for m in metrics])
        cells = [metric_text(m[key]) if key in m else "-" for m in metrics]
        metric_rows += row(key, [f"<b>{c} &#9733;</b>" if i in best else html.escape(c) for i, c in enumerate(cells)])
    story = "".join(f"<p>{html.escape(line)}</p>" for line in comparison_story(runs, labels))
    body = (
        f"<h1>Comparison of {len(runs)} runs</h1>{story}"
        f"<h2>What differs</h2><table><tr><th></th>{head}</tr>{config_rows}{row('diagnosis', verdicts)}</table>"
        f"<h2>Test metrics (&#9733; best)</h2><table><tr><th></th>{head}</tr>{metric_rows}</table>"
        f"<h2>Learning curves</h2>{_figures(images)}"
    )
    return write_text_atomic(path, _page(f"Comparison of {len(runs)} runs", body))


def best_runs(key: str, values: list) -> set[int]:
    """The runs holding the best value of metric `key` (ties included); none when its direction is unknown."""
    higher = tasks.HIGHER_IS_BETTER.get(key.split("/")[-1])
    numbers = {i: v for i, v in enumerate(values) if isinstance(v, int | float) and v == v}
    if higher is None or len(numbers) < 2:
        return set()
    best = (max if higher else min)(numbers.values())
    return {i for i, v in numbers.items() if v == best}


def comparison_story(runs: list[dict], labels: list[str]) -> list[str]:
    """The comparison in words: which run is best on the test split, which reached the lowest per-epoch
    held-out loss, and, when they differ, why two splits (or two metrics) can disagree."""
    lines = []
    winners: dict[int, list[str]] = {}
    for key in sorted({k for r in runs for k in r["metrics"]}):
        best = best_runs(key, [r["metrics"].get(key) for r in runs])
        if len(best) == 1:
            winners.setdefault(next(iter(best)), []).append(key)
    if winners:
        parts = [f"{labels[i]} on {', '.join(keys)}" for i, keys in sorted(winners.items())]
        lines.append("Best on the test split: " + "; ".join(parts) + ".")
    held = {}
    for i, r in enumerate(runs):
        split = tasks.held_out_of(r["curves"])
        losses = r["curves"].get(f"{split}/loss")
        if losses and losses[1]:
            k = min(range(len(losses[1])), key=losses[1].__getitem__)
            held[i] = (losses[1][k], losses[0][k], split)
    if len(held) > 1:
        i = min(held, key=lambda j: held[j][0])
        value, epoch, split = held[i]
        lines.append(f"Lowest {split}/loss during training: {labels[i]} ({value:.4f} at epoch {epoch}).")
        test_loss_best = best_runs("test/loss", [r["metrics"].get("test/loss") for r in runs])
        headline = next((k for k in ("test/accuracy", "test/r2") if any(k in r["metrics"] for r in runs)), None)
        headline_best = best_runs(headline, [r["metrics"].get(headline) for r in runs]) if headline else set()
        if i not in test_loss_best or (headline_best and i not in headline_best):
            lines.append(
                "They disagree, and both can be right: a value chosen as the best of many epochs or runs on one "
                "split is partly that split's luck (choose on validation data, report on the test split once); "
                "each split is a small sample, so runs a few samples apart are within its noise; and a loss "
                "weighs how confident each prediction is while accuracy only counts which side of the threshold "
                "it falls, so the run with the lowest loss need not be the most accurate. The tested checkpoint "
                "(run.test_ckpt: best or last) also decides which epoch the test numbers describe."
            )
    verdicts = {(r["diagnosis"] or {}).get("verdict") for r in runs} - {None, "healthy"}
    if verdicts:
        named = [
            f"{labels[i]}: {r['diagnosis']['verdict']}"
            for i, r in enumerate(runs)
            if (r["diagnosis"] or {}).get("verdict") not in (None, "healthy")
        ]
        lines.append("The doctor's concerns: " + "; ".join(named) + " (each run's report.html has the remedies).")
    return lines


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
