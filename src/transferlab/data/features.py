"""Compute a frozen body's features once and reuse them.

When everything below the head is frozen and inputs are not randomly augmented, every epoch
would push the same images through the same network. Extracting the pooled features once
turns feature extraction into training a linear layer on a small matrix: seconds, not minutes.
The cache is keyed by backbone, weights, preprocessing and the files' identity (path, size,
modification time), stored as safetensors on disk and reused across runs.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from .datasets import ImageDataset
from .scan import Sample


def default_cache_dir() -> Path:
    base = os.environ.get("TRANSFERLAB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "transferlab"
    )
    return Path(base)


def feature_key(model_desc: dict, samples: Sequence[Sample], extra: str = "") -> str:
    """A content key: what network, which preprocessing, which exact files."""
    h = hashlib.sha256()
    h.update(json.dumps({k: model_desc[k] for k in ("model_name", "weights", "data_config")},
                        sort_keys=True).encode())
    h.update(extra.encode())
    for path, label in samples:
        try:
            st = os.stat(path)
            h.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\0{label}\n".encode())
        except OSError:
            h.update(f"{path}\0missing\n".encode())
    return h.hexdigest()[:32]


@torch.inference_mode()
def extract_features(
    forward: Callable[[torch.Tensor], torch.Tensor],
    samples: Sequence[Sample],
    transform: Callable,
    *,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    channels_last: bool = True,
    num_workers: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``forward`` (a frozen body, in eval mode) over ``samples``; returns (X, y) on CPU."""
    loader = DataLoader(ImageDataset(list(samples), transform), batch_size=batch_size,
                        shuffle=False, num_workers=num_workers)
    feats, labels = [], []
    done = 0
    for x, y in loader:
        x = x.to(device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        feats.append(forward(x).float().cpu())
        labels.append(y)
        done += len(y)
        if progress:
            progress(done, len(samples))
    return torch.cat(feats), torch.cat(labels)


def cached_features(
    model,
    samples: Sequence[Sample],
    transform: Callable,
    *,
    cache_dir: str | Path | None = None,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Features of ``model.body`` for ``samples``, from the disk cache when possible.

    Returns (X, y, hit). ``cache_dir=False``-like values (empty string) disable the cache.
    """
    from safetensors.torch import load_file, save_file

    from ..training.checkpoint import _atomic_write

    key = feature_key(model.describe(), samples)
    path = Path(cache_dir or default_cache_dir()) / "features" / f"{key}.safetensors"
    if path.is_file():
        try:
            data = load_file(str(path))
            return data["x"], data["y"], True
        except Exception:
            path.unlink(missing_ok=True)  # a torn or foreign file: recompute
    was_training = model.training
    model.eval()
    body = model.body
    if torch.device(device).type == "cpu":
        body = body.to(memory_format=torch.channels_last)
    x, y = extract_features(body, samples, transform, batch_size=batch_size, device=device,
                            progress=progress)
    model.train(was_training)
    _atomic_write(path, lambda tmp: save_file({"x": x.contiguous(), "y": y.contiguous()}, tmp))
    return x, y, False


def feature_loader(x: torch.Tensor, y: torch.Tensor, *, batch_size: int, shuffle: bool,
                   seed: int = 0) -> DataLoader:
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle,
                      generator=generator)
