"""Export a trained model for other runtimes, with its preprocessing written beside it.

A model file alone is not enough to use a classifier: the caller must also resize, crop and
normalise exactly as in training and map output indices to class names. So every export
writes ``preprocessing.json`` next to the model (see :func:`preprocessing_spec`).

| format        | file                  | loads with                                         |
|---------------|-----------------------|----------------------------------------------------|
| ``onnx``      | ``model.onnx``        | ONNX Runtime, TensorRT, OpenVINO, ... (batch axis  |
|               |                       | dynamic, 224x224 fixed)                            |
| ``torchscript``| ``model.torchscript.pt``| ``torch.jit.load`` (no transferlab or timm needed)|
| ``safetensors``| ``model.safetensors`` + ``model.json`` | :func:`transferlab.runs.load_model`     |

ONNX uses PyTorch's ``torch.export``-based exporter (the default since PyTorch 2.9, needs the
``onnxscript`` package) at opset 18; ``exporter="legacy"`` selects the TorchScript-based one,
which PyTorch deprecates. Both handle timm's ``Conv2dSame`` (TensorFlow "same" padding in
EfficientNet-Lite): the input size is fixed at export, so its padding is a constant.
Outputs are logits; apply softmax for probabilities. A run's fitted temperature T
(temperature scaling, :mod:`transferlab.inspect.calibration`) is folded into the ONNX and
TorchScript graphs (their output is ``logits / T``, so softmax of it gives the calibrated
probabilities) and recorded in ``preprocessing.json`` as ``temperature`` (already applied);
a safetensors export keeps it in ``model.json``, where :func:`transferlab.runs.load_model`
reads it.
"""

from __future__ import annotations

import json
import math
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..catalog import DEFAULT_OPSET, EXPORT_FORMATS
from ..models.factory import TransferModel

FORMATS = EXPORT_FORMATS
FILES = {"onnx": "model.onnx", "torchscript": "model.torchscript.pt",
         "safetensors": "model.safetensors"}
INPUT_NAME, OUTPUT_NAME = "input", "logits"


@dataclass
class ExportResult:
    format: str
    model_path: Path
    preprocessing_path: Path

    @property
    def files(self) -> list[Path]:
        extra = [self.model_path.with_suffix(".json")] if self.format == "safetensors" else []
        return [self.model_path, *extra, self.preprocessing_path]


def preprocessing_spec(model: TransferModel, model_file: str | None = None) -> dict:
    """What a caller must do to an RGB image before the model, and how to read its output.

    Evaluation preprocessing: resize the shorter side to ``resize_shorter_to`` with
    ``interpolation``, centre-crop ``input_size[1:]``, scale to [0, 1], subtract ``mean``
    and divide by ``std`` per channel, NCHW float32.
    """
    cfg = model.data_config
    _, height, width = (int(v) for v in cfg["input_size"])
    crop_pct = float(cfg.get("crop_pct") or 1.0)
    classes = list(model.classes or [str(i) for i in range(model.head_config.num_classes or 0)])
    return {
        "format": "transferlab-preprocessing/1",
        "model_file": model_file,
        "model_name": model.model_name,
        "classes": classes,
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "output": "logits, shape (batch, classes): apply softmax for probabilities",
        "temperature": float(getattr(model, "temperature", 1.0)),
        "input_size": [3, height, width],
        "layout": "NCHW float32, RGB",
        "color": "RGB (convert grayscale / RGBA / CMYK to RGB first)",
        "interpolation": cfg["interpolation"],
        "crop_pct": crop_pct,
        "crop_mode": cfg.get("crop_mode", "center"),
        "resize_shorter_to": math.floor(min(height, width) / crop_pct),
        "scale": 1 / 255,
        "mean": [float(v) for v in cfg["mean"]],
        "std": [float(v) for v in cfg["std"]],
    }


def _load(source: str | Path | TransferModel) -> tuple[TransferModel, Path | None]:
    if isinstance(source, TransferModel):
        return source, None
    from ..runs import load_model

    path = Path(source)
    return load_model(path), path if path.is_dir() else path.parent


class _Temperature(nn.Module):
    """``logits / T``: temperature scaling as part of the graph."""

    def __init__(self, temperature: float) -> None:
        super().__init__()
        self.register_buffer("inverse", torch.tensor(1.0 / temperature))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.inverse


def _plain(model: TransferModel) -> nn.Module:
    """The network only (body, head, then the run's temperature): no Python-side metadata
    for exporters to trip on."""
    temperature = float(getattr(model, "temperature", 1.0))
    parts = [model.body, model.head] + ([_Temperature(temperature)] if temperature != 1.0
                                        else [])
    return nn.Sequential(*parts).eval()


def _export_onnx(model: TransferModel, path: Path, *, opset: int, exporter: str) -> None:
    net = _plain(model)
    _, h, w = (int(v) for v in model.data_config["input_size"])
    example = torch.zeros(2, 3, h, w)
    if exporter == "dynamo":
        try:
            import onnxscript  # noqa: F401
        except ImportError as exc:
            raise ValueError("ONNX export needs the onnxscript package: pip install onnxscript "
                             "(or pass exporter='legacy' / --exporter legacy)") from exc
        big = sum(p.numel() * p.element_size() for p in net.parameters()) > 1.8 * 2**30
        batch = torch.export.Dim("batch", min=1, max=65536)
        torch.onnx.export(net, (example,), str(path), dynamo=True, opset_version=opset,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_shapes=({0: batch},), external_data=big, verbose=False)
    elif exporter == "legacy":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=DeprecationWarning)
            warnings.simplefilter("ignore", category=FutureWarning)
            torch.onnx.export(net, (example,), str(path), dynamo=False, opset_version=opset,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
    else:
        raise ValueError(f"unknown ONNX exporter {exporter!r}; choose dynamo or legacy")


def _export_torchscript(model: TransferModel, path: Path) -> str:
    """Scripted when the backbone allows it (any input size), else traced at the model's size."""
    net = _plain(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=FutureWarning)
        try:
            module = torch.jit.script(net)
            how = "script"
        except Exception:
            _, h, w = (int(v) for v in model.data_config["input_size"])
            module = torch.jit.trace(net, torch.zeros(1, 3, h, w), check_trace=False)
            how = "trace"
        torch.jit.save(module, str(path))
    return how


def export_model(source: str | Path | TransferModel, format: str = "onnx", out: str | Path |
                 None = None, *, opset: int = DEFAULT_OPSET, exporter: str = "dynamo"
                 ) -> ExportResult:
    """Write ``source`` (a run folder, its ``best.safetensors``, or a model) as ``format``.

    ``out`` is a folder (default: ``RUN/export``); it receives the model file and
    ``preprocessing.json``. Returns the paths written.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
    model, run_dir = _load(source)
    if out is None:
        if run_dir is None:
            raise ValueError("give an output folder (out=) when exporting a model object")
        out = run_dir / "export"
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    model = model.cpu().eval()
    model_path = out / FILES[format]
    spec = preprocessing_spec(model, model_path.name)
    if format in {"onnx", "torchscript"}:
        spec["output"] = ("calibrated logits (already divided by temperature), shape "
                          "(batch, classes): apply softmax for probabilities")
    else:
        spec["output"] = ("logits, shape (batch, classes): divide by temperature, then apply "
                          "softmax for calibrated probabilities")
    if format == "onnx":
        _export_onnx(model, model_path, opset=opset, exporter=exporter)
        spec["onnx"] = {"opset": opset, "exporter": exporter, "dynamic_axes": {"batch": 0}}
    elif format == "torchscript":
        spec["torchscript"] = {"method": _export_torchscript(model, model_path)}
    else:
        from ..runs import save_model

        source_file = None if run_dir is None else Path(source)
        if source_file is not None and source_file.is_dir():
            source_file = source_file / "best.safetensors"
        lean = source_file is not None and source_file.is_file() and "frozen" in json.loads(
            source_file.with_suffix(".json").read_text(encoding="utf-8"))
        if source_file is not None and source_file.is_file() and not lean:
            shutil.copyfile(source_file, model_path)  # byte-identical weights and sidecar
            shutil.copyfile(source_file.with_suffix(".json"), model_path.with_suffix(".json"))
        else:  # a lean run's export is self-contained: every weight, no reference
            extra = {}
            if source_file is not None:
                sidecar = json.loads(source_file.with_suffix(".json").read_text("utf-8"))
                extra = {k: v for k, v in sidecar.items()
                         if k not in model.describe() and k not in {"format", "frozen"}}
            save_model(model, model_path, extra=extra)
    pre_path = out / "preprocessing.json"
    pre_path.write_text(json.dumps(spec, indent=1), encoding="utf-8")
    return ExportResult(format, model_path, pre_path)
