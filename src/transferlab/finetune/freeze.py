"""Freeze and unfreeze layer groups by name or by depth.

Freezing only toggles ``requires_grad``; the optimizer keeps a parameter group for every layer
group from the start (see :mod:`transferlab.finetune.param_groups`), so unfreezing mid-run
needs no new optimizer and resumes cleanly. BatchNorm layers of frozen groups are kept in eval
mode by :meth:`TransferModel.train` (the BatchNorm policy).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..models.factory import TransferModel


def _params_by_name(model: TransferModel) -> dict:
    return dict(model.named_parameters())


def set_group_trainable(model: TransferModel, names: Iterable[str], trainable: bool) -> None:
    """Set ``requires_grad`` for every parameter of the named groups."""
    params = _params_by_name(model)
    for name in names:
        for pname in model.group(name).param_names:
            params[pname].requires_grad_(trainable)
    model.train(model.training)  # re-apply the BatchNorm policy


def freeze_all(model: TransferModel) -> None:
    for p in model.parameters():
        p.requires_grad_(False)
    model.train(model.training)


def train_top(model: TransferModel, k: int | None) -> list[str]:
    """Make the head plus the top ``k`` body groups trainable, freeze the rest.

    ``k=0`` is feature extraction (head only); ``k=None`` or ``k >= number of body groups``
    trains everything. Returns the names of the trainable groups.
    """
    body = [g.name for g in model.groups[:-1]]
    if k is None:
        k = len(body)
    if k < 0:
        raise ValueError(f"train_top must be >= 0, got {k}")
    k = min(k, len(body))
    trainable = body[len(body) - k :] + [model.groups[-1].name]
    freeze_all(model)
    set_group_trainable(model, trainable, True)
    return trainable


def unfreeze_next(model: TransferModel) -> str | None:
    """Unfreeze the deepest still-frozen group below the trainable ones (gradual unfreezing)."""
    states = trainable_state(model)
    for name in reversed(model.group_names):
        if not states[name]:
            set_group_trainable(model, [name], True)
            return name
    return None


def trainable_state(model: TransferModel) -> dict[str, bool]:
    """Group name -> whether any of its parameters is trainable."""
    params = _params_by_name(model)
    return {
        g.name: any(params[n].requires_grad for n in g.param_names) for g in model.groups
    }


def trainable_groups(model: TransferModel) -> list[str]:
    return [name for name, on in trainable_state(model).items() if on]


def first_trainable_index(model: TransferModel) -> int:
    """Index of the lowest group with trainable parameters (len(groups) when all frozen)."""
    states = list(trainable_state(model).values())
    return next((i for i, on in enumerate(states) if on), len(states))


def count_parameters(model: TransferModel) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": total, "trainable": trainable, "frozen": total - trainable}
