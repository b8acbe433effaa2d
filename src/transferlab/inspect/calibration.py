"""Are the predicted probabilities honest? Expected calibration error, a reliability
diagram, and temperature scaling (Guo et al., "On Calibration of Modern Neural Networks",
ICML 2017).

ECE here is the usual top-label ECE: the images are put in ``bins`` equal-width bins of
their top-class confidence over [0, 1] (15 by default, as in Guo et al.), and ECE is the
image-weighted mean of |accuracy - mean confidence| over the non-empty bins.

Temperature scaling divides the logits by one number T > 0 fitted on held-out images by
minimising their negative log-likelihood; the predicted class never changes, only how sure
the model says it is. It is fitted on the validation split and judged on the test split.
"""

from __future__ import annotations

from pathlib import Path

import torch

__all__ = ["BINNING", "DEFAULT_BINS", "expected_calibration_error", "fit_temperature",
           "plot_reliability", "reliability_bins"]

DEFAULT_BINS = 15
BINNING = "top-label confidence, {bins} equal-width bins over [0, 1], image-weighted"


def reliability_bins(probs: torch.Tensor, labels: torch.Tensor,
                     bins: int = DEFAULT_BINS) -> list[dict]:
    """Per bin: its range, image count, accuracy and mean confidence (empty bins kept)."""
    conf, pred = probs.float().max(1)
    right = (pred == labels).float()
    edges = torch.linspace(0, 1, bins + 1)
    # bin i holds confidences in (edges[i], edges[i+1]]; a confidence of exactly 0 goes in bin 0
    index = (torch.bucketize(conf, edges[1:-1], right=False)).clamp(0, bins - 1)
    out = []
    for i in range(bins):
        mask = index == i
        n = int(mask.sum())
        out.append({"low": float(edges[i]), "high": float(edges[i + 1]), "count": n,
                    "accuracy": float(right[mask].mean()) if n else None,
                    "confidence": float(conf[mask].mean()) if n else None})
    return out


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor,
                               bins: int = DEFAULT_BINS) -> float:
    """Top-label ECE in [0, 1] (see the module docstring for the binning)."""
    total = len(labels)
    if total == 0:
        return float("nan")
    return sum(b["count"] / total * abs(b["accuracy"] - b["confidence"])
               for b in reliability_bins(probs, labels, bins) if b["count"])


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The T > 0 minimising the NLL of ``softmax(logits / T)`` (fit in log T, L-BFGS).

    With no images, or logits that carry no information, returns 1.0 (no change).
    """
    if len(labels) == 0:
        return 1.0
    # clones: evaluation tensors come from inference mode, which autograd may not record
    logits = logits.detach().clone().double()
    labels = labels.detach().clone().long()
    with torch.enable_grad():
        log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(logits / log_t.exp(), labels)
            loss.backward()
            return loss

        opt.step(closure)
    t = float(log_t.detach().exp())
    if not (t == t) or t <= 0 or t == float("inf"):
        return 1.0
    return min(max(t, 1e-2), 1e2)


def plot_reliability(probs: torch.Tensor, labels: torch.Tensor, path: str | Path, *,
                     before: torch.Tensor | None = None, bins: int = DEFAULT_BINS,
                     title: str = "") -> Path:
    """Accuracy against confidence per bin (the diagonal is perfect calibration); with
    ``before``, the uncalibrated probabilities are drawn too."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="perfect")
    curves = [("after temperature scaling", probs, "C0")]
    if before is not None:
        curves.insert(0, ("before", before, "C1"))
    for name, p, colour in curves:
        b = [x for x in reliability_bins(p, labels, bins) if x["count"]]
        ece = expected_calibration_error(p, labels, bins)
        ax.plot([x["confidence"] for x in b], [x["accuracy"] for x in b], marker="o",
                color=colour, label=f"{name if before is not None else 'model'} "
                f"(ECE {ece:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top class)")
    ax.set_ylabel("accuracy")
    ax.set_title(title or f"reliability ({len(labels)} images, {bins} bins)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
