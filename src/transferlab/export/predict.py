"""Prediction with a trained model: top-k classes for a few images or a whole folder tree.

One engine serves both: images are decoded (optionally in DataLoader worker processes),
transformed with the model's own evaluation preprocessing, stacked into batches and run
under ``torch.inference_mode`` (channels_last on CPU, bfloat16 autocast on CUDA). A file
that cannot be read gets an error row instead of stopping the batch.

``fast_decode=True`` lets libjpeg decode large JPEGs at 1/2, 1/4 or 1/8 scale (``draft``)
while keeping at least the resolution the resize step needs: much faster on big photos, but
pixels (and rarely predictions) differ slightly from the full decode that training and
``evaluate`` use, so it is off by default.
"""

from __future__ import annotations

import csv
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image, ImageOps
from torch.utils.data import DataLoader, Dataset

from ..data.datasets import load_rgb, to_rgb
from ..data.scan import IMAGE_EXTENSIONS
from ..data.transforms import build_transforms
from ..models.engines import engine_for
from ..models.factory import TransferModel

__all__ = ["FolderPredictions", "list_images", "predict_folder", "predict_images",
           "predict_probs"]


def _class_names(model: TransferModel) -> list[str]:
    return list(model.classes or [str(i) for i in range(model.head_config.num_classes or 0)])


def _open_draft(path: str, min_side: int) -> Image.Image:
    """Decode a JPEG at the smallest DCT scale whose shorter side still reaches ``min_side``."""
    with Image.open(path) as img:
        if img.format == "JPEG":
            img.draft(img.mode, (min_side, min_side))
        try:
            upright = ImageOps.exif_transpose(img)
        except (SyntaxError, ValueError, KeyError, TypeError):
            upright = img.copy()
        return to_rgb(upright)


class _Images(Dataset):
    """``(tensor, index, error)`` per path; an unreadable file yields zeros and its error."""

    def __init__(self, paths: Sequence[str], transform: Callable, input_size: tuple,
                 draft_side: int | None) -> None:
        self.paths, self.transform = list(paths), transform
        self.input_size, self.draft_side = tuple(input_size), draft_side

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        path = self.paths[i]
        try:
            image = _open_draft(path, self.draft_side) if self.draft_side else load_rgb(path)
            return self.transform(image), i, ""
        except Exception as exc:
            return torch.zeros(self.input_size), i, f"cannot read image: {exc}"


@torch.inference_mode()
def predict_probs(model: TransferModel, paths: Sequence[str | Path], *, batch_size: int = 64,
                  num_workers: int = 0, device: str | torch.device = "cpu",
                  fast_decode: bool = False, engine: str = "auto",
                  progress: Callable[[int, int], None] | None = None
                  ) -> tuple[torch.Tensor, list[str]]:
    """Class probabilities ``(N, C)`` for ``paths`` and one error string per path ("" if ok).

    Rows of unreadable images are NaN. The probabilities are ``softmax(logits / T)`` with
    the run's fitted temperature T (``model.temperature``; 1 for runs that have none).
    ``engine`` runs the model (:mod:`transferlab.models.engines`); the engine is built once
    per loaded model.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    device = torch.device(device)
    paths = [str(p) for p in paths]
    cfg = model.data_config
    tf = build_transforms(cfg, train=False)
    draft_side = None
    if fast_decode:
        side = min(int(v) for v in cfg["input_size"][1:])
        draft_side = math.floor(side / float(cfg.get("crop_pct") or 1.0))
    model.eval().to(device)
    if device.type == "cpu":
        model.to(memory_format=torch.channels_last)
    n_classes = len(_class_names(model))
    temperature = float(getattr(model, "temperature", 1.0))
    probs = torch.full((len(paths), n_classes), float("nan"))
    errors = [""] * len(paths)
    loader = DataLoader(_Images(paths, tf, tuple(cfg["input_size"]), draft_side),
                        batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=device.type == "cuda")
    done = 0
    for x, index, err in loader:
        ok = torch.tensor([not e for e in err], dtype=torch.bool)
        for i, e in zip(index.tolist(), err, strict=True):
            errors[i] = e
        if ok.any():
            x = x[ok].to(device, non_blocking=True)
            run = engine_for(model, x, engine=engine, device=device)
            probs[index[ok]] = (run(x).float() / temperature).softmax(1).cpu()
        done += len(index)
        if progress is not None:
            progress(done, len(paths))
    return probs, errors


def predict_images(model: TransferModel, images: Sequence[str | Path], *, topk: int = 3,
                   batch_size: int = 32, device: str | torch.device = "cpu",
                   engine: str = "auto") -> list[dict]:
    """Top-k predictions per image: ``{"path", "top": [{"class", "prob"}...]}``.

    Unreadable images get ``{"path", "error"}`` instead of stopping the batch.
    """
    classes = _class_names(model)
    k = max(1, min(topk, len(classes)))
    probs, errors = predict_probs(model, images, batch_size=batch_size, device=device,
                                  engine=engine)
    values, indices = probs.nan_to_num(-1.0).topk(k, dim=1)
    results = []
    for i, path in enumerate(images):
        if errors[i]:
            results.append({"path": str(path), "error": errors[i]})
        else:
            results.append({"path": str(path), "top": [
                {"class": classes[int(c)], "prob": float(p)}
                for p, c in zip(values[i], indices[i], strict=True)]})
    return results


def list_images(folder: str | Path) -> list[Path]:
    """Image files under ``folder``, recursively, sorted; hidden files and folders skipped."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"no such folder: {root}")
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [Path(dirpath) / f for f in filenames
                  if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(found)


def folder_labels(folder: str | Path, paths: Sequence[Path], classes: Sequence[str]
                  ) -> list[int | None]:
    """Class-folder layout: an image whose parent folder is named after a class has that
    label; anything else is unlabelled (``None``)."""
    index = {c: i for i, c in enumerate(classes)}
    root = Path(folder)
    out: list[int | None] = []
    for p in paths:
        parts = Path(p).relative_to(root).parts
        out.append(index.get(parts[-2]) if len(parts) >= 2 else None)
    return out


@dataclass
class FolderPredictions:
    """Predictions over a folder tree, ready for CSV and a summary."""

    folder: Path
    classes: list[str]
    paths: list[Path]
    probs: torch.Tensor  # (N, C), NaN rows for failures
    errors: list[str]
    labels: list[int | None]
    seconds: float
    topk: int = 3
    notes: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.paths)

    @property
    def failures(self) -> int:
        return sum(1 for e in self.errors if e)

    @property
    def labelled(self) -> bool:
        """True when some images sit in folders named after the model's classes."""
        return any(label is not None for label in self.labels)

    def predicted(self) -> list[int | None]:
        idx = self.probs.nan_to_num(-1.0).argmax(1).tolist()
        return [None if e else i for i, e in zip(idx, self.errors, strict=True)]

    @property
    def accuracy(self) -> float | None:
        """Accuracy over the readable labelled images (None without labels)."""
        pairs = [(p, t) for p, t in zip(self.predicted(), self.labels, strict=True)
                 if t is not None and p is not None]
        return sum(p == t for p, t in pairs) / len(pairs) if pairs else None

    @property
    def images_per_s(self) -> float:
        return self.count / max(self.seconds, 1e-9)

    def rows(self) -> list[dict]:
        k = max(1, min(self.topk, len(self.classes)))
        values, indices = self.probs.nan_to_num(-1.0).topk(k, dim=1)
        out = []
        for i, path in enumerate(self.paths):
            row = {"path": str(path)}
            if self.errors[i]:
                row.update(predicted="", probability="", top_k="")
            else:
                tops = [(self.classes[int(c)], float(p))
                        for p, c in zip(values[i], indices[i], strict=True)]
                row.update(predicted=tops[0][0], probability=f"{tops[0][1]:.6f}",
                           top_k=";".join(f"{c}:{p:.6f}" for c, p in tops))
            if self.labelled:
                label = self.labels[i]
                row["true"] = "" if label is None else self.classes[label]
                row["correct"] = ("" if label is None or self.errors[i]
                                  else int(row["predicted"] == row["true"]))
            row["error"] = self.errors[i]
            out.append(row)
        return out

    def write_csv(self, path: str | Path) -> Path:
        """One row per image: path, predicted, probability, top_k ("class:prob;..."),
        [true, correct when labelled], error."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fields = ["path", "predicted", "probability", "top_k"]
        fields += ["true", "correct"] if self.labelled else []
        fields += ["error"]
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            writer.writerows(self.rows())
        return path

    def summary(self) -> dict:
        labelled = sum(1 for t, e in zip(self.labels, self.errors, strict=True)
                       if t is not None and not e)
        return {"folder": str(self.folder), "images": self.count, "failures": self.failures,
                "labelled": labelled, "accuracy": self.accuracy,
                "images_per_s": self.images_per_s, "seconds": self.seconds}


def predict_folder(model: TransferModel, folder: str | Path, *, topk: int = 3,
                   batch_size: int = 64, num_workers: int = 0,
                   device: str | torch.device = "cpu", fast_decode: bool = False,
                   engine: str = "auto",
                   progress: Callable[[int, int], None] | None = None) -> FolderPredictions:
    """Predict every image under ``folder`` (recursively); see :class:`FolderPredictions`."""
    paths = list_images(folder)
    if not paths:
        raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) under "
                                f"{folder}")
    classes = _class_names(model)
    start = time.perf_counter()
    probs, errors = predict_probs(model, paths, batch_size=batch_size, num_workers=num_workers,
                                  device=device, fast_decode=fast_decode, engine=engine,
                                  progress=progress)
    seconds = time.perf_counter() - start
    return FolderPredictions(Path(folder), classes, paths, probs, errors,
                             folder_labels(folder, paths, classes), seconds, topk=topk)
