"""The one exception type for mistakes in what the user gave us (config values, files, arguments), and how
the errors of the libraries underneath become one.

Kept import-light: the CLI imports it before anything heavy."""

import argparse
import errno
import re
from argparse import ArgumentError


class TrainlabWarning(UserWarning):
    """Something a user should know that does not stop the command; the CLI prints it as one line."""


class Stopped(BaseException):
    """The command was asked to stop (SIGTERM, or Ctrl-C's SIGINT). A BaseException, as KeyboardInterrupt:
    no `except Exception` on the way (Optuna's included: the running trial stays RUNNING, for the next
    run to retry) swallows it. The CLI exits with 128 + the signal's number."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    def __reduce__(self):
        return Stopped, (self.signum,)


class WorkersLost(Exception):
    """Worker processes ended without handing back some jobs (killed, or stopped by a signal)."""

    def __init__(self, jobs: list[int], exit_codes: list):
        self.jobs, self.exit_codes = jobs, exit_codes
        how = ", ".join(f"killed by signal {-c}" if c and c < 0 else f"exit code {c}" for c in exit_codes) or "exit 0"
        super().__init__(f"{len(jobs)} job(s) lost: a worker process ended without its result ({how})")


class UserError(Exception):
    """Bad user input. The CLI prints the message as one line and exits with code 2."""


class CommandParser(argparse.ArgumentParser):
    """argparse for trainlab's own commands (tune, cv, report): a usage mistake is one line, like every error."""

    def error(self, message: str):
        raise UserError(f"{self.prog}: {message}; `{self.prog} --help` lists the options")


def require(condition: bool, key: str, value, allowed: str) -> None:
    """Raise a UserError naming `key`, the bad `value` and what is allowed, unless `condition` holds."""
    if not condition:
        raise UserError(f"{key}={value!r} is not allowed: {allowed}")


def checkpoint_required(command: str) -> str:
    return (
        f"--ckpt_path is required for {command}: the path of a trained model's .ckpt file "
        "(for example lightning_logs/<name>/version_N/checkpoints/last.ckpt)"
    )


def no_checkpoint_file(path) -> str:
    return f"--ckpt_path={path!r}: no such file; give the path of a .ckpt file"


class TrainingFailed(Exception):
    """A fit that cannot go on (a non-finite loss). The CLI prints the message and exits with code 3."""

    def __init__(self, message: str, report: dict):
        super().__init__(message)
        self.report = report

    def __reduce__(self):  # pickled from a worker process back to the command
        return TrainingFailed, (str(self), self.report)


def user_error_in(error: BaseException):
    """The UserError that caused `error`, if any (jsonargparse wraps errors raised while instantiating)."""
    while error is not None:
        if isinstance(error, UserError):
            return error
        error = error.__cause__  # explicit causes only: an error raised while handling another is not it
    return None


def condense_parser_error(message: str) -> str:
    """jsonargparse explains a bad value as a nested tree; keep the dotted key and the innermost reason."""
    keys, reasons, given = [], [], None
    for line in (raw.strip().removeprefix("- ").strip() for raw in message.splitlines()):
        key = re.match(r'Parser key "([^"]+)":\s*(.*)$', line)
        if key:
            keys.append(key.group(1))
            line = key.group(2)
        elif line.startswith("Problem with given class_path"):
            keys.append("init_args")
            continue
        elif line.startswith("Given value:"):
            given = line.removeprefix("Given value:").strip()
            continue
        if not line or line == "Errors:" or line.startswith(("Does not validate", "Subtypes:", "Given value type:")):
            continue
        if line != "Expected a <class 'NoneType'>" or not reasons:
            reasons.append(line)
    reason = "; ".join(dict.fromkeys(r for r in reasons if r != "Expected a <class 'NoneType'>")) or message
    reason = re.sub(r"<class '(\w+)'>", r"\1", reason)
    reason = re.sub(r"Expected a typing\.Literal\[(.*)\]\. Got value: (.*)", r"got '\2'; allowed: \1", reason)
    if given is not None and "Got value" not in reason and "NestedArg" not in given and "Namespace" not in given:
        reason += f" (got {given!r})"
    one = re.fullmatch(r"unrecognized arguments: --([\w.]+)\.(\w+)(?:=\S*| \S+)?", reason) or re.fullmatch(
        r"Subcommand '\w+' does not accept option '([\w.]+)\.(\w+)'", reason
    )
    if one and not keys:  # one unknown key of a section, worded as an unknown key of a class's init_args is
        section, key = one.groups()
        close = closest_key(section, key)
        return f"{section}: Option '{key}' is not accepted; {key_hint(close)}"
    if "unrecognized arguments" in reason or "is not accepted" in reason or "not expected" in reason:
        unknown = re.search(r"Option '([^']+)' is not accepted", reason)
        close = closest_key(".".join(keys), unknown.group(1)) if unknown else None
        flag = re.search(r"unrecognized arguments: --(\S+)\.(\w+)", reason)
        if flag and closest_key(flag.group(1), flag.group(2)):
            close = f"--{flag.group(1)}.{closest_key(flag.group(1), flag.group(2))}"
        reason += f"; {key_hint(close)}"
    if "the following arguments are required" in reason and ".data" in reason and ".model" in reason:
        reason += " (give a config with -c, for example: trainlab fit -c configs/seed.yaml)"
    return f"{'.'.join(keys)}: {reason}" if keys else reason


# Per config section (model, data, run, trainer), the classes whose parameters are its keys: filled in by
# trainlab.lightning_cli, which defines the sections, so that this module imports nothing of trainlab's.
SECTION_CLASSES: dict[str, list] = {}


def key_hint(close: str | None) -> str:
    """What follows "Option 'x' is not accepted": the closest known key, or where to see the keys."""
    return f"did you mean {close!r}?" if close else "`--print_config` shows the keys there are"


def closest_key(section: str, wrong: str) -> str | None:
    """The key of `section` (model.init_args, data.init_args, run, trainer) spelled most like `wrong`."""
    import difflib
    import inspect

    classes = next((c for name, c in SECTION_CLASSES.items() if section.startswith(name)), None)
    if classes is None:
        return None
    names = {n for c in classes for n in inspect.signature(c.__init__).parameters if n not in ("self", "kwargs")}
    found = difflib.get_close_matches(wrong, sorted(names), n=1, cutoff=0.75)
    return found[0] if found else None


def as_user_error(error: BaseException) -> UserError | None:
    """The one-line UserError for a bad-input error of ours or of the libraries underneath, else None."""
    cause = user_error_in(error)
    if cause is not None:
        return cause
    if isinstance(error, ArgumentError):
        return UserError(condense_parser_error(str(error)))
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    if isinstance(error, MisconfigurationException):  # Lightning refusing a trainer setting
        return UserError(f"trainer: {str(error).strip().splitlines()[0]}")
    return None


# What a failed write means, for the errors a full or forbidden disk gives.
WRITE_PROBLEMS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EFBIG: "the file size limit is reached",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the file system is read-only",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EEXIST: "a file is in the way of a folder",
}


def write_problem(error: BaseException) -> str | None:
    """One line for an error that means the run could not write its files (disk full, no permission), else None."""
    if not isinstance(error, OSError):
        return None
    reason = WRITE_PROBLEMS.get(error.errno)
    if reason is None:
        return None
    where = f"{error.filename}" if error.filename else "a file of the run"
    return (
        f"cannot write {where}: {reason}; free some space or write elsewhere (fit: "
        "--trainer.logger.init_args.save_dir; tune: output_dir); files already written are whole"
    )
