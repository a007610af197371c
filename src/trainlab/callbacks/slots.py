"""The run directory of each unit of a pack (the folds of a packed `trainlab cv`, the trials of a tuning
population), as that unit's own fit would leave it: TensorBoard curves while the pack trains; after the
pack's test, metrics.json, config.yaml (the unit's own config: `trainlab test -c` it) and the tested model's
checkpoint (`write_unit` writes the last two for a unit that is not tested)."""

import copy
import io
from pathlib import Path

import lightning
import torch
import yaml
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger

from trainlab.callbacks.outputs import run_dir
from trainlab.io import write_bytes_atomic, write_json_atomic, write_text_atomic
from trainlab.models.module import MEMBER_SETTINGS


class SlotRuns(Callback):
    """Args: save_dir, name: the slots' runs are save_dir/name/<version>; versions: one per slot."""

    def __init__(self, save_dir: Path, name: str, versions: list[str]):
        self.save_dir, self.name, self.versions = Path(save_dir), name, list(versions)
        self.loggers: list[TensorBoardLogger] = []
        self.curves: list[dict] = [{} for _ in self.versions]  # per slot, {key: ([epoch, ...], [value, ...])}
        self.done: set[int] = set()  # units whose run directory is written already (a pruned trial's)
        self._pack_config: dict | None = None

    def slot_dir(self, slot: int) -> Path:
        return self.save_dir / self.name / self.versions[slot]

    def setup(self, trainer, pl_module, stage):
        if not self.loggers:
            self.loggers = [
                TensorBoardLogger(self.save_dir, name=self.name, version=v, default_hp_metric=False)
                for v in self.versions
            ]

    def on_train_epoch_end(self, trainer, pl_module):
        slots, epoch = pl_module.slot_evaluation, trainer.current_epoch
        for slot, values in enumerate(slots.values.get("val", [])):
            stopped = slots.stopped_epoch[slot]
            if slot not in self.done and (
                stopped is None or stopped >= epoch
            ):  # a slot's curves end where its own run would have
                self.loggers[slot].log_metrics({"epoch": epoch, **values}, step=epoch)
                for key, value in values.items():  # what read_curves would read back (1-based epochs)
                    epochs, found = self.curves[slot].setdefault(key, ([], []))
                    epochs.append(epoch + 1)
                    found.append(value)

    def on_test_end(self, trainer, pl_module):
        slots = pl_module.slot_evaluation
        config = yaml.safe_load((run_dir(trainer) / "config.yaml").read_text())
        for slot, values in enumerate(slots.values["test"]):
            if slot in self.done:
                continue
            epochs = slots.trained_epochs(slot, trainer.current_epoch)
            self.loggers[slot].log_metrics({k: v for k, v in values.items() if v is not None}, step=epochs)
            self.loggers[slot].finalize("success")
            write_json_atomic(self.slot_dir(slot) / "metrics.json", values)
            self.write_unit(trainer, pl_module, slot, config)

    def write_unit(self, trainer, pl_module, slot: int, config: dict | None = None) -> None:
        """The unit's config.yaml and checkpoints/model.ckpt (the weights it holds now). `config`: the pack's."""
        if config is None:  # read once: a population writes its units one by one
            if self._pack_config is None:
                self._pack_config = yaml.safe_load((run_dir(trainer) / "config.yaml").read_text())
            config = self._pack_config
        folder = self.slot_dir(slot)
        epochs = pl_module.slot_evaluation.trained_epochs(slot, trainer.current_epoch)
        data = trainer.datamodule.slot_data[slot % pl_module.hparams.slots]
        slot_config = self._slot_config(config, pl_module, data, slot)
        write_text_atomic(folder / "config.yaml", yaml.safe_dump(slot_config, sort_keys=False))
        checkpoint = self._slot_checkpoint(pl_module, data, slot, epochs)
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        write_bytes_atomic(folder / "checkpoints" / "model.ckpt", buffer.getbuffer())

    def _slot_config(self, config: dict, pl_module, data, slot: int) -> dict:
        config = copy.deepcopy(config)
        config["seed_everything"] = pl_module.member_seeds[pl_module.member_units.index(slot)]
        config["data"]["init_args"].update(member_folds=None, folds=data.hparams["folds"])
        settings = pl_module.unit_settings(slot)
        model = config["model"]["init_args"]
        model.update({k: settings[k] for k in ("seeds", "population", *MEMBER_SETTINGS)})
        logger = config["trainer"].get("logger")
        if isinstance(logger, dict):  # what runs with this config (a test of the checkpoint) lands inside the fold's
            logger.setdefault("init_args", {}).update(save_dir=str(self.slot_dir(slot)), name="runs", version=None)
        return config

    def _slot_checkpoint(self, pl_module, data, slot: int, epochs: int) -> dict:
        """A checkpoint of the slot alone: what `trainlab test/predict --ckpt_path` loads with its config."""
        members = [m for m, unit in enumerate(pl_module.member_units) if unit == slot]
        index = torch.tensor(members)
        state = {
            key: value.index_select(0, index.to(value.device)).clone() if key.startswith("net.") else value
            for key, value in pl_module.state_dict().items()
        }
        hparams = pl_module.unit_settings(slot)
        return {
            "epoch": epochs - 1,
            "global_step": pl_module.trainer.global_step,
            "pytorch-lightning_version": lightning.__version__,
            "state_dict": state,
            "hyper_parameters": hparams,
            "datamodule_hyper_parameters": dict(data.hparams),
            type(data).__qualname__: data.state_dict(),
            "seed": pl_module.member_seeds[members[0]],
        }
