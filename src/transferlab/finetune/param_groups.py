"""Per-layer-group learning rates and optimizer parameter groups, as pure functions.

Every layer group gets optimizer groups from the start (frozen ones included): torch's
optimizers skip parameters whose ``.grad`` is None, so a frozen group costs nothing, and
unfreezing it later only flips ``requires_grad``. Each optimizer group carries its layer
group's name and base LR, which schedules multiply.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import nn


def group_learning_rates(
    group_names: Sequence[str],
    *,
    head_lr: float,
    body_lr: float | None = None,
    decay: float | None = None,
    lrs: Sequence[float] | Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Learning rate per group name (the last name is the head).

    Precedence: ``lrs`` (explicit) > ``decay`` (head_lr * decay**depth, depth 1 for the top
    body group) > ``body_lr`` (one rate for the whole body) > ``head_lr`` everywhere.

    ``lrs`` as a sequence: as long as the groups (one each), or shorter, e.g.
    ``[1e-6, 1e-5, 1e-4]``: the last value is the head's and the body groups are cut into
    ``len(lrs) - 1`` contiguous, nearly equal chunks (early 1e-6, middle 1e-5).
    """
    names = list(group_names)
    n_body = len(names) - 1
    if lrs is not None:
        if isinstance(lrs, Mapping):
            unknown = set(lrs) - set(names)
            if unknown:
                raise ValueError(f"unknown layer groups in lrs: {sorted(unknown)}; groups are {names}")
            return {n: float(lrs.get(n, head_lr if n == names[-1] else body_lr or head_lr))
                    for n in names}
        values = [float(v) for v in lrs]
        if not values:
            raise ValueError("lrs is empty")
        if any(v < 0 for v in values):
            raise ValueError(f"learning rates must be >= 0, got {values}")
        if len(values) == len(names):
            return dict(zip(names, values, strict=True))
        if len(values) > len(names):
            raise ValueError(f"{len(values)} learning rates for {len(names)} groups ({names})")
        chunks = len(values) - 1
        out = {names[-1]: values[-1]}
        for i, name in enumerate(names[:-1]):
            chunk = min(i * chunks // max(n_body, 1), chunks - 1) if chunks else 0
            out[name] = values[chunk] if chunks else values[-1]
        return out
    if decay is not None:
        if not 0 < decay <= 1:
            raise ValueError(f"lr decay must be in (0, 1], got {decay}")
        return {name: head_lr * decay ** (len(names) - 1 - i) for i, name in enumerate(names)}
    if body_lr is not None:
        return {name: (head_lr if i == n_body else body_lr) for i, name in enumerate(names)}
    return dict.fromkeys(names, head_lr)


def _no_decay(name: str, param: nn.Parameter) -> bool:
    return param.ndim <= 1 or name.endswith(".bias")


def build_param_groups(
    model: nn.Module,
    groups: Sequence,  # LayerGroup
    lrs: Mapping[str, float],
    *,
    weight_decay: float = 0.01,
    body_weight_decay: float | None = None,
) -> list[dict]:
    """Optimizer param groups: for each layer group, one with and one without weight decay.

    Biases and norm weights get no decay (as in timm's ``param_groups_weight_decay``).
    ``body_weight_decay`` overrides decay on body groups (0 when L2-SP replaces it).
    """
    params = dict(model.named_parameters())
    out = []
    last = len(groups) - 1
    for i, group in enumerate(groups):
        wd = weight_decay if (i == last or body_weight_decay is None) else body_weight_decay
        decay, no_decay = [], []
        for pname in group.param_names:
            (no_decay if _no_decay(pname, params[pname]) else decay).append(params[pname])
        for plist, gwd, suffix in ((decay, wd, ""), (no_decay, 0.0, ".no_decay")):
            if plist:
                out.append(
                    {
                        "params": plist,
                        "lr": lrs[group.name],
                        "base_lr": lrs[group.name],
                        "weight_decay": gwd,
                        "group_name": group.name + suffix,
                        "layer_group": group.name,
                    }
                )
    return out


def current_lrs(optimizer) -> dict[str, float]:
    """Layer-group name -> current LR (read from the optimizer, after scheduling)."""
    out: dict[str, float] = {}
    for g in optimizer.param_groups:
        out.setdefault(g.get("layer_group", str(len(out))), g["lr"])
    return out
