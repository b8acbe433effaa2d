"""Crashes at the worst moments: a kill at every step of a checkpoint save, random kills
while saving, and a loss that turns NaN in the middle of a real run."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from transferlab.api import fine_tune
from transferlab.config import TrainConfig
from transferlab.models.factory import create_model
from transferlab.training.checkpoint import load_state
from transferlab.training.loop import Callback, NonFiniteLossError

CHECKPOINT_MODULE = load_state.__module__

# Runs in a fresh interpreter that imports the checkpoint module (and torch): for each
# crash point it forks, the fork saves state 2 over state 1 and SIGKILLs itself just before
# or just after its n-th file-system step (rename, link, unlink), and the parent then loads
# whatever is on disk. A fork that gets past every step exits normally.
_CRASH_POINTS = r"""
import importlib, json, os, shutil, signal, sys
ck = importlib.import_module(sys.argv[1])  # transferlab.training.checkpoint
import torch

work = sys.argv[2]
def state(k):  # every value in a state names its step, so a mix is visible
    return {"model": {"w": torch.full((256, 64), float(k)), "b": torch.full((64,), float(k))},
            "trainer": {"epoch": k, "history": [{"loss": 1.0 / k}] * k}}

def consistent(s):
    k = s["trainer"]["epoch"]
    return (all(float(v.min()) == float(v.max()) == k for v in s["model"].values())
            and len(s["trainer"]["history"]) == k, k)

STEPS = ("replace", "rename", "link", "unlink", "remove")
results = []
for n in range(1, 13):
    for when in ("before", "after"):
        folder = os.path.join(work, f"{when}-{n}")
        os.makedirs(folder)
        path = os.path.join(folder, "last.safetensors")
        ck.save_state(path, state(1))
        pid = os.fork()
        if pid == 0:
            count = [0]
            def wrap(name, real):
                def step(*a, **kw):
                    count[0] += 1
                    if count[0] == n and when == "before":
                        os.kill(os.getpid(), signal.SIGKILL)
                    out = real(*a, **kw)
                    if count[0] == n and when == "after":
                        os.kill(os.getpid(), signal.SIGKILL)
                    return out
                return step
            for name in STEPS:
                setattr(os, name, wrap(name, getattr(os, name)))
            ck.save_state(path, state(2))
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        killed = os.WIFSIGNALED(status)
        try:
            ok, k = consistent(ck.load_state(path))
            results.append({"point": f"{when} step {n}", "killed": killed, "step": k,
                            "consistent": ok, "error": None})
        except Exception as exc:
            results.append({"point": f"{when} step {n}", "killed": killed, "step": None,
                            "consistent": False, "error": f"{type(exc).__name__}: {exc}"})
        # a later save over whatever the crash left must work and load back whole
        ck.save_state(path, state(3))
        ok3, k3 = consistent(ck.load_state(path))
        results[-1]["next_save_ok"] = ok3 and k3 == 3
        if not killed:
            break
    if not killed:
        break
print(json.dumps(results))
"""


def test_a_kill_at_any_step_of_a_save_leaves_a_whole_checkpoint(tmp_path):
    """Either the previous checkpoint or the new one, never a mix, never unreadable."""
    run = subprocess.run(
        [sys.executable, "-c", _CRASH_POINTS, CHECKPOINT_MODULE, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)
    killed = [r for r in results if r["killed"]]
    assert len(killed) >= 2, results  # the save has at least a rename for each file
    assert [r for r in results if not (r["consistent"] and r["next_save_ok"])] == []
    assert killed[0]["step"] == 1  # killed before anything became visible: the old state
    assert not results[-1]["killed"] and results[-1]["step"] == 2  # a save that completes
    assert {r["step"] for r in killed} <= {1, 2}


_SAVE_FOREVER = r"""
import importlib, sys
ck = importlib.import_module(sys.argv[1])  # transferlab.training.checkpoint
import torch
k = int(sys.argv[3])
print("ready", flush=True)
while True:
    k += 1
    ck.save_state(sys.argv[2], {"w": torch.full((1024, 1024), float(k)), "epoch": k})
"""


@pytest.mark.slow
def test_random_sigkills_while_saving_never_break_the_checkpoint(tmp_path):
    """SIGKILL a process that saves 4 MB checkpoints back to back, at 12 random moments."""
    import random

    rng = random.Random(6)
    path = tmp_path / "last.safetensors"
    last = 0
    for _ in range(12):
        proc = subprocess.Popen(
            [sys.executable, "-c", _SAVE_FOREVER, CHECKPOINT_MODULE, str(path), str(last)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        if not path.exists():
            continue
        state = load_state(path)
        w = state["w"]
        assert float(w.min()) == float(w.max()) == state["epoch"]  # not a mix of two saves
        assert state["epoch"] >= last  # never older than what was on disk before
        last = state["epoch"]
    assert last > 0


class _Explode(Callback):
    """In epoch 2, make one group's weights infinite (as a runaway learning rate would)."""

    def __init__(self, group: str):
        self.group = group

    def on_batch_end(self, trainer, batch, num_batches, loss):
        if trainer.epoch == 1 and batch == 1:
            model = trainer.owner
            names = set(model.group(self.group).param_names)
            with torch.no_grad():
                for name, p in model.named_parameters():
                    if name in names:
                        p.mul_(float("inf"))
                        if p.grad is not None:
                            p.grad.fill_(1e30)


@pytest.mark.slow
def test_a_nan_loss_stops_the_run_keeps_the_last_good_checkpoint_and_names_the_group(
    tiny_data, tmp_path
):
    cfg = TrainConfig(
        data=str(tiny_data),
        strategy="finetune",
        train_top=1,
        epochs=3,
        batch_size=8,
        image_size=64,
        seed=3,
        out=str(tmp_path),
        name="nan",
        device="cpu",
    )
    probe = create_model(cfg.model, num_classes=4, weights="random")
    group = probe.group_names[-2]  # the top body group, trainable with train_top=1
    with pytest.raises(NonFiniteLossError) as info:
        fine_tune(cfg, progress=False, callbacks=[_Explode(group)])
    message = str(info.value)
    assert f"group {group!r}" in message and "epoch 2" in message
    assert "last good checkpoint is kept" in message
    run = tmp_path / "nan"
    state = load_state(run / "checkpoints" / "last.safetensors")
    assert state["trainer"]["epoch"] == 1  # the epoch before the explosion
    assert all(
        torch.isfinite(t).all()
        for t in state["model"].values()
        if torch.is_tensor(t) and t.is_floating_point()
    )
    assert not (run / "best.safetensors").exists()
    # resuming from that checkpoint (without the fault) finishes with finite weights
    resumed = fine_tune(resume=run, progress=False)
    assert len(resumed.history) == 3
    assert all(math.isfinite(r["train_loss"]) for r in resumed.history)
    assert all(torch.isfinite(p).all() for p in resumed.model.parameters())


def test_the_cli_reports_a_nan_loss_cleanly(tiny_data, tmp_path, capsys, monkeypatch):
    """``transferlab train`` turns the error into one line and exit status 2, no traceback."""
    from transferlab import api
    from transferlab.cli.main import main

    real = api.fine_tune

    def exploding(cfg=None, **kw):
        kw["callbacks"] = [*kw.get("callbacks", ()), _Explode("head")]
        return real(cfg, **kw)

    monkeypatch.setattr(api, "fine_tune", exploding)
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"image_size": 64}))
    sigterm = signal.getsignal(signal.SIGTERM)  # cmd_train installs its own handler
    try:
        rc = main(
            [
                "train",
                str(tiny_data),
                "--config",
                str(settings),
                "--strategy",
                "feature-extraction",
                "--epochs",
                "3",
                "--batch-size",
                "8",
                "--out",
                str(tmp_path),
                "--name",
                "nan-cli",
                "--device",
                "cpu",
            ]
        )
    finally:
        signal.signal(signal.SIGTERM, sigterm)
    err = capsys.readouterr().err
    assert rc == 2
    assert "error: loss became" in err and "group 'head'" in err
    assert "Traceback" not in err
    state = load_state(tmp_path / "nan-cli" / "checkpoints" / "last.safetensors")
    assert state["trainer"]["epoch"] == 1


class _Payload:
    """Unpickling this creates a folder: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_pickles_disguised_as_model_files_never_run(tmp_path):
    """A run's best.safetensors, a resumable checkpoint and weights files replaced by pickles
    that would create a folder when unpickled: each is refused and no code runs."""
    import pickle

    from transferlab.models.weights import WeightsUnavailableError
    from transferlab.runs import load_model, save_model
    from transferlab.training.checkpoint import CheckpointError, save_state

    marker = tmp_path / "pwned"
    evil = pickle.dumps({"state_dict": {"w": _Payload(marker)}})
    model = create_model("resnet18", num_classes=2, weights="random")
    run = tmp_path / "run"
    save_model(model, run / "best.safetensors")
    save_state(run / "checkpoints" / "last.safetensors", {"model": model.state_dict()})
    assert load_model(run) is not None  # the genuine files load

    (run / "best.safetensors").write_bytes(evil)
    with pytest.raises(Exception, match="(?i)safetensor|header|invalid|deserializ"):
        load_model(run)
    (run / "checkpoints" / "last.safetensors").write_bytes(evil)
    with pytest.raises(CheckpointError):
        load_state(run / "checkpoints" / "last.safetensors")
    for name in ("evil.pth", "evil.pt", "evil.bin"):
        (tmp_path / name).write_bytes(evil)
        with pytest.raises(WeightsUnavailableError, match="refusing to load"):
            create_model("resnet18", num_classes=2, weights=str(tmp_path / name))
    torch.save({"w": _Payload(marker)}, tmp_path / "evil.safetensors")
    with pytest.raises(Exception, match="(?i)safetensor|header|deserializ"):
        create_model("resnet18", num_classes=2, weights=str(tmp_path / "evil.safetensors"))
    assert not marker.exists()
