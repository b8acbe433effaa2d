"""Generic utilities every package may use (and which use no other part of transferlab):
atomic file writes, seeding, the cache folder and a module's weight digest."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | Path, write: Callable[[str], None]) -> None:
    """``write(tmp)`` a temporary file next to ``path``, fsync it, then rename it over
    ``path``: readers see the old file or the new one, never half of one."""
    path = Path(path)
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
        # surrogateescape: file names that are not valid UTF-8 are written as their raw bytes
        with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as fh:
            fh.write(text)

    atomic_write(path, write)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators."""
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def default_cache_dir() -> Path:
    """``$TRANSFERLAB_CACHE``, else ``$XDG_CACHE_HOME/transferlab`` (``~/.cache/transferlab``)."""
    base = os.environ.get("TRANSFERLAB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "transferlab"
    )
    return Path(base)


def module_digest(module) -> str:
    """Hash of a module's parameter and buffer values (what its outputs depend on)."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    for name, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}\0{t.dtype}\0{tuple(tensor.shape)}\n".encode())
        if t.numel():
            h.update(t.view(__import__("torch").uint8).numpy().data)
    return h.hexdigest()
