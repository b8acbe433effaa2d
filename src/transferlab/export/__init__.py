"""Prediction and export of trained models."""

from .exporters import export_model
from .predict import predict_folder, predict_images

__all__ = ["export_model", "predict_folder", "predict_images"]
