"""Interpretation of a trained classifier: accuracy with its interval, confusion matrix,
worst errors, calibration."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from .calibration import BINNING, DEFAULT_BINS, expected_calibration_error
from .intervals import INTERVAL_NAME, wilson_interval

Sample = tuple[str, int]


@dataclass
class Evaluation:
    """Predictions of a model on labelled samples, and what they say."""

    classes: list[str]
    paths: list[str]
    labels: torch.Tensor  # (N,)
    probs: torch.Tensor  # (N, C), after the model's temperature
    loss: float
    logits: torch.Tensor | None = None  # (N, C) raw, before any temperature
    temperature: float = 1.0

    @property
    def raw_logits(self) -> torch.Tensor:
        """The logits before temperature (log-probabilities when only those were gathered:
        equal up to a per-image constant, which softmax ignores)."""
        if self.logits is not None:
            return self.logits
        return self.probs.clamp_min(1e-45).log() * self.temperature

    @property
    def correct(self) -> int:
        return int((self.preds == self.labels).sum())

    def accuracy_interval(self) -> tuple[float, float]:
        """95 % Wilson interval of the accuracy on these images."""
        return wilson_interval(self.correct, len(self.labels))

    def with_temperature(self, temperature: float) -> Evaluation:
        """The same predictions read through ``softmax(logits / temperature)``."""
        raw = self.raw_logits
        scaled = raw / temperature
        loss = float(torch.nn.functional.cross_entropy(scaled, self.labels)) \
            if len(self.labels) else 0.0
        return replace(self, probs=scaled.softmax(1), loss=loss, logits=raw,
                       temperature=float(temperature))

    def predictions(self) -> dict:
        """Per image: path, true and predicted class index (for paired comparisons)."""
        return {"classes": self.classes, "paths": self.paths,
                "labels": self.labels.tolist(), "preds": self.preds.tolist()}

    def ece(self, *, temperature: float | None = None) -> float:
        """Expected calibration error of the probabilities (``temperature``: of
        ``softmax(logits / temperature)`` instead)."""
        probs = self.probs if temperature is None else \
            (self.raw_logits / temperature).softmax(1)
        return expected_calibration_error(probs, self.labels)

    @property
    def preds(self) -> torch.Tensor:
        return self.probs.argmax(1)

    @property
    def accuracy(self) -> float:
        return float((self.preds == self.labels).float().mean()) if len(self.labels) else 0.0

    def confusion(self) -> torch.Tensor:
        """``C[i, j]`` = number of images of true class i predicted as j."""
        n = len(self.classes)
        idx = self.labels * n + self.preds
        return torch.bincount(idx, minlength=n * n).reshape(n, n)

    def per_class_accuracy(self) -> dict[str, float]:
        cm = self.confusion()
        totals = cm.sum(1)
        return {c: (float(cm[i, i] / totals[i]) if totals[i] else float("nan"))
                for i, c in enumerate(self.classes)}

    @property
    def balanced_accuracy(self) -> float:
        vals = [v for v in self.per_class_accuracy().values() if v == v]
        return sum(vals) / len(vals) if vals else 0.0

    def worst_errors(self, k: int = 12) -> list[dict]:
        """Wrong predictions, most confident first: likely label noise or confusable classes."""
        wrong = (self.preds != self.labels).nonzero().flatten().tolist()
        wrong.sort(key=lambda i: -float(self.probs[i, self.preds[i]]))
        return [
            {
                "path": self.paths[i],
                "true": self.classes[int(self.labels[i])],
                "pred": self.classes[int(self.preds[i])],
                "confidence": float(self.probs[i, self.preds[i]]),
                "true_prob": float(self.probs[i, self.labels[i]]),
            }
            for i in wrong[:k]
        ]

    def summary(self) -> dict:
        counts = torch.bincount(self.labels, minlength=len(self.classes)).tolist() \
            if len(self.labels) else [0] * len(self.classes)
        return {
            "accuracy": self.accuracy,
            "accuracy_interval": list(self.accuracy_interval()),
            "interval": INTERVAL_NAME,
            "correct": self.correct,
            "balanced_accuracy": self.balanced_accuracy,
            "loss": self.loss,
            "num_images": len(self.labels),
            "per_class_accuracy": self.per_class_accuracy(),
            "per_class_images": dict(zip(self.classes, counts, strict=True)),
            "ece": self.ece(),
            "ece_binning": BINNING.format(bins=DEFAULT_BINS),
            "temperature": self.temperature,
            "confusion": self.confusion().tolist(),
            "classes": self.classes,
            "worst_errors": self.worst_errors(),
        }


@torch.inference_mode()
def evaluate_model(
    model,
    samples: Sequence[Sample],
    transform: Callable | None = None,
    *,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    features: torch.Tensor | None = None,
    engine: str = "auto",
    log: Callable[[str], None] | None = None,
) -> Evaluation:
    """Evaluate ``model`` on ``samples``; with ``features`` (the frozen body's, cached) only
    the head runs. Otherwise images are decoded in threads while ``engine``
    (:mod:`transferlab.models.engines`) runs the whole model."""
    from ..data.features import prefetch, threaded_batches
    from ..models.engines import engine_for

    was_training = model.training
    model.eval()
    device = torch.device(device)
    labels = torch.tensor([label for _, label in samples])
    if features is not None:
        with torch.inference_mode():
            logits = model.head(features.to(device)).float().cpu()
    else:
        chunks, run = [], None
        for x, _ in prefetch(threaded_batches(list(samples), transform, batch_size, device)):
            if run is None:
                run = engine_for(model, x, engine=engine, device=device, log=log)
            chunks.append(run(x).float().cpu())
        logits = torch.cat(chunks) if chunks else torch.zeros((0, len(model.classes or [])))
    model.train(was_training)
    temperature = float(getattr(model, "temperature", 1.0))
    scaled = logits / temperature
    loss = float(torch.nn.functional.cross_entropy(scaled, labels)) if len(labels) else 0.0
    return Evaluation(
        classes=list(model.classes or [str(i) for i in range(logits.shape[1])]),
        paths=[p for p, _ in samples],
        labels=labels,
        probs=scaled.softmax(1),
        loss=loss,
        logits=logits,
        temperature=temperature,
    )


def plot_confusion(evaluation: Evaluation, path: str | Path, *, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = evaluation.confusion().numpy()
    n = len(evaluation.classes)
    size = max(4.0, 0.6 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(n), evaluation.classes, rotation=45, ha="right")
    ax.set_yticks(range(n), evaluation.classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                    color="white" if cm[i, j] > cm.max() / 2 else "black", fontsize=8)
    lo, hi = evaluation.accuracy_interval()
    ax.set_title(title or f"accuracy {evaluation.accuracy:.3f} [{lo:.3f}, {hi:.3f}]")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
