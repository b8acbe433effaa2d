"""A seeded CPU run interrupted and resumed ends with the same weights, the same history and
the same metrics files as an uninterrupted one, wherever it was interrupted."""

import csv
import hashlib
import json

import pytest
from safetensors.torch import load_file

from transferlab.api import fine_tune, load_run_state
from transferlab.config import TrainConfig
from transferlab.training.checkpoint import CheckpointError, save_state
from transferlab.training.loop import Callback


class _KillAt(Callback):
    """Interrupts before epoch ``epoch + 1`` of ``phase`` starts (0: at the phase's start)."""

    def __init__(self, phase: str, epoch: int):
        self.phase, self.epoch = phase, epoch

    def on_epoch_start(self, trainer):
        if trainer.phase == self.phase and trainer.epoch == self.epoch:
            raise KeyboardInterrupt(f"killed before {self.phase} epoch {self.epoch + 1}")


class _KillAfter(Callback):
    """Interrupts inside epoch ``epoch``'s end: its metrics row is written, its checkpoint not
    (user listeners run after the metrics logger and before the checkpoint)."""

    def __init__(self, phase: str, epoch: int):
        self.phase, self.epoch = phase, epoch

    def on_epoch_end(self, trainer, record):
        if trainer.phase == self.phase and record.epoch == self.epoch:
            raise KeyboardInterrupt(f"killed after {self.phase} epoch {self.epoch}")


def _cfg(data, out, name):
    # head_lr 0.05 makes the fine-tuning phase's first epoch its best and its second worse,
    # so patience 1 stops it there and the weights restored at the end are epoch 1's: a
    # resume that lost the best weights would end with epoch 2's instead.
    return TrainConfig(data=str(data), out=str(out), name=name, strategy="two-phase",
                       probe_epochs=3, epochs=3, train_top=1, batch_size=8, seed=7,
                       head_lr=0.05, patience=1)


def _metrics(run_dir):
    rows = json.loads((run_dir / "metrics.json").read_text())
    with open(run_dir / "metrics.csv", newline="") as fh:
        table = [(r["phase"], int(r["epoch"]), float(r["val_loss"])) for r in csv.DictReader(fh)]
    return rows, table


@pytest.fixture(scope="module")
def full(tiny_data, tmp_path_factory):
    result = fine_tune(_cfg(tiny_data, tmp_path_factory.mktemp("full"), "full"), progress=False)
    finetune = [r for r in result.history if r["phase"] == "finetune"]
    # the premise of the kill "after the best epoch": the best is not the last epoch
    assert [r["epoch"] for r in finetune] == [1, 2]
    assert finetune[0]["val_loss"] < finetune[1]["val_loss"]
    return result


def _assert_same_run(full, resumed):
    a = load_file(str(full.run_dir / "best.safetensors"))
    b = load_file(str(resumed.run_dir / "best.safetensors"))
    assert a.keys() == b.keys()
    assert [k for k in a if not (a[k] == b[k]).all()] == []
    key = [(r["phase"], r["epoch"], r["val_loss"]) for r in full.history]
    assert [(r["phase"], r["epoch"], r["val_loss"]) for r in resumed.history] == key
    rows, table = _metrics(resumed.run_dir)
    assert rows == resumed.history  # every row, the epochs before the interruption included
    assert table == [(r["phase"], r["epoch"], r["val_loss"]) for r in resumed.history]


# One fast case (interrupted after the best epoch of a phase, whose best weights must survive
# the resume); the other interruption points are slow.
KILLS = [
    pytest.param(_KillAt("finetune", 1), id="after-best-epoch"),
    pytest.param(_KillAt("probe", 2), id="mid-probe", marks=pytest.mark.slow),
    pytest.param(_KillAfter("probe", 2), id="row-written-not-checkpointed",
                 marks=pytest.mark.slow),
    pytest.param(_KillAt("finetune", 0), id="between-phases", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("kill", KILLS)
def test_resume_matches_uninterrupted_run(full, tiny_data, tmp_path, kill):
    with pytest.raises(KeyboardInterrupt):
        fine_tune(_cfg(tiny_data, tmp_path, "killed"), progress=False, callbacks=[kill])
    run_dir = tmp_path / "killed"
    last = run_dir / "checkpoints" / "last.safetensors"
    assert last.is_file()
    if kill.phase == "probe" and isinstance(kill, _KillAt):  # the epoch checkpoint: the head
        weights = [k for k in load_file(last) if ".weight" in k or ".bias" in k]
        assert weights and all("head." in k for k in weights), weights
    assert not (run_dir / "best.safetensors").exists()
    resumed = fine_tune(resume=run_dir, progress=False, device="cpu")  # a safe override
    _assert_same_run(full, resumed)


def test_resume_refuses_overrides_that_change_what_is_computed(tiny_data, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        fine_tune(_cfg(tiny_data, tmp_path, "killed"), progress=False,
                  callbacks=[_KillAt("probe", 1)])
    run_dir = tmp_path / "killed"
    before = (run_dir / "checkpoints" / "last.safetensors").read_bytes()
    with pytest.raises(ValueError, match=r"cannot change epochs, head_lr when resuming"):
        fine_tune(resume=run_dir, progress=False, epochs=9, head_lr=1.0)
    with pytest.raises(ValueError, match="pass no cfg"):
        fine_tune(_cfg(tiny_data, tmp_path, "other"), resume=run_dir, progress=False)
    assert (run_dir / "checkpoints" / "last.safetensors").read_bytes() == before


def _tree(run_dir):
    return {str(p.relative_to(run_dir)): (p.stat().st_mtime_ns,
                                          hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(run_dir.rglob("*")) if p.is_file()}


def test_resuming_a_completed_run_says_so_and_changes_nothing(full):
    before = _tree(full.run_dir)
    again = fine_tune(resume=full.run_dir, progress=False)
    assert _tree(full.run_dir) == before
    assert any("had already completed" in n for n in again.notes)
    assert again.history == full.history
    assert again.accuracy == pytest.approx(full.accuracy)


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
