"""transferlab: adapt ImageNet-pretrained vision models to your own images, and see how.

The high-level API::

    from transferlab import fine_tune
    result = fine_tune(data="photos/", strategy="two-phase")

The names below are imported on first use (PEP 562), so that ``import transferlab.cli``
does not pay for torch and timm before a command needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_LAZY = {
    "RunResult": ".api",
    "fine_tune": ".api",
    "STRATEGIES": ".config",
    "TrainConfig": ".config",
    "predict_images": ".export.predict",
    "TransferModel": ".models.factory",
    "create_model": ".models.factory",
    "summarize": ".models.summary",
    "load_model": ".runs",
    "save_model": ".runs",
}

__all__ = [
    "STRATEGIES",
    "RunResult",
    "TrainConfig",
    "TransferModel",
    "create_model",
    "fine_tune",
    "load_model",
    "predict_images",
    "save_model",
    "summarize",
]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'transferlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


if TYPE_CHECKING:  # for type checkers and IDEs
    from .api import RunResult, fine_tune
    from .config import STRATEGIES, TrainConfig
    from .export.predict import predict_images
    from .models.factory import TransferModel, create_model
    from .models.summary import summarize
    from .runs import load_model, save_model
