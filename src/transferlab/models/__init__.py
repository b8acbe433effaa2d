"""Backbones, weight sources, heads, layer groups and summaries."""

from .factory import (
    DEFAULT_MODEL,
    KNOWN_BACKBONES,
    HeadConfig,
    TransferModel,
    create_model,
    model_from_description,
    offline_availability,
)
from .groups import LayerGroup, build_layer_groups
from .heads import head_shape, make_head
from .weights import WeightsInfo, WeightsUnavailableError, load_state_dict_file

__all__ = [
    "DEFAULT_MODEL",
    "KNOWN_BACKBONES",
    "HeadConfig",
    "LayerGroup",
    "TransferModel",
    "WeightsInfo",
    "WeightsUnavailableError",
    "build_layer_groups",
    "create_model",
    "head_shape",
    "load_state_dict_file",
    "make_head",
    "model_from_description",
    "offline_availability",
]
