"""transferlab: adapt ImageNet-pretrained vision models to your own images, and see how.

The high-level API::

    from transferlab import fine_tune
    result = fine_tune(data="photos/", strategy="two-phase")
"""

from .api import RunResult, fine_tune
from .config import STRATEGIES, TrainConfig
from .export.predict import predict_images
from .models.factory import TransferModel, create_model
from .models.summary import summarize
from .runs import load_model, save_model

__version__ = "0.1.0"

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
