"""Atomic file writes: a reader, or a kill at any moment, sees the old file or the new one, never half."""

import json
import math
import os
import uuid
from pathlib import Path


def write_bytes_atomic(path: str | os.PathLike, data: bytes, durable: bool = True) -> Path:
    """Write `data` to `path` through a temporary file and a rename. `durable` also waits for the disk
    (fsync), so that the file survives a power cut, not only a kill of this process."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # os.open applies the umask (tempfile.mkstemp would make an owner-only file)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        if error.filename is None:  # a write that failed midway (a full disk) names no file: name ours
            raise OSError(error.errno, error.strerror, str(path)) from error
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def read_json_if_exists(path: str | os.PathLike):
    """The JSON at `path`, or None when there is no such file."""
    path = Path(path)
    return json.loads(path.read_text()) if path.exists() else None


def plain_json(value):
    """`value` with non-finite floats as strings ("nan", "inf"): strict JSON that every parser reads."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: plain_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_json(v) for v in value]
    return value


def write_json_atomic(path: str | os.PathLike, data) -> Path:
    return write_text_atomic(path, json.dumps(plain_json(data), indent=2, sort_keys=True, allow_nan=False) + "\n")


SETUP_FILES = ("config.yaml", "hparams.yaml", "events.out.tfevents.")


def remove_if_only_setup(folder: Path) -> bool:
    """Remove `folder` when all it holds (in any subfolder) is what a run writes as it starts (its config,
    hyperparameters, TensorBoard files): a command that bad input stopped leaves nothing behind. Anything
    else (checkpoints, metrics) keeps it. Returns whether it was removed."""
    import shutil

    folder = Path(folder)
    if not folder.is_dir():
        return False
    for path in folder.rglob("*"):
        if path.is_file() and not (path.name in SETUP_FILES[:2] or path.name.startswith(SETUP_FILES[2])):
            return False
    shutil.rmtree(folder, ignore_errors=True)
    return True
