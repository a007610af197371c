"""Long-lived worker processes for `tune --workers N` and `cv --workers N`: each owns one GPU when the
machine has GPUs (round robin when there are more workers than GPUs), else a share of the CPU's threads.

Workers are forked on a CPU-only machine (they start with Lightning already imported) and spawned when
there are GPUs (CUDA cannot be used in a forked child). Each worker claims its share once, at start."""

import multiprocessing
import os
import time

_claimed: dict | None = None  # this worker process's share, once claimed


def shares(workers: int, gpus: int, cpus: int) -> list[dict]:
    """Per worker: the torch threads it uses and the GPU it owns (None without GPUs)."""
    threads = max(1, cpus // workers)
    return [{"threads": threads, "gpu": index % gpus if gpus else None} for index in range(workers)]


def gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def run_all(workers: int, function, jobs: list[tuple], on_result=None) -> list:
    """function(*job) for every job, in `workers` processes; the results in job order (`on_result` sees
    each as soon as it and those before it are done). The first job to raise stops the others at once
    (a study's interrupted trials are retried by its next run) and its error is raised here."""
    gpus = gpu_count()
    method = "fork" if not gpus and "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    queue = context.Queue()
    for share in shares(workers, gpus, os.cpu_count() or 1):
        queue.put(share)
    with context.Pool(workers, initializer=_claim, initargs=(queue,)) as pool:
        pending = [pool.apply_async(function, job) for job in jobs]
        results = []
        while len(results) < len(pending):
            failed = next((r for r in pending if r.ready() and not r.successful()), None)
            if failed is not None:
                pool.terminate()
                failed.get()  # raises the job's error
            while len(results) < len(pending) and pending[len(results)].ready():
                results.append(pending[len(results)].get())
                if on_result:
                    on_result(results[-1])
            time.sleep(0.05)
    queue.close()
    return results


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
