"""Checkpoints as safetensors + JSON: no pickle, atomic writes.

Any nested state (model, optimizer, scheduler, callbacks) is flattened: tensors go into the
``.safetensors`` file, everything else into the JSON sidecar with a placeholder per tensor.
Writes go to a temporary file that is fsync'ed and renamed over the old one, so a kill during a
save leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

_TENSOR = "__tensor__"


class CheckpointError(RuntimeError):
    pass


def flatten(obj: Any, tensors: dict[str, torch.Tensor], prefix: str = "") -> Any:
    """Replace tensors in ``obj`` by placeholders, collecting them into ``tensors``."""
    if isinstance(obj, torch.Tensor):
        key = prefix or "tensor"
        tensors[key] = obj.detach().cpu().contiguous()
        return {_TENSOR: key}
    if isinstance(obj, dict):
        return {str(k): flatten(v, tensors, f"{prefix}/{k}" if prefix else str(k))
                for k, v in obj.items()} | ({"__intkeys__": True}
                                            if obj and all(isinstance(k, int) for k in obj)
                                            else {})
    if isinstance(obj, (list, tuple)):
        return [flatten(v, tensors, f"{prefix}/{i}") for i, v in enumerate(obj)]
    if isinstance(obj, float) and (obj != obj or obj in (float("inf"), float("-inf"))):
        return {"__float__": repr(obj)}
    return obj


def unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if _TENSOR in obj:
            return tensors[obj[_TENSOR]]
        if "__float__" in obj:
            return float(obj["__float__"])
        intkeys = obj.get("__intkeys__", False)
        return {(int(k) if intkeys else k): unflatten(v, tensors)
                for k, v in obj.items() if k != "__intkeys__"}
    if isinstance(obj, list):
        return [unflatten(v, tensors) for v in obj]
    return obj


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    try:  # make the rename durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def atomic_write_text(path: str | Path, text: str) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)

    _atomic_write(Path(path), write)


def save_state(path: str | Path, state: dict) -> None:
    """Save nested ``state`` as ``path`` (.safetensors) plus ``path`` with .json suffix.

    The JSON is written last: a checkpoint counts as complete only when its JSON names the
    tensor file's fingerprint, so a torn pair is detected instead of half-loaded.
    """
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    meta = flatten(state, tensors)
    # safetensors refuses shared storage; clone to be safe.
    tensors = {k: v.clone() for k, v in tensors.items()}
    _atomic_write(path, lambda tmp: save_file(tensors, tmp))
    stat = path.stat()
    doc = {"format": "transferlab-checkpoint/1", "tensors_file": path.name,
           "tensors_bytes": stat.st_size, "state": meta}
    atomic_write_text(path.with_suffix(".json"), json.dumps(doc, indent=1))


def load_state(path: str | Path) -> dict:
    """Load a checkpoint written by :func:`save_state` (never unpickles anything)."""
    path = Path(path)
    meta_path = path.with_suffix(".json")
    if not path.is_file() or not meta_path.is_file():
        raise CheckpointError(f"no checkpoint at {path} (needs {path.name} and {meta_path.name})")
    try:
        doc = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"corrupt checkpoint metadata {meta_path}: {exc}") from exc
    if doc.get("format") != "transferlab-checkpoint/1":
        raise CheckpointError(f"{meta_path} is not a transferlab checkpoint")
    if doc.get("tensors_bytes") != path.stat().st_size:
        raise CheckpointError(
            f"checkpoint {path} does not match its metadata (size {path.stat().st_size} != "
            f"{doc.get('tensors_bytes')}): it was torn by an interrupted save"
        )
    tensors = load_file(str(path))
    return unflatten(doc["state"], tensors)
