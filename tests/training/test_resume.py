"""A seeded CPU run interrupted and resumed ends with the same weights as an uninterrupted one."""

import pytest
from safetensors.torch import load_file

from transferlab.api import fine_tune, load_run_state
from transferlab.config import TrainConfig
from transferlab.training.checkpoint import CheckpointError, save_state
from transferlab.training.loop import Callback


class _KillAt(Callback):
    def __init__(self, phase: str, epoch: int):
        self.phase, self.epoch = phase, epoch

    def on_epoch_start(self, trainer):
        if trainer.phase == self.phase and trainer.epoch == self.epoch:
            raise KeyboardInterrupt(f"killed before {self.phase} epoch {self.epoch + 1}")


def _cfg(data, out, name):
    return TrainConfig(data=str(data), out=str(out), name=name, strategy="two-phase",
                       probe_epochs=3, epochs=2, train_top=1, batch_size=8, seed=7)


@pytest.mark.parametrize("phase,epoch", [("probe", 2), ("finetune", 1), ("finetune", 0)])
def test_resume_matches_uninterrupted_run(tiny_data, tmp_path, phase, epoch):
    full = fine_tune(_cfg(tiny_data, tmp_path, "full"), progress=False)
    with pytest.raises(KeyboardInterrupt):
        fine_tune(_cfg(tiny_data, tmp_path, "killed"), progress=False,
                  callbacks=[_KillAt(phase, epoch)])
    run_dir = tmp_path / "killed"
    last = run_dir / "checkpoints" / "last.safetensors"
    assert last.is_file()
    if phase == "probe":  # inside the head-only phase: the epoch checkpoint holds the head
        frozen = run_dir / "checkpoints" / "frozen.safetensors"
        assert last.stat().st_size * 50 < frozen.stat().st_size
    assert not (run_dir / "best.safetensors").exists()
    resumed = fine_tune(resume=run_dir, progress=False)
    a = load_file(str(full.run_dir / "best.safetensors"))
    b = load_file(str(resumed.run_dir / "best.safetensors"))
    assert a.keys() == b.keys()
    diffs = [k for k in a if not (a[k] == b[k]).all()]
    assert diffs == []
    assert [r["val_loss"] for r in full.history] == [r["val_loss"] for r in resumed.history]


def test_a_partial_checkpoint_refuses_frozen_weights_of_another_phase(tiny_data, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        fine_tune(_cfg(tiny_data, tmp_path, "killed"), progress=False,
                  callbacks=[_KillAt("probe", 2)])
    run_dir = tmp_path / "killed"
    state = load_run_state(run_dir)
    assert state["model"].keys() >= {"head.weight", "body.conv_stem.weight"}  # merged back
    save_state(run_dir / "checkpoints" / "frozen.safetensors", {"token": "other", "model": {}})
    with pytest.raises(CheckpointError, match="inconsistent"):
        load_run_state(run_dir)
