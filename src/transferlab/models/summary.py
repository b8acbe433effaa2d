"""What is in a model, group by group: layer types, output shape, parameters, frozen or not."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .factory import TransferModel
from .heads import head_shape


@dataclass
class GroupSummary:
    name: str
    layer_types: dict[str, int]
    output_shape: list[int] | None  # without the batch dimension
    params: int
    trainable_params: int

    @property
    def trainable(self) -> bool:
        return self.trainable_params > 0

    @property
    def state(self) -> str:
        if self.trainable_params == 0:
            return "frozen"
        return "trainable" if self.trainable_params == self.params else "partly trainable"


@dataclass
class ModelSummary:
    model_name: str
    input_size: list[int]
    groups: list[GroupSummary]
    total_params: int
    trainable_params: int
    head_in_features: int
    head_out_features: int
    weights: dict

    @property
    def frozen_params(self) -> int:
        return self.total_params - self.trainable_params

    def to_dict(self) -> dict:
        doc = asdict(self)
        doc["frozen_params"] = self.frozen_params
        for g, src in zip(doc["groups"], self.groups, strict=True):
            g["state"] = src.state
        return doc


def _leaf_types(model: nn.Module, module_names: list[str]) -> dict[str, int]:
    modules = dict(model.named_modules())
    counts: Counter[str] = Counter()
    for name in module_names:
        root = modules[name]
        for sub in root.modules():
            if any(True for _ in sub.parameters(recurse=False)):
                counts[type(sub).__name__] += 1
    return dict(counts.most_common())


@torch.no_grad()
def output_shapes(model: TransferModel, input_size: tuple[int, int, int] | None = None
                  ) -> dict[str, list[int]]:
    """Output shape of each group (the last of its modules to run) for one input image."""
    modules = dict(model.named_modules())
    owner = {m: g.name for g in model.groups for m in g.module_names}
    last: dict[str, list[int]] = {}
    hooks = []

    def hook(group: str):
        def fn(_module, _inputs, output):
            if isinstance(output, torch.Tensor):
                last[group] = list(output.shape[1:])
        return fn

    for name, group in owner.items():
        hooks.append(modules[name].register_forward_hook(hook(group)))
    was_training = model.training
    model.eval()
    try:
        size = input_size or model.input_size()
        device = next(model.parameters()).device
        model(torch.zeros(1, *size, device=device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return last


def summarize(model: TransferModel, *, shapes: bool = True) -> ModelSummary:
    params = dict(model.named_parameters())
    shape_map = output_shapes(model) if shapes else {}
    groups = []
    for g in model.groups:
        n = sum(params[p].numel() for p in g.param_names)
        t = sum(params[p].numel() for p in g.param_names if params[p].requires_grad)
        groups.append(GroupSummary(g.name, _leaf_types(model, g.module_names),
                                   shape_map.get(g.name), n, t))
    hin, hout = head_shape(model.head)
    return ModelSummary(
        model_name=model.model_name,
        input_size=list(model.input_size()),
        groups=groups,
        total_params=sum(p.numel() for p in model.parameters()),
        trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
        head_in_features=hin,
        head_out_features=hout,
        weights=model.weights.as_dict(),
    )


def format_count(n: int) -> str:
    if n >= 1e6:
        return f"{n / 1e6:.2f}M"
    if n >= 1e3:
        return f"{n / 1e3:.1f}K"
    return str(n)
