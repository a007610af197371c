"""Packed cross-validation: every fold (and repeat) of a plan trained as one pack in one fit.

Each fold is a slot of the pack: its data is exactly what the fold's own run builds (its training folds,
the scaler fitted on them, its inner validation split, its held-out fold as the test split) and its
members start from the fold's own seed, so fold k of the pack trains as `trainlab cv --no-pack` trains
fold k alone. Each fold still gets its own run directory (TensorBoard curves, metrics.json, config.yaml,
checkpoints/model.ckpt) from the SlotRuns callback.
"""

import torch

from trainlab import tasks
from trainlab.errors import UserError
from trainlab.run import QUIET

# A pack whose estimated training memory exceeds this is split into several packs.
PACK_MEMORY_BYTES = 2 * 1024**3


def pack_overrides(plan, jobs: list[tuple[int, int]]) -> dict:
    """The pack run's config overrides: the plan's folds as slots, each fold's seed, quiet outputs."""
    folds = [
        {"k": plan.folds, "index": index, "seed": plan.seed + repeat, "stratify": plan.stratify}
        for repeat, index in jobs
    ]
    return {
        **QUIET,
        **plan.overrides,
        "run.test_after_fit": True,  # the held-out folds are the slots' test splits: they must be tested
        "run.doctor": None,
        "data.init_args.folds": list(plan.outer),
        "data.init_args.member_folds": folds,
        "model.init_args.seeds": [plan.init_seed + 1000 * repeat + index for repeat, index in jobs],
        "trainer.logger.init_args.save_dir": str(plan.cv_dir),
        "trainer.logger.init_args.name": "packs",
        "trainer.logger.init_args.version": f"pack_{jobs[0][0]}_{jobs[0][1]}",
    }


def run_pack(plan, jobs: list[tuple[int, int]]) -> list[dict]:
    """Fit the (repeat, fold) `jobs` of the plan as one pack; per fold, what run_fold returns for it."""
    if len(jobs) == 1:  # a pack of one fold is that fold's own run
        from trainlab.cv.run import run_fold

        return [run_fold(plan, *jobs[0])]
    from trainlab.callbacks.slots import SlotRuns
    from trainlab.lightning_cli import override_args, run_lightning_cli
    from trainlab.workers import device_overrides

    names = [plan.run_name(repeat, index) for repeat, index in jobs]
    runs = SlotRuns(plan.cv_dir, "folds", names)
    overrides = {**pack_overrides(plan, jobs), **device_overrides()}
    cli = run_lightning_cli(["fit", "-c", str(plan.base), *override_args(overrides)], [runs])
    module, data = cli.model, cli.datamodule
    slots = module.slot_evaluation
    results = []
    for slot, (repeat, index) in enumerate(jobs):
        part = slots.predictions[slot]
        scores = part["scores"]
        prediction = tasks.predicted_labels(plan.task, torch.from_numpy(scores)).numpy()
        rows = {
            "dataset_index": data.slot_data[slot].split_indices["test"],
            "scores": scores,
            "prediction": prediction,
            "target": part["target"],
        }
        if plan.task != "regression":
            rows["prediction_label"] = data.labels(prediction.astype(int).tolist())
            rows["target_label"] = data.labels(part["target"].astype(int).tolist())
        results.append(
            {
                "repeat": repeat,
                "fold": index,
                "run_dir": str(runs.slot_dir(slot)),
                "metrics": dict(slots.values["test"][slot]),
                "predictions": rows,
                "curves": runs.curves[slot],
            }
        )
    return results


def plan_packs(plan, jobs: list[tuple[int, int]], packs: int = 1, cli=None) -> list[list[tuple[int, int]]]:
    """The jobs cut into packs: at least `packs` (one per worker), more where one would exceed the memory
    budget, and apart where folds differ in shape (a file's one-hot width). A config that asks for several
    devices is refused: a pack trains on one. `cli`: the plan's config, built (else it is built here)."""
    from trainlab.lightning_cli import build_config

    cli = cli or build_config(plan.base, plan.overrides, str(plan.base))
    check_one_device(cli.config_init.get("trainer", {}))
    groups: dict[int, list] = {}
    for job, width in zip(jobs, fold_widths(plan, jobs, cli.datamodule), strict=True):
        groups.setdefault(width, []).append(job)
    result = []
    for width, group in groups.items():
        most = max(1, PACK_MEMORY_BYTES // member_bytes(cli.datamodule, cli.model, width))
        count = min(len(group), max(packs, -(-len(group) // most)))
        result += [group[i::count] for i in range(count)]
    return [sorted(pack) for pack in result]


def fold_widths(plan, jobs, data) -> list[int]:
    """Each fold's number of input features (the same for generated data; a file's one-hot columns can
    differ when a category is missing from a fold's training rows)."""
    from trainlab.data.files import FileDataModule

    if not isinstance(data, FileDataModule):
        return [data.num_features] * len(jobs)
    folds = pack_overrides(plan, jobs)["data.init_args.member_folds"]
    probe = type(data)(**{**data.init_kwargs(), "folds": list(plan.outer), "member_folds": folds})
    return probe.slot_feature_counts()


def member_bytes(data, model, width: int) -> int:
    """A rough upper bound of one member's training memory: its data copy, parameters with gradient,
    optimizer state and best copy, and a batch's activations."""
    n = len(data.load_arrays()[1])
    parameters = model.net.flat.shape[1]
    hidden = sum(model.hparams.hidden_dims)
    return 4 * (n * (width + 1) + 5 * parameters * model.hparams.ensemble + 4 * data.batch_size * hidden)


def check_one_device(trainer: dict) -> None:
    devices, strategy = trainer.get("devices", "auto"), trainer.get("strategy", "auto")
    if isinstance(devices, list):
        several = len(devices) > 1
    elif isinstance(devices, str) and devices != "auto":
        several = "," in devices.strip(",") or devices.strip() == "-1" or (devices.isdigit() and int(devices) > 1)
    else:
        several = isinstance(devices, int) and (devices > 1 or devices == -1)
    if several or (isinstance(strategy, str) and strategy.startswith("ddp")):
        raise UserError(
            f"trainer.devices={devices}, trainer.strategy={strategy}: packed folds train on one device; "
            "use --workers N to run packs side by side, or --no-pack for one multi-device fit per fold"
        )
