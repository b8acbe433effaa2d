"""A seeded CPU run interrupted and resumed ends with the same weights as an uninterrupted one."""

import pytest
from safetensors.torch import load_file

from transferlab.api import fine_tune
from transferlab.config import TrainConfig
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
    assert (run_dir / "checkpoints" / "last.safetensors").is_file()
    assert not (run_dir / "best.safetensors").exists()
    resumed = fine_tune(resume=run_dir, progress=False)
    a = load_file(str(full.run_dir / "best.safetensors"))
    b = load_file(str(resumed.run_dir / "best.safetensors"))
    assert a.keys() == b.keys()
    diffs = [k for k in a if not (a[k] == b[k]).all()]
    assert diffs == []
    assert [r["val_loss"] for r in full.history] == [r["val_loss"] for r in resumed.history]
