"""Checkpoint files: checking a path before Lightning touches it (so a bad one gets one clear message),
and writing them quickly."""

import io
from pathlib import Path

import torch
from lightning.fabric.plugins import TorchCheckpointIO

from trainlab.errors import UserError, no_checkpoint_file
from trainlab.io import write_bytes_atomic


def unreadable(file: Path, error: Exception) -> str:
    """Why torch.load(weights_only=True) could not read `file`, in the user's terms (torch's words for a refused
    pickle advise loading it with weights_only=False, which would run the file's code: never repeated)."""
    with open(file, "rb") as stream:
        start = stream.read(2)
    if not start.startswith((b"PK", b"\x80")):  # torch.save writes a zip archive; older torch a pickle
        return "not a file torch.save wrote"
    if "Weights only load failed" in str(error):
        return "it holds Python objects besides tensors and plain values; checkpoints are loaded without running code"
    return str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__


def check_checkpoint(path: str, model_keys: set[str]) -> dict:
    """The trainlab checkpoint at `path`, loaded; UserError if it is not one, or not one this trainlab and
    Lightning can read (`model_keys`: the hyperparameters the model class takes).

    Loads with `weights_only=True`: a checkpoint never runs pickled code. Lightning's keywords (best,
    last) only mean something inside the process that trained, so a file path is required.
    """
    key = f"--ckpt_path={path!r}"
    file = Path(path)
    if not file.is_file():
        raise UserError(no_checkpoint_file(path))
    try:
        checkpoint = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file; any of them means unreadable
        raise UserError(f"{key}: not a readable checkpoint ({unreadable(file, error)})") from None
    missing = [k for k in ("state_dict", "hyper_parameters") if not isinstance(checkpoint, dict) or k not in checkpoint]
    if missing:
        raise UserError(f"{key}: not a trainlab checkpoint (missing {', '.join(missing)})")
    hparams, weights = checkpoint["hyper_parameters"], checkpoint["state_dict"]
    if not isinstance(hparams, dict) or not isinstance(weights, dict):
        raise UserError(f"{key}: not a trainlab checkpoint (its hyper_parameters or state_dict is not a mapping)")
    unknown = sorted(k for k in hparams if not k.startswith("_") and k not in model_keys)
    if unknown:
        raise UserError(
            f"{key}: its model has hyperparameter(s) {', '.join(unknown)} that this trainlab's model does not take "
            "(written by another version of trainlab, or by another program)"
        )
    check_lightning_version(key, checkpoint.get("pytorch-lightning_version"))
    return checkpoint


def check_lightning_version(key: str, written_by) -> None:
    """A checkpoint from a newer Lightning than this one may hold state this one cannot restore."""
    import lightning
    from packaging.version import InvalidVersion, Version

    try:
        saved = Version(str(written_by))
    except InvalidVersion:
        raise UserError(f"{key}: not a Lightning checkpoint (its Lightning version is {written_by!r})") from None
    installed = Version(lightning.__version__)
    if saved.release[:2] > installed.release[:2]:
        raise UserError(
            f"{key}: written by Lightning {saved}, newer than this Lightning {installed}; "
            "upgrade Lightning (pip install -U lightning) to read it"
        )


def check_weights(key: str, saved: dict, model: torch.nn.Module) -> None:
    """The checkpoint's weights must be the ones the model built from its hyperparameters holds."""
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    given = {name: tuple(t.shape) for name, t in saved.items() if isinstance(t, torch.Tensor)}
    if given == expected:
        return
    differences = [name for name in sorted(expected.keys() | given.keys()) if expected.get(name) != given.get(name)]
    name = differences[0]
    raise UserError(
        f"{key}: its weights do not fit its model's hyperparameters ({name}: "
        f"{list(given[name]) if name in given else 'missing'} in the file, "
        f"{list(expected[name]) if name in expected else 'none'} in the model they describe); "
        "the file was altered or written by another version of trainlab"
    )


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
