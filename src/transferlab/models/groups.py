"""Cut a backbone into ordered layer groups: stem, stage 1..n, (neck), head.

Groups come from timm's ``group_matcher(coarse=True)`` where the model has one, so they follow
the architecture's own stages; models without one fall back to their top-level children.
These are pure functions of the module tree, so they are easy to test against ``numel``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from torch import nn


@dataclass
class LayerGroup:
    """One unit of freezing and of learning rate."""

    name: str
    param_names: list[str] = field(default_factory=list)  # names in the full model
    module_names: list[str] = field(default_factory=list)  # maximal modules fully inside

    def num_params(self, model: nn.Module) -> int:
        params = dict(model.named_parameters())
        return sum(params[n].numel() for n in self.param_names)


def _blocks_pattern(matcher: dict) -> re.Pattern | None:
    blocks = matcher.get("blocks")
    if blocks is None:
        return None
    if isinstance(blocks, str):
        return re.compile(blocks)
    return re.compile(blocks[0][0])


def _timm_groups(body: nn.Module) -> list[list[str]] | None:
    """Ordered lists of body parameter names per timm group, or None without a matcher."""
    matcher_fn = getattr(body, "group_matcher", None)
    if matcher_fn is None:
        return None
    try:
        from timm.models import group_parameters

        matcher = matcher_fn(coarse=True)
        grouped = group_parameters(body, matcher)
    except (NotImplementedError, TypeError, AttributeError):
        return None
    return [list(names) for _, names in sorted(grouped.items())]


def _children_groups(body: nn.Module) -> list[list[str]]:
    """Fallback: one group per top-level child that owns parameters (descending single wrappers)."""
    prefix, module = "", body
    while True:
        owners = [
            (name, child)
            for name, child in module.named_children()
            if any(True for _ in child.parameters())
        ]
        direct = list(module.named_parameters(recurse=False))
        if len(owners) == 1 and not direct:
            prefix = f"{prefix}{owners[0][0]}."
            module = owners[0][1]
            continue
        break
    groups = []
    if direct:
        groups.append([f"{prefix}{n}" for n, _ in direct])
    for name, child in owners:
        groups.append([f"{prefix}{name}.{n}" for n, _ in child.named_parameters()])
    return groups


def _maximal_modules(model: nn.Module, names: set[str]) -> list[str]:
    """The largest modules all of whose parameters are in ``names`` (for hooks and summaries)."""
    module_params: dict[str, list[str]] = {}
    for mod_name, module in model.named_modules():
        module_params[mod_name] = [
            f"{mod_name}.{p}" if mod_name else p for p, _ in module.named_parameters()
        ]
    roots = []
    for mod_name, pnames in module_params.items():
        if not mod_name or not pnames or not all(p in names for p in pnames):
            continue
        parent = mod_name.rsplit(".", 1)[0] if "." in mod_name else ""
        parent_params = module_params.get(parent, [])
        if parent and parent_params and all(p in names for p in parent_params):
            continue
        roots.append(mod_name)
    return roots


def build_layer_groups(body: nn.Module, head: nn.Module | None = None, *, prefix: str = "body.",
                       head_prefix: str = "head.") -> list[LayerGroup]:
    """Ordered groups for ``body`` (names prefixed with ``prefix``) plus a final ``head`` group.

    The first group is ``stem``; groups matched by the model's block pattern are ``stage1..n``;
    anything between the last stage and the classifier (VGG's pre-logits MLP, a final norm) is
    ``neck``.
    """
    raw = _timm_groups(body)
    pattern = None
    if raw is not None:
        pattern = _blocks_pattern(body.group_matcher(coarse=True))
    else:
        raw = _children_groups(body)
    raw = [g for g in raw if g]

    groups: list[LayerGroup] = []
    stage = 0
    for index, names in enumerate(raw):
        roots = _maximal_modules(body, set(names))
        if index == 0:
            name = "stem"
        elif pattern is None or any(pattern.match(r) for r in roots):
            stage += 1
            name = f"stage{stage}"
        else:
            name = "neck"
        groups.append(
            LayerGroup(
                name=name,
                param_names=[prefix + n for n in names],
                module_names=[prefix + r for r in roots],
            )
        )
    # Two non-stage groups in a row get distinct names.
    seen: dict[str, int] = {}
    for g in groups:
        if g.name in seen:
            seen[g.name] += 1
            g.name = f"{g.name}{seen[g.name]}"
        else:
            seen[g.name] = 1
    if head is not None:
        groups.append(
            LayerGroup(
                name="head",
                param_names=[head_prefix + n for n, _ in head.named_parameters()],
                module_names=[head_prefix.rstrip(".")],
            )
        )
    return groups
