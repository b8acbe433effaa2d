"""Checkpoints: nested state round-trips through safetensors + JSON; torn saves are detected."""

import json

import pytest
import torch

from transferlab.training.checkpoint import CheckpointError, load_state, save_state


def test_optimizer_state_round_trip(tmp_path):
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(2, 4)).sum().backward()
    opt.step()
    state = {"model": model.state_dict(), "optimizer": opt.state_dict(),
             "history": [{"loss": float("inf"), "epoch": 1}], "best": float("nan")}
    save_state(tmp_path / "ck.safetensors", state)
    back = load_state(tmp_path / "ck.safetensors")
    assert torch.equal(back["model"]["weight"], model.weight)
    assert back["history"][0]["loss"] == float("inf") and back["best"] != back["best"]
    opt2 = torch.optim.AdamW(torch.nn.Linear(4, 3).parameters(), lr=1e-3)
    opt2.load_state_dict(back["optimizer"])
    exp = opt.state_dict()["state"][0]["exp_avg"]
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], exp)


def test_torn_or_foreign_checkpoints_are_refused(tmp_path):
    path = tmp_path / "ck.safetensors"
    save_state(path, {"w": torch.ones(3)})
    with open(path, "ab") as fh:  # a save that was cut off / changed underneath
        fh.write(b"\0" * 10)
    with pytest.raises(CheckpointError, match="torn"):
        load_state(path)
    (tmp_path / "x.json").write_text(json.dumps({"format": "pickle"}))
    (tmp_path / "x.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError, match="not a transferlab checkpoint"):
        load_state(tmp_path / "x.safetensors")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_state(tmp_path / "missing.safetensors")


def test_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ck.safetensors"
    save_state(path, {"w": torch.ones(3)})
    import transferlab.training.checkpoint as ck

    def boom(tensors, filename):
        with open(filename, "wb") as fh:
            fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(ck, "save_file", boom)
    with pytest.raises(OSError):
        save_state(path, {"w": torch.zeros(3)})
    monkeypatch.undo()
    assert torch.equal(load_state(path)["w"], torch.ones(3))
    assert not list(tmp_path.glob(".*.tmp"))
