"""What a command's config files and arguments get wrong that can be found before Lightning is imported
(the import takes seconds): a missing or unreadable config, an unknown section, an unknown key of trainlab's
own model or data class or of Lightning's Trainer (read from their sources, not imported), a value that
breaks a rule of trainlab.rules, a data file without the columns the config names (its header is read), an
evaluation without --ckpt_path, a --ckpt_path that names no file. The full parser checks everything again;
this only answers sooner, in the same words. What it cannot read surely (a class of the user's own, a value
of another type than declared) it leaves to the full parser."""

import ast
import difflib
import importlib.util
import json
from functools import cache
from pathlib import Path

import yaml

from trainlab import rules
from trainlab.errors import key_hint

SECTIONS = ("seed_everything", "trainer", "model", "data", "run", "ckpt_path")
LIGHTNING_KEYS = ("optimizer", "lr_scheduler", "weights_only")  # in every saved config.yaml (Lightning's own)
# trainlab's own classes and the files that define them: their keys are read from the source, not imported
CLASS_FILES = {
    "MLPModule": "models/module.py",
    "TabularDataModule": "data/base.py",
    "SyntheticDataModule": "data/synthetic.py",
    "FileDataModule": "data/files.py",
    "BundledDataModule": "data/files.py",
}
DEFAULT_CLASS = {"model": "MLPModule", "data": "TabularDataModule"}
# per part of a config: where its keys live, the rules of its values and its choices
PARTS = {
    "model": ("model.init_args", rules.MODEL, rules.MODEL_CHOICES),
    "data": ("data.init_args", rules.DATA, rules.DATA_CHOICES),
    "run": ("run", rules.RUN, {}),
    "run.early_stopping": ("run.early_stopping", rules.EARLY_STOPPING, {}),
    "trainer": ("trainer", rules.TRAINER, {}),
}


def check_early(args: list[str]) -> str | None:
    """The first problem found without Lightning, as the one line the CLI prints; None if there is none."""
    problem, configs = read_configs(args)
    if problem is not None or "--print_config" in args or any(a.startswith("--print_config=") for a in args):
        return problem  # printing a config checks nothing
    given, classes, typed = gather(args, configs)
    own = {section: own_class(section, classes.get(section)) for section in DEFAULT_CLASS}
    for section, name in own.items():
        problem = _unknown(f"{section}.init_args", given[section], init_keys(name)) if name else None
        if problem is not None:
            return problem
    problem = _unknown("trainer", given["trainer"], trainer_keys()) or trainer_value_problem(given["trainer"])
    if problem is not None:
        return problem
    ours = {part: part not in own or own[part] is not None for part in PARTS}
    for part, name, text in typed:  # a number given as a word: the parser's own message
        where, part_rules, _ = PARTS[part]
        rule = part_rules.get(name)
        if ours[part] and rule is not None and rule.kind in (int, float) and not _nullable(rule) and not _number(text):
            return f"{where}.{name}: Expected a {rule.kind.__name__}. Got value: {text}"
    for part, (where, part_rules, choices) in PARTS.items():
        problem = rules.first_problem(where, part_rules, choices, given[part]) if ours[part] else None
        if problem is not None:
            return problem
    for section, joints in (("model", rules.MODEL_JOINT), ("data", rules.DATA_JOINT)):
        values = {**init_defaults(own[section]), **given[section]} if own[section] else {}
        problem = next(filter(None, (_joint_problem(f"{section}.init_args", j, values) for j in joints)), None)
        if problem is not None:
            return problem
    if own["data"] == "FileDataModule" and (problem := file_problem(given["data"])) is not None:
        return problem
    return checkpoint_problem(args, configs)


def _joint_problem(where: str, joint: rules.Joint, values: dict) -> str | None:
    """The message when `values` (a class's defaults and what is given) break `joint`; None when they hold, or
    when a value is of a type the rule cannot judge (the full parser words that)."""
    from trainlab.errors import UserError

    try:
        rules.check_joint(where, joint, values)
    except UserError as error:
        return str(error)
    except (KeyError, TypeError):
        return None
    return None


def file_problem(data: dict) -> str | None:
    """FileDataModule's file that is missing, empty or unreadable, or lacks a column the config names (its
    header is read, not the whole file), in FileDataModule's words; None if there is none (or no file is named)."""
    from trainlab.data.table import check_columns, column_names
    from trainlab.errors import UserError

    path, target = data.get("path"), data.get("target")
    wanted = [*(data.get("features") or []), *(data.get("categorical") or [])]
    if not isinstance(path, str) or not isinstance(target, str) or not all(isinstance(c, str) for c in wanted):
        return None
    try:
        check_columns(column_names(path), Path(path), target, wanted)
    except UserError as error:
        return str(error)
    return None


def checkpoint_problem(args: list[str], configs: dict[str, dict]) -> str | None:
    """An evaluation without --ckpt_path, or a --ckpt_path that is no file, in the full path's words (the file's
    content is checked there: reading it needs torch)."""
    from trainlab.errors import checkpoint_required, no_checkpoint_file

    path, given, i = None, False, 1
    while i < len(args):  # the config files and arguments in order: the last value wins
        name, after = config_at(args, i)
        if name is not None:
            if "ckpt_path" in configs[name]:
                path, given = configs[name]["ckpt_path"], True
            i = after
            continue
        key, has_value, value = args[i].partition("=")
        if key == "--ckpt_path" and not has_value and i + 1 < len(args):
            has_value, value, i = True, args[i + 1], i + 1
        if key == "--ckpt_path" and has_value:
            path, given = (None if value in ("null", "None", "") else value), True
        i += 1
    if path is None and args[0] in ("validate", "test", "predict"):
        return checkpoint_required(args[0])
    if given and isinstance(path, str) and not Path(path).is_file():
        return no_checkpoint_file(path)
    return None


def override_args(overrides: dict) -> list[str]:
    """Dotted keys (or the same with `__`) and values as command-line arguments."""
    args = []
    for key, value in overrides.items():
        args += [f"--{key.replace('__', '.')}", value if isinstance(value, str) else json.dumps(value)]
    return args


def read_configs(args: list[str]) -> tuple[str | None, dict[str, dict]]:
    """Each config file's content by the name given, read once; or the first problem: a file that is
    missing, unreadable, not YAML, not a mapping, a tune config, or holds a section that does not exist."""
    configs: dict[str, dict] = {}
    for name in config_names(args):
        path = Path(name)
        if not path.is_file():
            return f"-c {name}: no such file; give a config file (for example configs/seed.yaml)", configs
        try:
            content = yaml.safe_load(path.read_text())
        except yaml.YAMLError as error:
            where = getattr(error, "problem_mark", None)
            line = f", line {where.line + 1}" if where is not None else ""
            return f"{name}{line}: not valid YAML ({getattr(error, 'problem', None) or error})", configs
        except (OSError, UnicodeDecodeError) as error:
            return f"{name}: cannot be read ({error})", configs
        if content is not None and not isinstance(content, dict):
            kind = type(content).__name__
            return f"{name}: holds a {kind}; a config is a mapping of sections: {', '.join(SECTIONS)}", configs
        content = content or {}
        if "space" in content or "base" in content:
            return f"{name} is a tune config (it has base/space); run it with: trainlab tune -c {name}", configs
        for key in content:
            if key not in SECTIONS + LIGHTNING_KEYS:
                close = difflib.get_close_matches(str(key), SECTIONS, n=1, cutoff=0.6)
                hint = f"did you mean {close[0]!r}? " if close else ""
                return f"{name}: unknown section {key!r}; {hint}allowed: {', '.join(SECTIONS)}", configs
        configs[name] = content
    return None, configs


def config_names(args: list[str]) -> list[str]:
    """The config files given, in order: `-c NAME`, `--config NAME`, `--config=NAME`, `-c=NAME`."""
    names, i = [], 0
    while i < len(args):
        name, i = config_at(args, i)
        if name is not None:
            names.append(name)
    return names


def config_at(args: list[str], i: int) -> tuple[str | None, int]:
    """(the config file that args[i] gives, or None; the index of the next argument to read)."""
    if args[i] in ("-c", "--config") and i + 1 < len(args):
        return args[i + 1], i + 2
    if args[i].startswith(("--config=", "-c=")):
        return args[i].split("=", 1)[1], i + 1
    return None, i + 1


def gather(
    args: list[str], configs: dict[str, dict]
) -> tuple[dict[str, dict], dict[str, object], list[tuple[str, str, str]]]:
    """The values the config files (`configs`, as read_configs read them) and --dotted.key overrides give, in
    order (the last one wins), per part (model and data init_args, run, run.early_stopping, trainer); the class_path
    given for model and data; and the command line's values that are words to YAML, as typed: (part, key,
    text)."""
    given: dict[str, dict] = {part: {} for part in PARTS}
    classes: dict[str, object] = {}
    typed: list[tuple[str, str, str]] = []
    i = 0
    while i < len(args):
        name, after = config_at(args, i)
        if name is not None:
            config, i = configs[name], after
            for section in ("model", "data"):
                part = config.get(section)
                if isinstance(part, dict):
                    if "class_path" in part:
                        classes[section] = part["class_path"]
                    if isinstance(part.get("init_args"), dict):
                        given[section].update(part["init_args"])
            if isinstance(config.get("trainer"), dict):
                given["trainer"].update(config["trainer"])
            run = config.get("run")
            if isinstance(run, dict):
                given["run"].update({k: v for k, v in run.items() if k != "early_stopping"})
                if isinstance(run.get("early_stopping"), dict):
                    given["run.early_stopping"].update(run["early_stopping"])
            continue
        arg, i = args[i], i + 1
        if not arg.startswith("--"):
            continue
        key, has_value, value = arg[2:].partition("=")
        if not has_value:
            if i >= len(args) or args[i].startswith("--"):
                continue
            value, i = args[i], i + 1
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            continue
        section, _, name = key.removesuffix("+").rpartition(".")  # --trainer.callbacks+=...: appends
        if key in ("model", "data", "model.class_path", "data.class_path"):
            classes[key.split(".")[0]] = parsed
        elif section in ("model.init_args", "data.init_args", "run", "run.early_stopping", "trainer"):
            part = section.removesuffix(".init_args")
            given[part][name] = parsed
            if isinstance(parsed, str):
                typed.append((part, name, value))
    return given, classes, typed


def _unknown(where: str, keys, known: set[str] | None) -> str | None:
    """The message for the first of `keys` that is not one of `known` (None: not known here, so not checked)."""
    for key in keys if known is not None else ():
        if isinstance(key, str) and key not in known:  # (a key YAML reads as a number: the parser's to word)
            close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.75)
            return f"{where}: Option '{key}' is not accepted; {key_hint(close[0] if close else None)}"
    return None


def _nullable(rule: rules.Rule) -> bool:
    """Whether the key may also be null (the parser words a bad value of such a key otherwise)."""
    try:
        return bool(rule.holds(None))
    except TypeError:
        return False


def _number(text: str) -> bool:
    """Whether the parser could read `text` as a number (1e-3 too, which YAML leaves a string)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def own_class(section: str, class_path) -> str | None:
    """The name of trainlab's own class that `class_path` names (None: the section's default), else None."""
    if class_path is None:
        return DEFAULT_CLASS[section]
    module, _, name = str(class_path).rpartition(".")
    own = name in CLASS_FILES and (section == "model") == (name == "MLPModule")
    return name if own and (not module or module.startswith("trainlab.")) else None


@cache
def init_keys(name: str) -> frozenset[str]:
    """The arguments of trainlab's class `name`, read from its source (a class that passes **kwargs on to
    its base takes the base's too), as jsonargparse reads them from the signatures."""
    node = _class_node(Path(__file__).parent / CLASS_FILES[name], name)
    keys = _arguments(node)
    if _init(node).args.kwarg is not None:
        base = node.bases[0].id if isinstance(node.bases[0], ast.Name) else None
        keys |= init_keys(base) if base in CLASS_FILES else set()
    return frozenset(keys)


@cache
def init_defaults(name: str) -> dict:
    """The literal defaults of trainlab's class `name`'s arguments, read from its source (with its base's,
    for a class that passes **kwargs on)."""
    node = _class_node(Path(__file__).parent / CLASS_FILES[name], name)
    arguments = _init(node).args
    named = arguments.args[1:]
    pairs = list(zip(named[len(named) - len(arguments.defaults) :], arguments.defaults, strict=True))
    pairs += [(a, d) for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True) if d is not None]
    defaults = {}
    for argument, default in pairs:
        try:
            defaults[argument.arg] = ast.literal_eval(default)
        except ValueError:  # not a literal (a name, a call): no joint rule needs it
            continue
    base = node.bases[0].id if isinstance(node.bases[0], ast.Name) else None
    if arguments.kwarg is not None and base in CLASS_FILES:
        defaults = {**init_defaults(base), **defaults}
    return defaults


@cache
def trainer_keys() -> dict[str, str] | None:
    """The arguments of Lightning's Trainer and their annotations as written, read from its source without
    importing Lightning (seconds); None where that source cannot be read (the full parser checks them then)."""
    try:
        spec = importlib.util.find_spec("lightning")  # finds the package without importing it
        init = _init(_class_node(Path(spec.origin).parent / "pytorch" / "trainer" / "trainer.py", "Trainer"))
        return {a.arg: ast.unparse(a.annotation) if a.annotation else "" for a in init.args.kwonlyargs}
    except (AttributeError, TypeError, OSError, SyntaxError, StopIteration):
        return None


# The Trainer's plainly typed keys (max_epochs: Optional[int], enable_progress_bar: Optional[bool], ...)
PLAIN_TYPES = {"int": "int", "Optional[int]": "int", "bool": "bool", "Optional[bool]": "bool"}


def trainer_value_problem(values: dict) -> str | None:
    """The first of the Trainer's plainly typed `values` that is surely of another type (a word for a
    number, a fraction for an integer, a word other than true/false for a flag), in the full parser's words."""
    annotations = trainer_keys() or {}
    for key, value in values.items():
        kind = PLAIN_TYPES.get(annotations.get(key, ""))
        word = isinstance(value, str) and not _number(value)
        fraction = isinstance(value, float) and not value.is_integer()
        if kind is None or not (
            word or (kind == "int" and fraction) or (value is None and "Optional" not in annotations[key])
        ):
            continue
        if "Optional" in annotations[key]:
            return f"trainer.{key}: Expected a {kind} (got {str(value)!r})"
        return f"trainer.{key}: Expected a {kind}. Got value: {value}"
    return None


def _class_node(path: Path, name: str) -> ast.ClassDef:
    return next(n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ClassDef) and n.name == name)


def _init(node: ast.ClassDef) -> ast.FunctionDef:
    return next(f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == "__init__")


def _arguments(node: ast.ClassDef) -> set[str]:
    """The named arguments of the class's __init__ (self aside)."""
    init = _init(node)
    return {a.arg for a in [*init.args.args[1:], *init.args.kwonlyargs]}
