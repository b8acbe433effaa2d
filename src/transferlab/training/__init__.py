"""The training loop, its events and listeners, checkpoints and metrics."""

from .callbacks import EarlyStopping, EventLog, GradualUnfreezing, MetricsLogger
from .checkpoint import CheckpointError, load_state, save_state
from .loop import Callback, EpochRecord, NonFiniteLossError, Trainer, evaluate_loss

__all__ = [
    "Callback",
    "CheckpointError",
    "EarlyStopping",
    "EpochRecord",
    "EventLog",
    "GradualUnfreezing",
    "MetricsLogger",
    "NonFiniteLossError",
    "Trainer",
    "evaluate_loss",
    "load_state",
    "save_state",
]
