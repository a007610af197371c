"""Checking a checkpoint path before Lightning touches it, so a bad one gets one clear message."""

from pathlib import Path

from trainlab.errors import UserError


def check_checkpoint(path: str) -> dict:
    """The model hyperparameters of the trainlab checkpoint at `path`; UserError if it is not one.

    Loads with `weights_only=True`: a checkpoint never runs pickled code. Lightning's keywords (best,
    last) only mean something inside the process that trained, so a file path is required.
    """
    key = "--ckpt_path"
    file = Path(path)
    if not file.is_file():
        raise UserError(f"{key}={path!r}: no such file; give the path of a .ckpt file")
    import torch

    try:
        checkpoint = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file; any of them means unreadable
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise UserError(f"{key}={path!r}: not a readable checkpoint ({reason})") from None
    missing = [k for k in ("state_dict", "hyper_parameters") if not isinstance(checkpoint, dict) or k not in checkpoint]
    if missing:
        raise UserError(f"{key}={path!r}: not a trainlab checkpoint (missing {', '.join(missing)})")
    return checkpoint["hyper_parameters"]
