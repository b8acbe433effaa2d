"""Checkpoints as safetensors + JSON: no pickle, atomic writes.

Any nested state (model, optimizer, scheduler, callbacks) is flattened: tensors go into the
``.safetensors`` file, everything else into the JSON sidecar with a placeholder per tensor.
Writes go to a temporary file that is fsync'ed and renamed over the old one, so a kill during a
save leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..utils import atomic_write, atomic_write_text  # noqa: F401 (atomic_write_text: re-export)

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


def save_state(path: str | Path, state: dict) -> None:
    """Save nested ``state`` as ``path`` (.safetensors) plus ``path`` with .json suffix.

    The JSON is written last and names a random id stored in the tensor file, so a checkpoint
    counts as complete only when the two agree. Until the new JSON is in place, the previous
    tensor file stays reachable as ``NAME.prev.safetensors`` (a hard link): a kill between
    the two renames leaves the previous pair loadable, never a mix of two saves.
    """
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    meta = flatten(state, tensors)
    # safetensors refuses shared storage; clone to be safe.
    tensors = {k: v.clone() for k, v in tensors.items()}
    checkpoint_id = secrets.token_hex(8)
    tensors[_ID_KEY] = torch.tensor(list(checkpoint_id.encode()), dtype=torch.uint8)
    previous = _previous(path)
    if path.is_file():
        _link_over(path, previous)
    atomic_write(path, lambda tmp: save_file(tensors, tmp))
    stat = path.stat()
    doc = {"format": "transferlab-checkpoint/1", "tensors_file": path.name,
           "tensors_bytes": stat.st_size, "checkpoint_id": checkpoint_id, "state": meta}
    atomic_write_text(path.with_suffix(".json"), json.dumps(doc, indent=1))
    previous.unlink(missing_ok=True)


_ID_KEY = "__checkpoint_id__"


def _previous(path: Path) -> Path:
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def _link_over(src: Path, dst: Path) -> None:
    """Make ``dst`` another name of ``src`` (a copy where hard links are not supported)."""
    tmp = dst.with_name(f".{dst.name}.{secrets.token_hex(4)}.tmp")
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


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
    expected = doc.get("checkpoint_id")
    for candidate in (path, _previous(path)) if expected else (path,):
        # a kill between the tensor and JSON renames leaves the JSON's tensors in .prev
        if not candidate.is_file() or doc.get("tensors_bytes") != candidate.stat().st_size:
            continue
        tensors = load_file(str(candidate))
        stored = tensors.pop(_ID_KEY, None)
        if expected is None or (stored is not None
                                and bytes(stored.tolist()).decode("ascii", "replace") == expected):
            return unflatten(doc["state"], tensors)
    raise CheckpointError(
        f"checkpoint {path} does not match its metadata (size {path.stat().st_size}, expected "
        f"{doc.get('tensors_bytes')}): it was torn by an interrupted save"
    )
