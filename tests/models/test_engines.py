"""Inference engines: resolution rules, the fp32 check, the ONNX export cache, cache keys."""

from __future__ import annotations

import pytest
import torch

from transferlab.data import build_transforms, load_splits
from transferlab.data.features import PilSource, cached_activations
from transferlab.models import engines
from transferlab.models.engines import (
    EngineUnavailableError,
    build_engine,
    engine_for,
    min_cosine,
    resolve_engine,
)
from transferlab.models.factory import create_model

SIZE = 64
needs_ort = pytest.mark.skipif(not engines.onnxruntime_available(),
                               reason="onnxruntime is in the [export] extra")


def small_model(seed: int = 0):
    torch.manual_seed(seed)
    model = create_model("tf_efficientnet_lite0", num_classes=4, weights="random")
    model.data_config["input_size"] = (3, SIZE, SIZE)
    return model.eval()


@pytest.fixture(scope="module")
def splits(tiny_data):
    return load_splits(tiny_data)


@pytest.fixture(scope="module")
def batch(splits):
    """A real batch of sample photos, as the extraction feeds it."""
    tf = build_transforms(small_model().data_config, train=False)
    return torch.stack([tf(__import__("PIL.Image").Image.open(p).convert("RGB"))
                        for p, _ in splits.val[:6]])


def test_auto_without_onnxruntime_says_what_it_chose(monkeypatch):
    monkeypatch.setattr(engines, "onnxruntime_available", lambda: False)
    monkeypatch.setattr(engines, "native_bf16", lambda: False)
    name, why = resolve_engine("auto")
    assert name == "torch"
    assert "onnxruntime not installed" in why and "bf16" in why
    monkeypatch.setattr(engines, "native_bf16", lambda: True)
    assert resolve_engine("auto")[0] == "torch-bf16"


def test_engines_named_explicitly_fail_clearly_when_they_cannot_run(monkeypatch):
    monkeypatch.setattr(engines, "native_bf16", lambda: False)
    with pytest.raises(EngineUnavailableError, match="avx512_bf16"):
        resolve_engine("torch-bf16")
    monkeypatch.setattr(engines, "onnxruntime_available", lambda: False)
    with pytest.raises(EngineUnavailableError, match=r"\[export\]"):
        resolve_engine("onnxruntime")
    with pytest.raises(ValueError, match="unknown engine"):
        resolve_engine("tensorrt")
    assert resolve_engine("onnxruntime", "cuda")[0] == "torch"  # the GPU path stays


@needs_ort
def test_onnxruntime_matches_fp32_and_exports_once(batch, tmp_path, monkeypatch):
    model = small_model()
    ref = build_engine(model.body, batch, engine="torch")(batch)
    ort = build_engine(model.body, batch, engine="onnxruntime", cache_dir=tmp_path)
    assert ort.name == "onnxruntime"
    out = ort(batch)
    assert out.shape == ref.shape
    assert min_cosine(out, ref) > 0.99999
    assert len(list((tmp_path / "onnx").glob("*.onnx"))) == 1

    def no_export(*a, **k):
        raise AssertionError("exported again")

    monkeypatch.setattr(engines, "export_onnx", no_export)
    again = build_engine(model.body, batch[:2], engine="onnxruntime", cache_dir=tmp_path)
    assert again.name == "onnxruntime"  # the cached export, another batch size
    other = small_model(seed=1)  # other weights: another file, never the stale one
    monkeypatch.undo()
    build_engine(other.body, batch, engine="onnxruntime", cache_dir=tmp_path)
    assert len(list((tmp_path / "onnx").glob("*.onnx"))) == 2


@needs_ort
def test_an_engine_that_disagrees_with_fp32_is_not_used(batch, tmp_path, monkeypatch):
    model = small_model()
    real = engines._ort_run

    def drifting(module, example, cache_dir):
        run = real(module, example, cache_dir)
        return lambda x: run(x) + 0.3 * torch.randn_like(run(x))

    monkeypatch.setattr(engines, "_ort_run", drifting)
    heard: list[str] = []
    engine = build_engine(model.body, batch, engine="onnxruntime", cache_dir=tmp_path,
                          log=heard.append)
    assert engine.name == "torch"
    assert heard and "not used" in heard[0] and "cosine" in heard[0]
    torch.testing.assert_close(engine(batch), build_engine(model.body, batch,
                                                           engine="torch")(batch))


@needs_ort
def test_features_of_different_engines_never_share_a_cache_entry(splits, tmp_path):
    model = small_model()
    tf = build_transforms(model.data_config, train=False)
    a = cached_activations(model, PilSource(splits.val, tf), engine="torch", cache_dir=tmp_path)
    b = cached_activations(model, PilSource(splits.val, tf), engine="onnxruntime",
                           cache_dir=tmp_path)
    assert not a.hit and not b.hit and a.path != b.path
    assert (a.engine, b.engine) == ("torch", "onnxruntime")
    assert min_cosine(a.tensor(), b.tensor()) > 0.99999
    again = cached_activations(model, PilSource(splits.val, tf), engine="onnxruntime",
                               cache_dir=tmp_path)
    assert again.hit and again.path == b.path
    report = b.report
    assert report.images == len(splits.val) and report.engine == "onnxruntime"
    assert report.decode_rate is not None and report.bottleneck in {"decode", "engine"}


@needs_ort
def test_a_served_model_builds_its_engine_once_until_its_weights_change(batch, tmp_path):
    model = small_model()
    first = engine_for(model, batch, engine="onnxruntime", cache_dir=tmp_path)
    assert engine_for(model, batch[:3], engine="onnxruntime", cache_dir=tmp_path) is first
    with torch.no_grad():
        model.head.weight.add_(1.0)  # the model trained on: a new export
    second = engine_for(model, batch, engine="onnxruntime", cache_dir=tmp_path)
    assert second is not first
    torch.testing.assert_close(second(batch), model(batch), atol=1e-4, rtol=1e-4)
