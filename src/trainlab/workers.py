"""Long-lived worker processes for `tune --workers N` and `cv --workers N`: each owns one GPU when the
machine has GPUs (round robin when there are more workers than GPUs), else a share of the CPU's threads.

Workers are forked on a CPU-only machine (they start with Lightning already imported) and spawned when
there are GPUs (CUDA cannot be used in a forked child). Each worker claims its share once, at start."""

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

_claimed: dict | None = None  # this worker process's share, once claimed


def shares(workers: int, gpus: int, cpus: int) -> list[dict]:
    """Per worker: the torch threads it uses and the GPU it owns (None without GPUs)."""
    threads = max(1, cpus // workers)
    return [{"threads": threads, "gpu": index % gpus if gpus else None} for index in range(workers)]


def gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def pool(workers: int) -> ProcessPoolExecutor:
    """A pool of `workers` processes, each of which claims one share when it starts."""
    gpus = gpu_count()
    method = "fork" if not gpus and "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    queue = context.Queue()
    for share in shares(workers, gpus, os.cpu_count() or 1):
        queue.put(share)
    return ProcessPoolExecutor(workers, mp_context=context, initializer=_claim, initargs=(queue,))


def _claim(queue) -> None:
    global _claimed
    _claimed = queue.get()
    import torch

    torch.set_num_threads(_claimed["threads"])


def device_overrides() -> dict:
    """Config overrides that pin this worker's runs to its GPU (none in the main process or on a CPU)."""
    if _claimed is None or _claimed["gpu"] is None:
        return {}
    return {"trainer.accelerator": "gpu", "trainer.devices": [_claimed["gpu"]]}


def claimed() -> dict | None:
    return _claimed
