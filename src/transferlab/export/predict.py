"""Prediction with a trained model: top-k classes with probabilities."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from ..data.datasets import load_rgb
from ..data.transforms import build_transforms
from ..models.factory import TransferModel


@torch.inference_mode()
def predict_images(model: TransferModel, images: Sequence[str | Path], *, topk: int = 3,
                   batch_size: int = 32, device: str | torch.device = "cpu") -> list[dict]:
    """Top-k predictions per image: ``{"path", "top": [{"class", "prob"}...]}``.

    Unreadable images get ``{"path", "error"}`` instead of stopping the batch.
    """
    tf = build_transforms(model.data_config, train=False)
    model.eval().to(device)
    classes = model.classes or [str(i) for i in range(model.head_config.num_classes or 0)]
    k = max(1, min(topk, len(classes)))
    results: list[dict] = [{} for _ in images]
    batch, where = [], []

    def flush() -> None:
        if not batch:
            return
        probs = model(torch.stack(batch).to(device)).float().softmax(1).cpu()
        values, indices = probs.topk(k, dim=1)
        for row, i in enumerate(where):
            results[i]["top"] = [{"class": classes[int(c)], "prob": float(p)}
                                 for p, c in zip(values[row], indices[row], strict=True)]
        batch.clear()
        where.clear()

    for i, path in enumerate(images):
        results[i]["path"] = str(path)
        try:
            batch.append(tf(load_rgb(path)))
            where.append(i)
        except Exception as exc:
            results[i]["error"] = f"cannot read image: {exc}"
        if len(batch) >= batch_size:
            flush()
    flush()
    return results
