"""Run a backbone up to a layer-group boundary, and continue from there.

Fine-tuning only the top groups of a network leaves everything below the first trainable
group frozen: its output for an un-augmented image never changes. Splitting the body at that
boundary lets the lower part run once (and its activations be cached on disk, see
:mod:`transferlab.data.features`) while training runs only the upper part.

A body can be split when its ``forward`` is a plain sequence of modules whose layer groups
come in order. That holds for the common convolutional families, listed in ``_FAMILIES`` as
the module paths their ``forward_features`` and ``forward_head`` call one after another.
Other models raise :class:`UnsupportedModelError`; callers then cache only the pooled
features at the top (boundary = number of body groups), which needs no split.

Boundary ``k`` means "the input of layer group ``k``": ``k = 0`` is the image, ``k`` equal to
the number of body groups is the pooled feature vector the head sees.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .batchnorm import DEFAULT_BN_POLICY, apply_bn_policy


class UnsupportedModelError(ValueError):
    """The body's forward is not a known sequence of modules, so it cannot be split."""


@dataclass
class Step:
    path: str  # module path inside the body ("blocks.3"); "" for synthetic steps
    module: nn.Module
    group: int  # index of the layer group this step belongs to


def _children(prefix: str) -> Callable[[nn.Module], list[str]]:
    def expand(body: nn.Module) -> list[str]:
        parent = body.get_submodule(prefix)
        return [f"{prefix}.{name}" for name, _ in parent.named_children()]

    return expand


def _paths(*items: str | Callable[[nn.Module], list[str]]):
    def build(body: nn.Module) -> list[str]:
        out: list[str] = []
        for item in items:
            out.extend(item(body) if callable(item) else [item])
        return out

    return build


# class name -> (forward_features paths, forward_head paths), mirroring timm's forward code.
_FAMILIES: dict[str, tuple[Callable, Callable]] = {
    "ResNet": (_paths("conv1", "bn1", "act1", "maxpool", "layer1", "layer2", "layer3",
                      "layer4"), _paths("global_pool")),
    "EfficientNet": (_paths("conv_stem", "bn1", _children("blocks"), "conv_head", "bn2"),
                     _paths("global_pool")),
    "MobileNetV3": (_paths("conv_stem", "bn1", _children("blocks")),
                    _paths("global_pool", "conv_head", "norm_head", "act2", "flatten")),
    "VGG": (_paths(_children("features")), _paths("pre_logits", "head")),
    "ConvNeXt": (_paths("stem", _children("stages"), "norm_pre"), _paths("head")),
}


def _check_headless(body: nn.Module, family: str) -> None:
    """The split reproduces ``body(x)`` only for a body whose classifier was removed."""
    classifier = body.get_classifier() if hasattr(body, "get_classifier") else None
    if isinstance(classifier, nn.Module) and any(True for _ in classifier.parameters()):
        raise UnsupportedModelError(
            f"{family} body still has its classifier; staged forward expects num_classes=0"
        )
    if getattr(body, "grad_checkpointing", False):
        raise UnsupportedModelError("turn off gradient checkpointing before splitting a body")


def body_steps(model) -> list[Step]:
    """The body of a :class:`TransferModel` as ordered steps, each tagged with its group.

    Raises :class:`UnsupportedModelError` when the family is unknown, when the steps do not
    cover every body parameter exactly once, or when their groups are not in order.
    """
    body = model.body
    family = type(body).__name__
    if family not in _FAMILIES:
        raise UnsupportedModelError(
            f"cannot split {model.model_name!r} ({family}) at a group boundary: supported "
            f"families are {', '.join(sorted(_FAMILIES))}; only its pooled features can be "
            "cached"
        )
    _check_headless(body, family)
    features, head = _FAMILIES[family]
    paths = features(body) + head(body)
    group_of = {}
    for index, group in enumerate(model.groups[:-1]):
        for name in group.param_names:
            group_of[name.removeprefix("body.")] = index
    steps: list[Step] = []
    covered: set[str] = set()
    current = 0
    for path in paths:
        module = body.get_submodule(path)
        names = [f"{path}.{n}" for n, _ in module.named_parameters()]
        groups = {group_of.get(n, -1) for n in names}
        if -1 in groups or len(groups) > 1:
            raise UnsupportedModelError(
                f"{model.model_name}: module {path!r} spans layer groups {sorted(groups)}"
            )
        if groups:
            (group,) = groups
            if group < current:
                raise UnsupportedModelError(
                    f"{model.model_name}: module {path!r} (group {group}) runs after group "
                    f"{current}; the layer groups are not sequential"
                )
            current = group
        covered.update(names)
        steps.append(Step(path, module, current))
    drop = float(getattr(body, "drop_rate", 0.0) or 0.0)
    if drop > 0:  # forward_head applies dropout to the pooled features
        steps.append(Step("", nn.Dropout(drop), current))
    missing = set(group_of) - covered
    if missing:
        raise UnsupportedModelError(
            f"{model.model_name}: {len(missing)} body parameters are outside the known forward "
            f"sequence (e.g. {sorted(missing)[:2]})"
        )
    return steps


def supports_staging(model) -> bool:
    try:
        body_steps(model)
    except UnsupportedModelError:
        return False
    return True


def num_boundaries(model) -> int:
    """Number of body groups: boundaries run from 0 (image) to this (pooled features)."""
    return len(model.groups) - 1


def split_at(model, boundary: int) -> tuple[nn.Module, nn.Module]:
    """``(lower, upper)`` with ``upper(lower(x)) == model.body(x)``, cut before group ``boundary``.

    The two parts share their modules with ``model.body`` (no copies), so training ``upper``
    trains the model. The top boundary needs no split and works for every model.
    """
    n = num_boundaries(model)
    if not 0 <= boundary <= n:
        raise ValueError(f"boundary must be in 0..{n} for {model.model_name}, got {boundary}")
    if boundary == n:
        return model.body, nn.Identity()
    if boundary == 0:
        return nn.Identity(), model.body
    steps = body_steps(model)
    lower = [s.module for s in steps if s.group < boundary]
    upper = [s.module for s in steps if s.group >= boundary]
    return nn.Sequential(*lower), nn.Sequential(*upper)


class UpperModel(nn.Module):
    """``head(upper(x))``: what trains on activations cached at a boundary.

    ``train()`` keeps the owner's BatchNorm policy (frozen BatchNorm stays in eval mode), as
    :meth:`TransferModel.train` does for the whole model.
    """

    def __init__(self, upper: nn.Module, head: nn.Module,
                 bn_policy: str = DEFAULT_BN_POLICY) -> None:
        super().__init__()
        self.upper = upper
        self.head = head
        self.bn_policy = bn_policy

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.upper(x))

    def train(self, mode: bool = True) -> UpperModel:
        super().train(mode)
        if mode:
            apply_bn_policy(self, self.bn_policy)
        return self


class FrozenLowerModel(nn.Module):
    """The whole model, with the frozen part below the boundary run without autograd.

    For augmented training (inputs change every epoch, so nothing can be cached): the lower
    part runs in eval mode under ``torch.no_grad`` — no graph, no saved activations — and
    only ``upper`` and ``head`` build the graph for backward.
    """

    def __init__(self, lower: nn.Module, upper: nn.Module, head: nn.Module,
                 bn_policy: str = DEFAULT_BN_POLICY) -> None:
        super().__init__()
        self.lower = lower
        self.upper = upper
        self.head = head
        self.bn_policy = bn_policy

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            z = self.lower(x)
        return self.head(self.upper(z))

    def train(self, mode: bool = True) -> FrozenLowerModel:
        super().train(mode)
        self.lower.eval()
        if mode:
            apply_bn_policy(self, self.bn_policy)
        return self
