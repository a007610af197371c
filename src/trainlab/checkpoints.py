"""Checkpoint files: checking a path before Lightning touches it (so a bad one gets one clear message),
and writing them quickly."""

import io
from pathlib import Path

import torch
from lightning.fabric.plugins import TorchCheckpointIO

from trainlab.errors import UserError
from trainlab.io import write_bytes_atomic


def check_checkpoint(path: str) -> dict:
    """The model hyperparameters of the trainlab checkpoint at `path`; UserError if it is not one.

    Loads with `weights_only=True`: a checkpoint never runs pickled code. Lightning's keywords (best,
    last) only mean something inside the process that trained, so a file path is required.
    """
    key = "--ckpt_path"
    file = Path(path)
    if not file.is_file():
        raise UserError(f"{key}={path!r}: no such file; give the path of a .ckpt file")
    try:
        checkpoint = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file; any of them means unreadable
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise UserError(f"{key}={path!r}: not a readable checkpoint ({reason})") from None
    missing = [k for k in ("state_dict", "hyper_parameters") if not isinstance(checkpoint, dict) or k not in checkpoint]
    if missing:
        raise UserError(f"{key}={path!r}: not a trainlab checkpoint (missing {', '.join(missing)})")
    return checkpoint["hyper_parameters"]


class LocalCheckpointIO(TorchCheckpointIO):
    """Lightning's TorchCheckpointIO, writing local files directly (to a temporary file, then a rename).

    A fit saves often (the best checkpoint whenever it improves, last.ckpt every second); Lightning's
    writer goes through fsspec, which cost a quarter of each save. Remote paths (s3://, ...) still go
    through fsspec. Like Lightning, no fsync: a killed process's writes survive; a power cut may lose
    the latest saves."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        if storage_options is not None or "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        write_bytes_atomic(path, buffer.getbuffer(), durable=False)
