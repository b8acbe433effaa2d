"""Challenge checks that read the kernel's state (run inside the kernel process).

Each check looks at the learner's objects in the namespace (it never compares code text) and
answers ``{"ok": bool, "message": KEY, "params": {...}}``; ``KEY`` names a sentence in the
front end's message catalogs (``check.*``), so the feedback is shown in the learner's language.
"""

from __future__ import annotations

import math
from collections.abc import Callable

CHECKS: dict[str, Callable[[dict], dict]] = {}

# The early-stopping challenge's loss sequence (shown to the learner) and hidden ones that
# catch an answer fitted to it: (losses, patience, epoch it stops at, 1-based).
EARLY_STOP_GIVEN = [0.92, 0.71, 0.60, 0.58, 0.59, 0.61, 0.57, 0.60, 0.62, 0.63]
EARLY_STOP_CASES = [
    (EARLY_STOP_GIVEN, 2, 6),
    ([1.0, 2.0, 3.0, 4.0], 2, 3),
    ([3.0, 2.0, 1.0], 2, 3),  # never worse: runs to the end
    ([0.5, 0.5, 0.5, 0.4], 3, 4),  # equal is not better
    ([0.5, 0.4, 0.45, 0.3, 0.35, 0.36, 0.37], 2, 6),
]


def check(name: str):
    def register(fn):
        CHECKS[name] = fn
        return fn
    return register


def result(ok: bool, message: str, **params) -> dict:
    return {"ok": ok, "message": message, "params": params}


def run_check(name: str, ns: dict) -> dict:
    if name not in CHECKS:
        raise KeyError(f"unknown check {name!r}")
    try:
        return CHECKS[name](ns)
    except Exception as exc:  # the learner's objects may be anything
        return result(False, "check.error", error=f"{type(exc).__name__}: {exc}")


def _need(ns: dict, name: str, kind: type, kind_name: str):
    if name not in ns:
        return None, result(False, "check.not_defined", name=name)
    obj = ns[name]
    if not isinstance(obj, kind):
        return None, result(False, "check.wrong_type", name=name, expected=kind_name,
                            got=type(obj).__name__)
    return obj, None


@check("head_layer")
def _head_layer(ns: dict) -> dict:
    import torch

    layer, problem = _need(ns, "new_layer", torch.nn.Linear, "torch.nn.Linear")
    if problem:
        return problem
    if layer.in_features != 512:
        return result(False, "check.linear_in", got=layer.in_features, expected=512)
    if layer.out_features != 7:
        return result(False, "check.linear_out", got=layer.out_features, expected=7)
    return result(True, "check.head_ok", shape=list(layer.weight.shape))


@check("freeze_body")
def _freeze_body(ns: dict) -> dict:
    import torch

    model, problem = _need(ns, "model", torch.nn.Module, "torch.nn.Module")
    if problem:
        return problem
    if not hasattr(model, "body") or not hasattr(model, "head"):
        return result(False, "check.no_body_head")
    body_trainable = sum(p.numel() for p in model.body.parameters() if p.requires_grad)
    head = list(model.head.parameters())
    head_frozen = sum(p.numel() for p in head if not p.requires_grad)
    head_total = sum(p.numel() for p in head)
    if body_trainable:
        return result(False, "check.body_trainable", count=body_trainable)
    if head_frozen:
        return result(False, "check.head_frozen", count=head_frozen)
    return result(True, "check.freeze_ok", trainable=head_total,
                  frozen=sum(p.numel() for p in model.body.parameters()))


@check("disc_lrs")
def _disc_lrs(ns: dict) -> dict:
    import torch

    model, problem = _need(ns, "model", torch.nn.Module, "torch.nn.Module")
    if problem:
        return problem
    opt, problem = _need(ns, "optimizer", torch.optim.Optimizer, "torch.optim.Optimizer")
    if problem:
        return problem
    groups = opt.param_groups
    lrs = sorted(float(g["lr"]) for g in groups)
    want = [1e-6, 1e-5, 1e-4]
    if len(groups) != 3 or not all(math.isclose(a, b, rel_tol=1e-6) for a, b in zip(lrs, want, strict=True)):
        return result(False, "check.lrs", got=[float(g["lr"]) for g in groups], expected=want)
    order = {id(p): i for i, p in enumerate(model.parameters())}
    seen: dict[int, int] = {}
    spans = {}
    for g in groups:
        idx = []
        for p in g["params"]:
            if id(p) not in order:
                return result(False, "check.foreign_param")
            seen[id(p)] = seen.get(id(p), 0) + 1
            idx.append(order[id(p)])
        spans[float(g["lr"])] = (min(idx), max(idx)) if idx else None
    if any(v > 1 for v in seen.values()):
        return result(False, "check.param_twice")
    missing = sum(1 for p in model.parameters() if p.requires_grad and id(p) not in seen)
    if missing:
        return result(False, "check.param_missing", count=missing)
    head_ids = {id(p) for p in getattr(model, "head", model).parameters()}
    top = next(g for g in groups if math.isclose(float(g["lr"]), 1e-4, rel_tol=1e-6))
    if not head_ids <= {id(p) for p in top["params"]}:
        return result(False, "check.head_lr")
    ordered = [spans[k] for k in sorted(spans)]
    if any(s is None for s in ordered) or not (ordered[0][1] < ordered[1][0]
                                               and ordered[1][1] < ordered[2][0]):
        return result(False, "check.lr_order")
    return result(True, "check.lrs_ok", sizes=[len(g["params"]) for g in groups])


@check("early_stopping")
def _early_stopping(ns: dict) -> dict:
    fn = ns.get("stop_epoch")
    if fn is None:
        return result(False, "check.not_defined", name="stop_epoch")
    if not callable(fn):
        return result(False, "check.wrong_type", name="stop_epoch", expected="function",
                      got=type(fn).__name__)
    for losses, patience, want in EARLY_STOP_CASES:
        got = fn(list(losses), patience=patience)
        if got != want:
            return result(False, "check.stop_epoch", losses=losses, patience=patience, got=got,
                          expected=want)
    return result(True, "check.early_ok", cases=len(EARLY_STOP_CASES))
