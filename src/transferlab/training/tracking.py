"""Optional experiment tracking: TensorBoard and MLflow as training-loop listeners.

Both are off unless asked for (``TrainConfig.tensorboard`` / ``.mlflow``, ``--tensorboard`` /
``--mlflow``) and both libraries are optional (``pip install transferlab[track]``); they are
imported only when a logger is created, with an error that says what to install.

- TensorBoard writes event files to ``RUN/tensorboard/``: ``tensorboard --logdir runs/``.
- MLflow logs to ``TrainConfig.mlflow_uri``, else ``$MLFLOW_TRACKING_URI``, else a local
  store inside the run folder: ``sqlite:///RUN/mlflow.db`` with artifacts in
  ``RUN/mlartifacts/`` (MLflow's own local default, the SQLite store, placed in the run
  folder so a run stays self-contained). View it with
  ``mlflow ui --backend-store-uri sqlite:///RUN/mlflow.db``.

One logger lives for the whole :func:`transferlab.api.fine_tune` call: its x axis is the
epoch counted across phases, and :meth:`Tracker.finish` records the final evaluation and the
run folder's report files.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .loop import Callback, EpochRecord, Trainer

__all__ = ["MLflowLogger", "TensorBoardLogger", "Tracker", "TrackingUnavailableError",
           "require_trackers", "trackers_from_config"]

_EPOCH_KEYS = ("train_loss", "train_acc", "val_loss", "val_acc", "images_per_s", "seconds")
REPORT_FILES = ("config.json", "data.json", "metrics.csv", "evaluation.json", "report.md",
                "curves.png", "confusion.png", "best.json")


class TrackingUnavailableError(ImportError):
    """The tracking library that was asked for is not installed."""


def _require(module: str, package: str, what: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise TrackingUnavailableError(
            f"{what} logging needs the {package!r} package, which is not installed: "
            f"pip install {package}  (or pip install 'transferlab[track]')"
        ) from exc


class Tracker(Callback):
    """Common bookkeeping: the epoch counted across the phases of one run."""

    def __init__(self, start_epoch: int = 0) -> None:
        self.base = start_epoch  # epochs of the phases already finished
        self.phase_base = start_epoch
        self.batch_base = 0
        self.phase_batch_base = 0

    def on_fit_start(self, trainer: Trainer) -> None:
        self.phase_base = self.base
        self.phase_batch_base = self.batch_base

    def on_fit_end(self, trainer: Trainer) -> None:
        self.base = self.phase_base + trainer.epoch
        self.batch_base = self.phase_batch_base + trainer.step

    def step_of(self, record: EpochRecord) -> int:
        return self.phase_base + record.epoch

    @staticmethod
    def epoch_metrics(record: EpochRecord) -> dict[str, float]:
        values = {k: float(getattr(record, k)) for k in _EPOCH_KEYS}
        values.update({f"lr_{g}": float(lr) for g, lr in record.lrs.items()})
        return values

    def finish(self, summary: dict, run_dir: Path) -> None:
        """The run ended well: record the final evaluation and close."""

    def fail(self, exc: BaseException) -> None:
        """The run was interrupted or failed: close, marking it so."""


class TensorBoardLogger(Tracker):
    """Scalars per epoch (loss, accuracy, learning rate per group, throughput) and per batch."""

    TAGS = {"train_loss": "loss/train", "val_loss": "loss/val", "train_acc": "accuracy/train",
            "val_acc": "accuracy/val", "images_per_s": "throughput/images_per_s",
            "seconds": "time/epoch_seconds"}

    def __init__(self, log_dir: str | Path, *, config: dict | None = None,
                 start_epoch: int = 0) -> None:
        super().__init__(start_epoch)
        _require("tensorboard", "tensorboard", "TensorBoard")
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = Path(log_dir)
        self.writer = SummaryWriter(log_dir=str(self.log_dir))
        if config is not None:
            self.writer.add_text("config", "```\n" + json.dumps(config, indent=1) + "\n```")

    def on_batch_end(self, trainer: Trainer, batch: int, num_batches: int, loss: float) -> None:
        self.writer.add_scalar("batch/loss", loss, self.phase_batch_base + trainer.step)

    def on_epoch_end(self, trainer: Trainer, record: EpochRecord) -> None:
        step = self.step_of(record)
        for key, value in self.epoch_metrics(record).items():
            self.writer.add_scalar(self.TAGS.get(key) or f"lr/{key[3:]}", value, step)
        self.writer.add_text("phase", f"{record.phase} epoch {record.epoch}", step)
        self.writer.flush()

    def finish(self, summary: dict, run_dir: Path) -> None:
        for key in ("accuracy", "balanced_accuracy", "loss"):
            self.writer.add_scalar(f"final/{key}", float(summary[key]), self.base)
        self.writer.close()

    def fail(self, exc: BaseException) -> None:
        self.writer.close()


def _flatten(doc: dict, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        else:
            text = value if isinstance(value, str) else json.dumps(value)
            out[name] = text[:6000]  # MLflow's limit on a parameter value
    return out


def default_mlflow_uri(run_dir: str | Path) -> str:
    """``$MLFLOW_TRACKING_URI`` if set, else a SQLite store inside the run folder."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return "sqlite:///" + str((Path(run_dir) / "mlflow.db").resolve())


class MLflowLogger(Tracker):
    """One MLflow run per transferlab run: parameters, per-epoch metrics, report artifacts.

    Uses :class:`mlflow.MlflowClient` rather than the global ``mlflow.start_run`` state, so
    several runs in one process (the web app, sweeps) never log into each other.
    """

    def __init__(self, run_dir: str | Path, *, tracking_uri: str | None = None,
                 experiment: str = "transferlab", run_name: str | None = None,
                 params: dict | None = None, start_epoch: int = 0) -> None:
        super().__init__(start_epoch)
        _require("mlflow", "mlflow-skinny", "MLflow")
        from mlflow.tracking import MlflowClient

        run_dir = Path(run_dir)
        self.tracking_uri = tracking_uri or default_mlflow_uri(run_dir)
        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        found = self.client.get_experiment_by_name(experiment)
        if found is not None:
            experiment_id = found.experiment_id
        else:
            local = self.tracking_uri.startswith(("sqlite:", "file:")) or "://" not in \
                self.tracking_uri
            location = (run_dir / "mlartifacts").resolve().as_uri() if local else None
            experiment_id = self.client.create_experiment(experiment,
                                                          artifact_location=location)
        self.run_id = self.client.create_run(
            experiment_id, run_name=run_name or run_dir.name,
            tags={"transferlab.run_dir": str(run_dir.resolve())},
        ).info.run_id
        if params:
            from mlflow.entities import Param

            items = [Param(k, v) for k, v in _flatten(params).items()]
            for i in range(0, len(items), 100):  # MLflow accepts 100 params per batch
                self.client.log_batch(self.run_id, params=items[i:i + 100])

    def _log(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step)
                                                    for k, v in values.items()])

    def on_epoch_end(self, trainer: Trainer, record: EpochRecord) -> None:
        self._log(self.epoch_metrics(record), self.step_of(record))

    def finish(self, summary: dict, run_dir: Path) -> None:
        self._log({f"final_{k}": float(summary[k])
                   for k in ("accuracy", "balanced_accuracy", "loss")}, self.base)
        for name in REPORT_FILES:
            path = Path(run_dir) / name
            if path.is_file():
                self.client.log_artifact(self.run_id, str(path))
        self.client.set_terminated(self.run_id, "FINISHED")

    def fail(self, exc: BaseException) -> None:
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        self.client.set_terminated(self.run_id, status)


def require_trackers(cfg) -> None:
    """Raise :class:`TrackingUnavailableError` now if a requested library is missing."""
    if getattr(cfg, "tensorboard", False):
        _require("tensorboard", "tensorboard", "TensorBoard")
    if getattr(cfg, "mlflow", False):
        _require("mlflow", "mlflow-skinny", "MLflow")
        uri = getattr(cfg, "mlflow_uri", None) or os.environ.get("MLFLOW_TRACKING_URI") or ""
        if not uri or uri.startswith("sqlite:"):
            _require("sqlalchemy", "sqlalchemy alembic", "MLflow's local SQLite store")
            _require("alembic", "sqlalchemy alembic", "MLflow's local SQLite store")


def trackers_from_config(cfg, run_dir: str | Path, start_epoch: int = 0) -> list[Tracker]:
    """The loggers ``cfg`` asks for (none by default)."""
    require_trackers(cfg)
    out: list[Tracker] = []
    config = cfg.to_dict()
    if getattr(cfg, "tensorboard", False):
        out.append(TensorBoardLogger(Path(run_dir) / "tensorboard", config=config,
                                     start_epoch=start_epoch))
    if getattr(cfg, "mlflow", False):
        out.append(MLflowLogger(run_dir, tracking_uri=getattr(cfg, "mlflow_uri", None),
                                experiment=getattr(cfg, "mlflow_experiment", None)
                                or "transferlab",
                                params=config, start_epoch=start_epoch))
    return out
