"""TensorBoard and MLflow listeners: off by default, real files when asked, clear errors."""

from __future__ import annotations

import json
import sys

import pytest

from transferlab.api import fine_tune
from transferlab.config import TrainConfig
from transferlab.training.loop import Callback
from transferlab.training.tracking import (
    TrackingUnavailableError,
    require_trackers,
    trackers_from_config,
)


def _run(data, out, name, **extra):
    return fine_tune(data=str(data), out=str(out), name=name, strategy="feature-extraction",
                     epochs=3, batch_size=8, seed=1, progress=False, **extra)


def test_off_unless_asked(tmp_path):
    assert trackers_from_config(TrainConfig(data="x"), tmp_path) == []
    assert list(tmp_path.iterdir()) == []


def test_tensorboard_and_mlflow_record_the_run(tiny_data, tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = _run(tiny_data, tmp_path, "tracked", tensorboard=True, mlflow=True)
    rows = json.loads((result.run_dir / "metrics.json").read_text())

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(result.run_dir / "tensorboard"))
    events.Reload()
    val = events.Scalars("loss/val")
    assert [e.step for e in val] == [1, 2, 3]
    assert [e.value for e in val] == pytest.approx([r["val_loss"] for r in rows], rel=1e-6)
    assert "lr/head" in events.Tags()["scalars"]
    assert events.Scalars("final/accuracy")[0].value == pytest.approx(result.accuracy)

    from mlflow.tracking import MlflowClient

    db = result.run_dir / "mlflow.db"
    assert db.is_file()  # the local store lives in the run folder
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    (run,) = client.search_runs([client.get_experiment_by_name("transferlab").experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "tracked"
    assert run.data.params["strategy"] == "feature-extraction"
    history = client.get_metric_history(run.info.run_id, "val_loss")
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == pytest.approx(
        [r["val_loss"] for r in rows], rel=1e-6)
    assert run.data.metrics["final_accuracy"] == pytest.approx(result.accuracy)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"report.md", "evaluation.json", "metrics.csv"} <= artifacts


class _Interrupt(Callback):
    def on_epoch_end(self, trainer, record):
        raise KeyboardInterrupt("stop")


def test_interrupted_run_is_marked_killed(tiny_data, tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(KeyboardInterrupt):
        fine_tune(data=str(tiny_data), out=str(tmp_path), name="cut", epochs=3, batch_size=8,
                  strategy="feature-extraction", mlflow=True, progress=False,
                  callbacks=[_Interrupt()])
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'cut' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("transferlab").experiment_id])
    assert run.info.status == "KILLED"


def test_missing_library_fails_before_any_work(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import now raises ImportError
    cfg = TrainConfig(data=str(tiny_data), out=str(tmp_path), tensorboard=True)
    with pytest.raises(TrackingUnavailableError, match="pip install tensorboard"):
        require_trackers(cfg)
    with pytest.raises(TrackingUnavailableError):
        fine_tune(cfg, progress=False)
    assert list(tmp_path.iterdir()) == []  # no half-made run folder


def test_cli_reports_missing_library(tiny_data, tmp_path, monkeypatch, capsys):
    from transferlab.cli.main import main

    monkeypatch.setitem(sys.modules, "mlflow", None)
    code = main(["train", str(tiny_data), "--out", str(tmp_path), "--mlflow"])
    assert code == 2
    assert "pip install mlflow-skinny" in capsys.readouterr().err
