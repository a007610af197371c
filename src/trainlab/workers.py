"""Long-lived worker processes for `tune --workers N` and `cv --workers N`: each owns one GPU when the
machine has GPUs (round robin when there are more workers than GPUs), else a share of the CPU's threads.

Workers are forked on a CPU-only machine (they start with Lightning already imported) and spawned when
there are GPUs (CUDA cannot be used in a forked child). Each worker claims its share once, at start."""

import multiprocessing
import os
import queue
import traceback

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
    (killed: a study's interrupted trials are retried by its next run) and its error is raised here.

    A worker that ends without handing back the job it took, whatever its exit code (killed by the OOM
    killer, or stopped by SIGTERM, which Lightning turns into a clean exit), costs only that job: the
    others go on with the remaining jobs, and WorkersLost is raised once they are done."""
    from trainlab.errors import WorkersLost

    gpus = gpu_count()
    method = "fork" if not gpus and "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    todo, done = context.Queue(), context.Queue()
    for item in enumerate(jobs):
        todo.put(item)
    processes = [
        context.Process(target=_serve, args=(share, function, todo, done))
        for share in shares(workers, gpus, os.cpu_count() or 1)
    ]
    for process in processes:
        todo.put(None)  # one end-of-work mark per worker
        process.start()
    results: dict[int, object] = {}
    reported = 0
    try:
        while len(results) < len(jobs):
            try:
                index, error, value = done.get(timeout=0.5)
            except queue.Empty:
                if any(p.is_alive() for p in processes):
                    continue
                try:  # every worker has ended: what they sent is in the pipe (a process flushes its queue as it
                    # exits; a killed one's unsent results are lost), so this wait is only for reading it
                    index, error, value = done.get(timeout=0.2)
                except queue.Empty:
                    lost = [i for i in range(len(jobs)) if i not in results]
                    codes = sorted({p.exitcode for p in processes if p.exitcode != 0})
                    raise WorkersLost(lost, codes) from None
            if error is not None:
                raise error
            results[index] = value
            while reported in results:  # in job order
                if on_result:
                    on_result(results[reported])
                reported += 1
    finally:
        for process in processes:  # SIGKILL: a worker blocked anywhere stops now
            if process.is_alive():
                process.kill()
            process.join()
    return [results[index] for index in range(len(jobs))]


def _serve(share: dict, function, todo, done) -> None:
    """A worker: claim its share, then run jobs until the end-of-work mark or its first error."""
    global _claimed
    _claimed = share
    import torch

    torch.set_num_threads(share["threads"])
    from trainlab.errors import Stopped

    try:
        while (item := todo.get()) is not None:
            index, job = item
            try:
                done.put((index, None, function(*job)))
            except Exception as error:
                done.put((index, _portable(error), None))
                return
    except Stopped as stop:  # a signal, in a job or between two: end without a result and without a traceback
        raise SystemExit(128 + stop.signum) from None  # (the command counts the job it held, if any, as lost)


def _portable(error: Exception) -> Exception:
    """The error as the main process can receive it: ours as they are, others with the worker's traceback."""
    from trainlab.errors import TrainingFailed, UserError

    if isinstance(error, UserError | TrainingFailed):
        return error
    return RuntimeError("a worker failed:\n" + "".join(traceback.format_exception(error)))


def device_overrides() -> dict:
    """Config overrides that pin this worker's runs to its GPU (none in the main process or on a CPU)."""
    if _claimed is None or _claimed["gpu"] is None:
        return {}
    return {"trainer.accelerator": "gpu", "trainer.devices": [_claimed["gpu"]]}
