"""Inference engines: how a frozen module runs forward on the CPU.

Every frozen forward pass (feature and activation extraction, evaluation of a model that no
longer trains, prediction) goes through :func:`build_engine`, which returns a callable
``float32 NCHW batch -> float32 output``. Engines:

===============  ==========================================================================
``torch``        PyTorch eager, fp32, channels_last (the reference)
``torch-bf16``   PyTorch with CPU bfloat16 autocast; only where the CPU has native bf16
                 (``avx512_bf16`` or ``amx_bf16``): emulated bf16 is slower than fp32
``onnxruntime``  the module exported to ONNX once (cached on disk by the module's weights,
                 the input resolution and the exporter) and run by ONNX Runtime's CPU
                 provider; needs the ``[export]`` extra
===============  ==========================================================================

``auto`` follows a documented rule rather than a timing taken at run time (a timing on a
machine shared with other jobs is noise, and it would cost every cold run seconds):
ONNX Runtime when it is installed, otherwise bf16 where the CPU has it natively, otherwise
PyTorch fp32. ``benchmarks/engines.py`` measures the rule's premise (ONNX Runtime 3-5x
PyTorch fp32 on this project's CPU).

Every engine other than ``torch`` is checked on the first real batch against PyTorch fp32:
if the cosine similarity of any output row falls below :data:`MIN_COSINE`, the engine is not
used, the caller's ``log`` hears why, and PyTorch fp32 runs instead. On a GPU the existing
path runs (bf16 autocast, channels_last) whatever the engine asked for.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..catalog import ENGINES  # noqa: F401 (re-exported)

MIN_COSINE = 0.999  # the smallest per-row cosine similarity to fp32 PyTorch that is accepted
ONNX_OPSET = 18


class EngineUnavailableError(ValueError):
    """An engine that was asked for by name cannot run here (missing package, no native bf16)."""


def check_engine(name: str) -> str:
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
    return name


def native_bf16() -> bool:
    """True when the CPU computes bf16 in hardware (``avx512_bf16`` / ``amx_bf16``)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def onnxruntime_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx"))


def resolve_engine(requested: str, device: torch.device | str = "cpu") -> tuple[str, str]:
    """(engine name, why) for ``requested`` on ``device``, before any batch is seen.

    Raises :class:`EngineUnavailableError` when an engine named explicitly cannot run here.
    """
    check_engine(requested)
    device = torch.device(device)
    if device.type != "cpu":
        return "torch", f"{device.type}: the GPU path (bf16 autocast, channels_last)"
    if requested == "torch":
        return "torch", "asked for"
    if requested == "torch-bf16":
        if not native_bf16():
            raise EngineUnavailableError(
                "engine torch-bf16 needs a CPU with native bf16 (avx512_bf16 or amx_bf16); "
                "this CPU has neither (emulated bf16 is slower than fp32): use --engine torch "
                "or --engine onnxruntime")
        return "torch-bf16", "asked for"
    if requested == "onnxruntime":
        if not onnxruntime_available():
            raise EngineUnavailableError(
                "engine onnxruntime needs the [export] extra: pip install 'transferlab[export]'")
        return "onnxruntime", "asked for"
    if onnxruntime_available():
        return "onnxruntime", "auto: ONNX Runtime is installed"
    if native_bf16():
        return "torch-bf16", "auto: onnxruntime not installed; the CPU has native bf16"
    return "torch", ("auto: onnxruntime not installed (pip install 'transferlab[export]') and "
                     "no native bf16 on this CPU")


def engine_tag(name: str, device: torch.device | str = "cpu") -> str:
    """What goes into a cache key: outputs of different engines never share an entry."""
    if torch.device(device).type == "cuda":
        return "bf16-autocast"
    return {"torch": "fp32", "torch-bf16": "cpu-bf16-autocast"}.get(name, name)


# -- engines ------------------------------------------------------------------------------
@dataclass
class Engine:
    """A frozen module's forward: ``engine(x)`` with x a float32 NCHW batch on ``device``."""

    name: str
    device: torch.device
    run: Callable[[torch.Tensor], torch.Tensor]
    notes: list[str] = field(default_factory=list)

    @property
    def tag(self) -> str:
        return engine_tag(self.name, self.device)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x)


def _torch_run(module: nn.Module, device: torch.device, bf16: bool
               ) -> Callable[[torch.Tensor], torch.Tensor]:
    if device.type == "cuda":
        autocast = torch.autocast("cuda", dtype=torch.bfloat16)
    elif bf16:
        autocast = torch.autocast("cpu", dtype=torch.bfloat16)
    else:
        autocast = torch.autocast(device.type, enabled=False)

    def run(x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), autocast:
            return module(x).float()

    return run


def module_fingerprint(module: nn.Module) -> str:
    from ..utils import module_digest

    return module_digest(module)


def onnx_path(module: nn.Module, shape: tuple[int, ...], cache_dir: str | Path | None) -> Path:
    """Where the ONNX export of ``module`` for inputs of ``shape[1:]`` is cached."""
    from ..utils import default_cache_dir

    h = hashlib.sha256(json.dumps({"opset": ONNX_OPSET, "torch": torch.__version__,
                                   "class": type(module).__name__,
                                   "shape": list(shape[1:])}).encode())
    h.update(module_fingerprint(module).encode())
    return Path(cache_dir or default_cache_dir()) / "onnx" / f"{h.hexdigest()[:32]}.onnx"


def export_onnx(module: nn.Module, example: torch.Tensor, path: Path) -> Path:
    """Export ``module`` (eval mode, batch axis dynamic) to ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".onnx", dir=path.parent)
    os.close(fd)
    module = module.eval()
    # TorchScript-based exporter: a frozen convolutional body exports in about a second,
    # several times faster than the dynamo exporter, with the same graph for ONNX Runtime.
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (example[:1].contiguous().float(),), tmp, dynamo=False,
                              opset_version=ONNX_OPSET, input_names=["x"],
                              output_names=["y"],
                              dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = min(torch.get_num_threads(), len(os.sched_getaffinity(0)))
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _ort_run(module: nn.Module, example: torch.Tensor, cache_dir) -> Callable:
    path = onnx_path(module, tuple(example.shape), cache_dir)
    if not path.is_file():
        export_onnx(module, example, path)
    session = _session(path)

    def run(x: torch.Tensor) -> torch.Tensor:
        data = x.detach().cpu().float().contiguous().numpy()
        return torch.from_numpy(session.run(None, {"x": data})[0])

    return run


# ONNX Runtime sessions that passed the fp32 check, by export file (which names the weights,
# the input size and the opset): a run's train and val extractions share one session.
_CHECKED: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], str]] = {}


def min_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Smallest per-row cosine similarity between two outputs of the same batch."""
    a, b = a.reshape(len(a), -1).double(), b.reshape(len(b), -1).double()
    return float(torch.nn.functional.cosine_similarity(a, b, dim=1, eps=1e-12).min())


def build_engine(module: nn.Module, example: torch.Tensor, *, engine: str = "auto",
                 device: torch.device | str = "cpu", cache_dir: str | Path | None = None,
                 log: Callable[[str], None] | None = None,
                 reference: torch.Tensor | None = None) -> Engine:
    """An engine for the frozen, eval-mode ``module``, checked on the real batch ``example``.

    ``reference`` is the fp32 PyTorch output for ``example`` when the caller has it already.
    """
    device = torch.device(device)
    name, why = resolve_engine(engine, device)
    module.eval()
    if device.type == "cpu":
        module.to(memory_format=torch.channels_last)
    fp32 = _torch_run(module, device, bf16=False)
    if name == "torch":
        return Engine("torch", device, fp32, [f"engine torch ({why})"])
    checked_key = None
    if name == "onnxruntime":  # the same export checked earlier in this process (train, val)
        checked_key = str(onnx_path(module, tuple(example.shape), cache_dir))
        hit = _CHECKED.get(checked_key)
        if hit is not None:
            return Engine(name, device, hit[0], [hit[1]])
    try:
        run = (_torch_run(module, device, bf16=True) if name == "torch-bf16"
               else _ort_run(module, example, cache_dir))
        got = run(example)
        ref = reference if reference is not None else fp32(example)
        cos = min_cosine(got, ref)
    except Exception as exc:  # an export or runtime failure: say so, run the reference
        note = (f"engine {name} not used ({type(exc).__name__}: {exc}); "
                f"running PyTorch fp32")
    else:
        if cos >= MIN_COSINE:
            note = f"engine {name} ({why}; cosine to fp32 {cos:.6f} on a real batch)"
            if checked_key is not None:
                _CHECKED[checked_key] = (run, note)
            return Engine(name, device, run, [note])
        note = (f"engine {name} not used: its output differs from fp32 PyTorch (cosine "
                f"{cos:.6f} < {MIN_COSINE} on a real batch); running PyTorch fp32")
    if log is not None:
        log(note)
    return Engine("torch", device, fp32, [note])


# -- one engine per loaded model (prediction, serving) ---------------------------------------
def _state_version(module: nn.Module) -> tuple:
    """Changes whenever a parameter or buffer is modified in place (cheap, no hashing)."""
    return tuple(t._version for t in (*module.parameters(), *module.buffers()))


def engine_for(module: nn.Module, example: torch.Tensor, *, engine: str = "auto",
               device: torch.device | str = "cpu", cache_dir: str | Path | None = None,
               log: Callable[[str], None] | None = None) -> Engine:
    """:func:`build_engine`, remembered on the module object for its current weights and
    input shape, so that a server predicting with one loaded model exports and checks once."""
    key = (_state_version(module), tuple(example.shape[1:]), engine, str(device))
    memo = module.__dict__.get("_transferlab_engine")
    if memo is None or memo[0] != key:
        built = build_engine(module, example, engine=engine, device=device,
                             cache_dir=cache_dir, log=log)
        key = (_state_version(module), *key[1:])  # after build_engine's channels_last
        memo = module.__dict__["_transferlab_engine"] = (key, built)
    return memo[1]
