"""The resolved configuration of a run: one dataclass, saved into every run folder.

``TrainConfig`` is generated from the options table (:mod:`transferlab.options`), so the
CLI, the web and ``config.json`` cannot drift from it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, field, fields, make_dataclass
from pathlib import Path

from .options import DEFAULT_STRATEGY, OPTIONS, STRATEGIES, check  # noqa: F401 (re-export)


def _post_init(self) -> None:
    """Every option checked by the one table (:func:`transferlab.options.check`)."""
    for o in OPTIONS:
        setattr(self, o.name, check(o.name, getattr(self, o.name)))


class _TrainConfigMethods:
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict):
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in known})

    def save(self, path: str | Path) -> None:
        from .utils import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path):
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def _field(o):
    if isinstance(o.default, list):  # mutable defaults need a factory
        return field(default_factory=lambda d=o.default: list(d))
    return field(default=o.default)


_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "floats": list[float],
          "strs": list[str]}

TrainConfig = make_dataclass(
    "TrainConfig",
    [("data", str)]
    + [(o.name, _TYPES[o.kind] | None if o.nullable else _TYPES[o.kind], _field(o))
       for o in OPTIONS]
    + [("notes", list[str], field(default_factory=list))],
    bases=(_TrainConfigMethods,),
    namespace={"__post_init__": _post_init, "__module__": __name__},
)
TrainConfig.__doc__ = """Everything that determines a run; one field per option of
:data:`transferlab.options.OPTIONS` (plus ``data`` and the run's ``notes``). ``None`` means
"the strategy's default". Generated from the options table: add an option there."""
