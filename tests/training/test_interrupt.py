"""Real interruptions of the CLI: SIGKILL mid-epoch and SIGINT, then --resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

ARGS = ["--strategy", "finetune", "--train-top", "1", "--epochs", "3", "--batch-size", "4",
        "--seed", "3", "--patience", "10"]


def _cli(*args, **kw):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "transferlab.cli.main", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _wait_for(path: Path, predicate, proc, timeout=600.0):  # generous: a loaded machine
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if path.is_file():
            events = _events(path)
            if predicate(events):
                return events
        if proc.poll() is not None:
            raise AssertionError(f"the run ended early: {proc.communicate()}")
        time.sleep(0.05)
    raise AssertionError("timed out waiting for training events")


def _mid_second_epoch(events):
    return any(e["event"] == "batch_end" and e["epoch"] == 2 and e["batch"] >= 2 for e in events)


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches(tiny_data, tmp_path):
    ref = _cli("train", str(tiny_data), *ARGS, "--out", str(tmp_path), "--name", "ref")
    out, err = ref.communicate(timeout=600)
    assert ref.returncode == 0, err

    proc = _cli("train", str(tiny_data), *ARGS, "--out", str(tmp_path), "--name", "victim")
    _wait_for(tmp_path / "victim" / "events.jsonl", _mid_second_epoch, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    run = tmp_path / "victim"
    assert not (run / "best.safetensors").exists()
    state = json.loads((run / "checkpoints" / "last.json").read_text())
    assert state["state"]["trainer"]["epoch"] == 1  # the last completed epoch

    resumed = _cli("train", "--resume", str(run))
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    a = load_file(str(tmp_path / "ref" / "best.safetensors"))
    b = load_file(str(run / "best.safetensors"))
    assert [k for k in a if not (a[k] == b[k]).all()] == []


def _ignore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# 40 epochs, the signal comes in the second: the run cannot end before it arrives.
LONG = [*ARGS[:ARGS.index("--epochs") + 1], "40", *ARGS[ARGS.index("--epochs") + 2:]]


@pytest.mark.parametrize("inherited", ["default", "ignored"])
def test_sigint_keeps_the_last_epoch_and_says_how_to_resume(tiny_data, tmp_path, inherited):
    # "ignored": started like a background job of a non-interactive shell, which inherits
    # SIGINT ignored; the CLI must reinstate it.
    settings = tmp_path / "settings.json"  # small images: quick epochs
    settings.write_text(json.dumps({"image_size": 64}))
    proc = _cli("train", str(tiny_data), *LONG, "--config", str(settings), "--out",
                str(tmp_path), "--name", "int",
                preexec_fn=_ignore_sigint if inherited == "ignored" else None)
    try:
        # inside epoch 2: epoch 1's checkpoint is written
        _wait_for(tmp_path / "int" / "events.jsonl",
                  lambda events: any(e["event"] == "batch_end" and e["epoch"] == 2
                                     for e in events), proc)
        assert proc.poll() is None, "the run ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:  # the signal was lost: do not leave the run behind
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "--resume" in err and str(tmp_path / "int") in err
    assert (tmp_path / "int" / "checkpoints" / "last.safetensors").is_file()
    assert not (tmp_path / "int" / "best.safetensors").exists()
    ends = [e for e in _events(tmp_path / "int" / "events.jsonl") if e["event"] == "epoch_end"]
    assert 1 <= len(ends) < 40


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
