"""What a study leaves in its directory: leaderboard.csv, best_config.yaml, importances.json and plots/*.png."""

import csv
import hashlib
import io
import json
import warnings
from pathlib import Path

import yaml

from trainlab.io import read_json_if_exists, write_bytes_atomic, write_json_atomic, write_text_atomic
from trainlab.tuning.study import Search, fit_overrides

STATE_ORDER = {"COMPLETE": 0, "PRUNED": 1, "RUNNING": 2, "WAITING": 3, "FAIL": 4}


def short_names(keys: list[str]) -> dict[str, str]:
    """model.init_args.lr -> lr, unless two keys end alike."""
    last = [key.split(".")[-1] for key in keys]
    return {key: name if last.count(name) == 1 else key for key, name in zip(keys, last, strict=True)}


def leaderboard(study, search: Search) -> list[dict]:
    """One row per trial, best first: finished trials by value, then pruned, running, waiting and failed."""
    keys = [p.key for p in search.config.space]
    names = short_names(keys)
    sign = 1 if search.direction == "minimize" else -1
    rows = []
    for trial in study.get_trials(deepcopy=False):
        if trial.user_attrs.get("spare"):
            continue  # a grid worker's empty-handed try (see objective.GridTaken)
        state = trial.state.name
        value = trial.value if state == "COMPLETE" else None
        row = {"trial": trial.number, "state": state, search.metric: value}
        row.update({names[k]: trial.params.get(k) for k in keys})
        row["epochs"] = trial.user_attrs.get("epochs")
        row["seconds"] = trial.user_attrs.get("seconds")
        row.update(trial.user_attrs.get("test_metrics", {}))
        row["note"] = trial.user_attrs.get("stopped") or (
            f"retry of trial {trial.user_attrs['retry_of']}" if "retry_of" in trial.user_attrs else ""
        )
        rows.append(row)
    rows.sort(key=lambda r: (STATE_ORDER[r["state"]], sign * r[search.metric] if r[search.metric] is not None else 0))
    return rows


def format_table(rows: list[dict], columns: list[str]) -> str:
    def cell(value) -> str:
        if value is None:
            return "-"
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    table = [columns] + [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    return "\n".join("  ".join(text.rjust(w) for text, w in zip(line, widths, strict=True)) for line in table)


def printed_columns(rows: list[dict], search: Search) -> list[str]:
    names = list(short_names([p.key for p in search.config.space]).values())
    tests = [k for k in ("test/loss", "test/accuracy", "test/r2") if any(k in r for r in rows)]
    return ["trial", "state", search.metric, *names, *tests, "epochs", "seconds"]


def write_leaderboard(rows: list[dict], path: Path) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())


def best_config(search: Search, best) -> str:
    """The base config as written, with the fixed overrides and the best trial's values applied."""
    config = yaml.safe_load(search.config.base.read_text()) or {}
    params = {p.key: p.decode(best.params[p.key]) for p in search.config.space}
    for key, value in fit_overrides(search.config, search.monitor, params).items():
        _set_dotted(config, key, value)
    if search.config.cv:
        value = f"{search.metric} = {best.value:.6g}, the mean over {search.config.cv['folds']} folds' held-out parts"
        again = "trains it once on the config's own split (same seed)"
    else:
        value = f"{search.metric} = {best.value:.6g}"
        again = "trains it again and reaches the same value (same seed)"
    header = (
        f"# The best trial ({best.number}) of study {search.config.name!r}: {value}.\n"
        f"# Its base: {search.config.base}. `trainlab fit -c best_config.yaml` {again}.\n"
    )
    return header + yaml.safe_dump(config, sort_keys=False)


def _set_dotted(config: dict, key: str, value) -> None:
    *parents, last = key.split(".")
    node = config
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"cannot set {key}: {part} is not a mapping in the base config")
    node[last] = value


def importances(study) -> dict[str, float]:
    """fANOVA importances of the completed trials (empty when there are too few to say)."""
    import optuna

    try:
        return dict(optuna.importance.get_param_importances(study))
    except (ValueError, RuntimeError):
        return {}


def write_results(study, search: Search) -> dict:
    """Everything a study leaves, from its storage and its trials' run directories; returns what it wrote."""
    folder = search.config.study_dir
    rows = leaderboard(study, search)
    write_leaderboard(rows, folder / "leaderboard.csv")
    written = {"leaderboard": folder / "leaderboard.csv", "rows": rows}
    completed = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if completed:
        best = study.best_trial
        write_text_atomic(folder / "best_config.yaml", best_config(search, best))
        written["best_config"] = folder / "best_config.yaml"
        written["best"] = best
    scores = importances(study) if len(completed) >= 2 else {}
    write_json_atomic(folder / "importances.json", scores)
    written["plots"] = save_figures(study, search, folder / "plots", bool(scores))
    return written


def save_figures(study, search: Search, folder: Path, with_importances: bool) -> list[Path]:
    """Optimisation history, parameter slices, importances and all trials' learning curves, as PNG. Drawing
    takes about a second: a rerun that finished no new trial (or a second worker ending the same study) finds
    the figures of these very trials already drawn and leaves them."""
    finished = [t for t in study.get_trials(deepcopy=False) if t.state.name in ("COMPLETE", "PRUNED")]
    if not finished:
        return []
    source = figures_source(finished, search, with_importances)
    record = folder / ".drawn-from"
    try:
        drawn = read_json_if_exists(record)
    except (OSError, ValueError):  # damaged: draw again
        drawn = None
    if isinstance(drawn, dict) and drawn.get("source") == source:
        files = [folder / name for name in drawn.get("files", [])]
        if files and all(f.is_file() for f in files):
            return files
    files = draw_figures(finished, study, search, folder, with_importances)
    write_json_atomic(record, {"source": source, "files": [f.name for f in files]})
    return files


def draw_figures(finished: list, study, search: Search, folder: Path, with_importances: bool) -> list[Path]:
    """Draw the figures of the finished trials into folder; returns its PNG files."""
    import matplotlib
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as optuna_plots

    from trainlab.reporting import figures
    from trainlab.reporting.report import read_curves, save_plots

    plots = {}
    # Optuna's plots switch matplotlib's global style; rc_context puts it back afterwards.
    with warnings.catch_warnings(), matplotlib.rc_context():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", ".*identical low and high xlims.*")  # a parameter tried at one value
        plots["optimization_history"] = optuna_plots.plot_optimization_history(study, target_name=search.metric)
        if any(t.state.name == "COMPLETE" for t in finished):
            plots["slices"] = optuna_plots.plot_slice(study, target_name=search.metric)
        if with_importances:
            plots["importances"] = optuna_plots.plot_param_importances(study)
        pngs = {}
        for name, axes in plots.items():
            figure = (axes.flat[0] if hasattr(axes, "flat") else axes).get_figure()
            figure.set_size_inches(max(6.0, figure.get_size_inches()[0]), 4.5)
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
            pngs[name] = buffer.getvalue()
            plt.close(figure)
    names = short_names([p.key for p in search.config.space])
    labels = [
        f"trial {t.number}"
        + (": " + ", ".join(f"{names[k]}={v}" for k, v in t.params.items()) if len(names) <= 2 else "")
        for t in finished
    ]
    curves = [read_curves(Path(t.user_attrs.get("run_dir", ""))) for t in finished]
    overlay = figures.compare_curves(labels, curves, search.metric)
    save_plots({"learning_curves": overlay}, folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in pngs.items():
        write_bytes_atomic(folder / f"{name}.png", data)
    return sorted(folder.glob("*.png"))


def figures_source(finished: list, search: Search, with_importances: bool) -> str:
    """A digest of what the study's figures show: each finished trial's state, value, parameters, reported
    epochs and run directory, the metric, and whether importances are drawn."""
    shown = [
        (
            t.number,
            t.state.name,
            t.value,
            sorted(t.params.items()),
            len(t.intermediate_values),
            t.user_attrs.get("run_dir"),
        )
        for t in finished
    ]
    text = json.dumps([search.metric, with_importances, shown], default=str)
    return hashlib.sha256(text.encode()).hexdigest()
