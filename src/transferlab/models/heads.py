"""The new classifier head that replaces the ImageNet one."""

from __future__ import annotations

from torch import nn


def make_head(
    in_features: int, num_classes: int, *, hidden: int | None = None, dropout: float = 0.0
) -> nn.Module:
    """A classifier for ``num_classes`` on top of ``in_features`` pooled backbone features.

    Without a hidden layer or dropout this is a bare ``nn.Linear(in_features, num_classes)`` —
    the textbook transfer-learning head (``Linear(512, 7)`` for ResNet-18 and 7 classes).
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if hidden:
        layers: list[nn.Module] = [nn.Linear(in_features, hidden), nn.ReLU(inplace=True)]
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(hidden, num_classes))
        return nn.Sequential(*layers)
    if dropout:
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, num_classes))
    return nn.Linear(in_features, num_classes)


def head_shape(head: nn.Module) -> tuple[int, int]:
    """(in_features, out_features) of a head built by :func:`make_head` or a timm classifier."""
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    if linears:
        return linears[0].in_features, linears[-1].out_features
    convs = [m for m in head.modules() if isinstance(m, nn.Conv2d)]
    if convs:
        return convs[0].in_channels, convs[-1].out_channels
    raise ValueError(f"cannot read the shape of head {type(head).__name__}")
