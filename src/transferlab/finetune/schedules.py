"""Learning-rate schedules as pure functions of progress, plus a small plateau rule."""

from __future__ import annotations

import math


def lr_factor(step: int, total_steps: int, *, warmup_steps: int = 0, kind: str = "cosine",
              min_factor: float = 0.01) -> float:
    """Multiplier applied to every group's base LR at optimizer step ``step`` (0-based).

    ``cosine``: linear warmup then cosine decay to ``min_factor``; ``constant``: warmup then 1;
    ``plateau``: like constant (the :class:`PlateauRule` scales it after stalled epochs).
    """
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if kind in {"constant", "plateau"}:
        return 1.0
    if kind != "cosine":
        raise ValueError(f"unknown schedule {kind!r}; use cosine, constant or plateau")
    span = max(total_steps - warmup_steps, 1)
    progress = min(max(step - warmup_steps, 0) / span, 1.0)
    return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * progress))


class PlateauRule:
    """Halve the LR after ``patience`` epochs without improvement of the validation loss."""

    def __init__(self, patience: int = 2, factor: float = 0.5, min_delta: float = 1e-4) -> None:
        self.patience, self.factor, self.min_delta = patience, factor, min_delta
        self.best = math.inf
        self.bad_epochs = 0
        self.scale = 1.0

    def update(self, val_loss: float) -> float:
        if val_loss < self.best - self.min_delta:
            self.best, self.bad_epochs = val_loss, 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs > self.patience:
                self.scale *= self.factor
                self.bad_epochs = 0
        return self.scale

    def state_dict(self) -> dict:
        return {"best": self.best, "bad_epochs": self.bad_epochs, "scale": self.scale}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.bad_epochs, self.scale = state["best"], state["bad_epochs"], state["scale"]


class Scheduler:
    """Applies ``lr_factor`` (and the plateau scale) to the optimizer's groups each step."""

    def __init__(self, optimizer, total_steps: int, *, warmup_steps: int = 0,
                 kind: str = "cosine", min_factor: float = 0.01) -> None:
        self.optimizer = optimizer
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps
        self.kind = kind
        self.min_factor = min_factor
        self.step_count = 0
        self.plateau = PlateauRule() if kind == "plateau" else None
        self._apply()

    def _apply(self) -> None:
        factor = lr_factor(self.step_count, self.total_steps, warmup_steps=self.warmup_steps,
                           kind=self.kind, min_factor=self.min_factor)
        if self.plateau is not None:
            factor *= self.plateau.scale
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor

    def step(self) -> None:
        self.step_count += 1
        self._apply()

    def epoch_end(self, val_loss: float) -> None:
        if self.plateau is not None:
            self.plateau.update(val_loss)
            self._apply()

    def state_dict(self) -> dict:
        return {"step_count": self.step_count,
                "plateau": self.plateau.state_dict() if self.plateau else None}

    def load_state_dict(self, state: dict) -> None:
        self.step_count = state["step_count"]
        if self.plateau is not None and state.get("plateau"):
            self.plateau.load_state_dict(state["plateau"])
        self._apply()
