"""Prediction and export of trained models."""

from .predict import predict_images

__all__ = ["predict_images"]
