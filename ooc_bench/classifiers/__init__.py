"""Classifiers: a registry of timm models and a small CNN, one reproducible training recipe, evaluation and export."""

from .registry import ALIASES, ModelInfo, create_model, list_models, resolve_model_name
from .training import Preprocess, TrainConfig, TrainResult, load_checkpoint, train_classifier

__all__ = ["ALIASES", "ModelInfo", "Preprocess", "TrainConfig", "TrainResult", "create_model", "list_models",
           "load_checkpoint", "resolve_model_name", "train_classifier"]
