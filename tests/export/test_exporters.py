"""Exported models give PyTorch's outputs (ONNX Runtime within 1e-4 on real photos)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from transferlab.cli.main import main
from transferlab.data import build_transforms, load_rgb
from transferlab.export.exporters import export_model
from transferlab.models.factory import create_model
from transferlab.runs import load_model

SAMPLE_VAL = Path(__file__).resolve().parents[2] / "src" / "transferlab" / "sample_data" / \
    "food4" / "val"


def _photos(n: int = 6) -> list[Path]:
    files = sorted(SAMPLE_VAL.rglob("*.jpg"))
    return files[:: max(1, len(files) // n)][:n]


def _batch(model, paths) -> torch.Tensor:
    tf = build_transforms(model.data_config, train=False)
    return torch.stack([tf(load_rgb(p)) for p in paths])


@torch.inference_mode()
def _torch_logits(model, x: torch.Tensor) -> np.ndarray:
    """Calibrated logits: what the exported graphs output (the temperature folded in)."""
    return (model.eval()(x) / model.temperature).numpy()


def _ort(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"input": x})[0]


def test_onnx_parity_efficientnet_lite0(trained_run, tmp_path):
    """EfficientNet-Lite has Conv2dSame (TF 'same' padding): exported by torch.export."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    result = export_model(trained_run, "onnx", tmp_path)
    model = load_model(trained_run)
    x = _batch(model, _photos(6))
    expected = _torch_logits(model, x)
    got = _ort(result.model_path, x.numpy())
    assert got.shape == expected.shape == (6, 4)
    assert np.abs(got - expected).max() < 1e-4
    single = _ort(result.model_path, x[:1].numpy())  # the batch axis is dynamic
    assert np.abs(single - expected[:1]).max() < 1e-4
    spec = json.loads(result.preprocessing_path.read_text())
    assert spec["classes"] == model.classes
    assert spec["model_file"] == "model.onnx" and spec["onnx"]["opset"] == 18
    # the run's fitted temperature is in the graph (and said so), not left for the caller
    assert model.temperature != 1.0 and spec["temperature"] == model.temperature
    assert "already divided by temperature" in spec["output"]
    with torch.inference_mode():
        raw = model(x).numpy()
    assert np.abs(got - raw).max() > 1e-3


def test_onnx_parity_resnet18_and_legacy_exporter(tmp_path):
    """A second family (BatchNorm + max-pool ResNet), through both exporters."""
    pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = create_model("resnet18", weights="random", classes=["a", "b", "c"]).eval()
    x = _batch(model, _photos(4))
    expected = _torch_logits(model, x)
    for exporter in ("legacy", "dynamo"):
        if exporter == "dynamo":
            pytest.importorskip("onnxscript")
        result = export_model(model, "onnx", tmp_path / exporter, exporter=exporter)
        got = _ort(result.model_path, x.numpy())
        assert np.abs(got - expected).max() < 1e-4, exporter


def test_torchscript_parity(trained_run, tmp_path):
    result = export_model(trained_run, "torchscript", tmp_path)
    model = load_model(trained_run)
    x = _batch(model, _photos(6))
    loaded = torch.jit.load(str(result.model_path))
    with torch.inference_mode():
        got = loaded(x).numpy()
    assert np.abs(got - _torch_logits(model, x)).max() < 1e-4
    spec = json.loads(result.preprocessing_path.read_text())
    assert spec["torchscript"]["method"] in {"script", "trace"}


def test_safetensors_export_reloads(trained_run, tmp_path):
    result = export_model(trained_run / "best.safetensors", "safetensors", tmp_path)
    assert [p.name for p in result.files] == ["model.safetensors", "model.json",
                                             "preprocessing.json"]
    a, b = load_model(result.model_path), load_model(trained_run)
    x = _batch(b, _photos(2))
    assert np.array_equal(_torch_logits(a, x), _torch_logits(b, x))


def _preprocess_from_json(spec: dict, path: Path) -> np.ndarray:
    """What a user of another runtime writes, from preprocessing.json alone (PIL + NumPy)."""
    resample = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}[spec["interpolation"]]
    image = Image.open(path).convert("RGB")
    w, h = image.size
    side = spec["resize_shorter_to"]
    size = (side, math.floor(h * side / w)) if w <= h else (math.floor(w * side / h), side)
    image = image.resize(size, resample)
    _, ch, cw = spec["input_size"]
    left, top = int(round((size[0] - cw) / 2.0)), int(round((size[1] - ch) / 2.0))
    image = image.crop((left, top, left + cw, top + ch))
    x = np.asarray(image, dtype=np.float32) * spec["scale"]
    x = (x - np.array(spec["mean"], np.float32)) / np.array(spec["std"], np.float32)
    return x.transpose(2, 0, 1)[None]


def test_preprocessing_json_is_enough_to_reproduce_inputs(trained_run, tmp_path):
    result = export_model(trained_run, "safetensors", tmp_path)
    spec = json.loads(result.preprocessing_path.read_text())
    model = load_model(trained_run)
    assert spec["resize_shorter_to"] == 256 and spec["input_size"] == [3, 224, 224]
    odd = tmp_path / "odd.png"  # a size that needs a real resize, portrait
    Image.open(_photos(1)[0]).convert("RGB").resize((301, 433)).save(odd)
    for path in [*_photos(3), odd]:
        ours = _batch(model, [path]).numpy()
        theirs = _preprocess_from_json(spec, path)
        assert np.abs(ours - theirs).max() < 1e-5


def test_cli_export(trained_run, tmp_path, capsys):
    assert main(["export", str(trained_run), "--format", "torchscript", "--out",
                 str(tmp_path / "ts")]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / "ts" / "model.torchscript.pt"),
                       str(tmp_path / "ts" / "preprocessing.json")]
    assert main(["export", str(tmp_path / "nothing-here")]) == 2
    assert "no trained model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["export", str(trained_run), "--format", "pickle"])
