"""L2-SP: pull fine-tuned weights towards their pretrained values instead of towards zero.

Li, Grandvalet & Davoine, "Explicit inductive bias for transfer learning with CNNs", 2018.
"""

from __future__ import annotations

import torch
from torch import nn


class L2SP:
    """``alpha/2 * sum ||w - w0||^2`` over the body's weights (starting point ``w0``)."""

    def __init__(self, model: nn.Module, alpha: float = 0.01, prefix: str = "body.") -> None:
        self.alpha = alpha
        self.anchor = {
            name: p.detach().clone()
            for name, p in model.named_parameters()
            if name.startswith(prefix) and p.ndim > 1
        }

    def penalty(self, model: nn.Module) -> torch.Tensor:
        total = None
        for name, p in model.named_parameters():
            if p.requires_grad and name in self.anchor:
                term = (p - self.anchor[name].to(p.device)).pow(2).sum()
                total = term if total is None else total + term
        if total is None:
            return torch.zeros(())
        return 0.5 * self.alpha * total
