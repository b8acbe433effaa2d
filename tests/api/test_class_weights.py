"""Balanced class weighting for imbalanced data (e.g. defect images that are 71 % 'free')."""

from types import SimpleNamespace

import pytest
import torch

from transferlab.api import class_weights
from transferlab.config import TrainConfig


def test_balanced_weights_are_inverse_frequency():
    splits = SimpleNamespace(classes=["free", "crack", "fray"],
                             train=[("a", 0)] * 8 + [("b", 1)] * 2 + [("c", 2)] * 2)
    w = class_weights(splits, "balanced")
    assert torch.allclose(w, torch.tensor([12 / (3 * 8), 12 / (3 * 2), 12 / (3 * 2)]))
    # Every class then contributes the same total weight to the loss.
    counts = torch.tensor([8.0, 2.0, 2.0])
    assert torch.allclose(w * counts, torch.full((3,), 4.0))
    assert class_weights(splits, "none") is None


def test_unknown_weighting_is_named():
    with pytest.raises(ValueError, match="class_weighting"):
        TrainConfig(data="x", class_weighting="inverse")
