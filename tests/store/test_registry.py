"""The SQLite run registry: records survive new instances, sync finds CLI runs, compare."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import pytest

from transferlab.store.registry import RegistryError, RunRegistry, run_result


def _fake_run(folder: Path, *, accuracy: float | None, strategy: str = "feature-extraction",
              per_class: dict | None = None) -> Path:
    """A run folder laid out as transferlab.runs writes it (the files the registry reads)."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(
        {"data": "/data/food", "model": "tf_efficientnet_lite0", "strategy": strategy,
         "epochs": 3, "seed": 0}))
    if accuracy is not None:
        (folder / "evaluation.json").write_text(json.dumps(
            {"accuracy": accuracy, "balanced_accuracy": accuracy, "loss": 1.0 - accuracy,
             "num_images": 10, "classes": ["a", "b"],
             "per_class_accuracy": per_class or {"a": accuracy, "b": accuracy}}))
        (folder / "best.json").write_text(json.dumps(
            {"format": "transferlab-model/1", "parameters": {"total": 100, "trainable": 10,
                                                            "frozen": 90}}))
        (folder / "metrics.json").write_text(json.dumps(
            [{"phase": "probe", "epoch": i, "seconds": 0.5} for i in (1, 2, 3)]))
    return folder


def test_add_get_update_list(tmp_path):
    reg = RunRegistry(tmp_path / "r.sqlite")
    rec = reg.add_run("r1", config={"data": "d", "model": "m", "strategy": "full"},
                      run_dir=tmp_path / "r1")
    assert (rec.state, rec.dataset, rec.model, rec.strategy) == ("queued", "d", "m", "full")
    assert rec.run_dir == str(tmp_path / "r1")
    reg.update_run("r1", state="running", started=1.0)
    reg.update_run("r1", state="done", result={"accuracy": 0.5}, finished=2.0)
    got = reg.get_run("r1")
    assert (got.state, got.result, got.started, got.finished) == ("done", {"accuracy": 0.5},
                                                                  1.0, 2.0)
    reg.add_run("r2", state="failed", created=got.created + 10)
    assert [r.id for r in reg.list_runs()] == ["r2", "r1"]  # newest first
    assert [r.id for r in reg.list_runs(state="done")] == ["r1"]
    assert [r.id for r in reg.list_runs(limit=1)] == ["r2"]


def test_errors_name_the_problem(tmp_path):
    reg = RunRegistry(tmp_path / "r.sqlite")
    reg.add_run("r1")
    with pytest.raises(RegistryError, match="already registered"):
        reg.add_run("r1")
    with pytest.raises(RegistryError, match="no run 'nope'"):
        reg.get_run("nope")
    with pytest.raises(RegistryError, match="no run 'nope'"):
        reg.update_run("nope", state="done")
    with pytest.raises(RegistryError, match="unknown state 'finished'"):
        reg.update_run("r1", state="finished")
    with pytest.raises(RegistryError, match="cannot set"):
        reg.update_run("r1", colour="red")
    with pytest.raises(RegistryError, match="no run"):
        reg.delete_run("nope")


def test_nan_is_stored_as_null(tmp_path):
    reg = RunRegistry(tmp_path / "r.sqlite")
    reg.add_run("r1", config={"x": math.nan})
    reg.update_run("r1", result={"per_class_accuracy": {"a": float("nan"), "b": 1.0}})
    rec = reg.get_run("r1")
    assert rec.config == {"x": None}
    assert rec.result == {"per_class_accuracy": {"a": None, "b": 1.0}}


def test_survives_a_new_instance_and_marks_active_runs_interrupted(tmp_path):
    path = tmp_path / "r.sqlite"
    reg = RunRegistry(path)
    reg.add_run("done", state="done")
    reg.add_run("busy", state="running")
    reg.add_run("waiting", state="queued")
    reg.add_sweep("s1", kind="data-size", state="running")
    again = RunRegistry(path)  # a server restart
    assert sorted(again.mark_interrupted()) == ["busy", "s1", "waiting"]
    assert again.get_run("done").state == "done"
    busy = again.get_run("busy")
    assert busy.state == "interrupted" and "server stopped" in busy.error
    assert again.get_sweep("s1").state == "interrupted"
    assert again.mark_interrupted() == []


def test_sync_folder_registers_cli_runs(tmp_path):
    runs = tmp_path / "runs"
    _fake_run(runs / "a", accuracy=0.75)
    _fake_run(runs / "b", accuracy=None)  # killed before its evaluation
    (runs / "not-a-run").mkdir()
    (runs / ".hidden").mkdir()
    reg = RunRegistry(tmp_path / "r.sqlite")
    assert reg.sync_folder(runs) == ["a", "b"]
    a, b = reg.get_run("a"), reg.get_run("b")
    assert a.state == "done" and a.result["accuracy"] == 0.75
    assert a.result["epochs"] == 3 and a.result["train_seconds"] == pytest.approx(1.5)
    assert a.result["trainable_params"] == 10 and a.model == "tf_efficientnet_lite0"
    assert b.state == "interrupted" and b.result == {}
    assert reg.sync_folder(runs) == []  # idempotent
    assert reg.sync_folder(tmp_path / "missing") == []


def test_compare_runs(tmp_path):
    runs = tmp_path / "runs"
    _fake_run(runs / "a", accuracy=0.5, per_class={"a": 0.4, "b": 0.6})
    _fake_run(runs / "b", accuracy=0.75, strategy="two-phase",
              per_class={"a": 0.7, "c": 0.8})
    reg = RunRegistry(tmp_path / "r.sqlite")
    reg.sync_folder(runs)
    doc = reg.compare_runs("a", "b")
    assert doc["config_diff"] == {"strategy": ["feature-extraction", "two-phase"]}
    assert doc["metrics"]["accuracy"] == {"a": 0.5, "b": 0.75, "delta": 0.25}
    assert doc["metrics"]["epochs"]["delta"] == 0
    assert doc["per_class_accuracy"] == {"a": {"a": 0.4, "b": 0.7}, "b": {"a": 0.6, "b": None},
                                         "c": {"a": None, "b": 0.8}}
    with pytest.raises(RegistryError):
        reg.compare_runs("a", "zzz")
    assert doc["paired"] is None  # no per-image predictions: no paired test


def test_compare_runs_pairs_the_same_images(tmp_path):
    """McNemar on the images both runs were measured on, test split first."""
    runs = tmp_path / "runs"
    paths = [f"img{i}.jpg" for i in range(30)]
    labels = [i % 3 for i in range(30)]
    # a wrong on images 0-9, b wrong on 0-1 only: 8 discordant images, all for b
    preds_a = [(y + 1) % 3 if i < 10 else y for i, y in enumerate(labels)]
    preds_b = [(y + 1) % 3 if i < 2 else y for i, y in enumerate(labels)]
    for name, preds in (("a", preds_a), ("b", preds_b)):
        _fake_run(runs / name, accuracy=0.5)
        split = {"classes": ["x", "y", "z"], "paths": paths, "labels": labels, "preds": preds}
        val = {**split, "preds": labels}  # both perfect on val: the test split must be used
        (runs / name / "predictions.json").write_text(json.dumps({"val": val, "test": split}))
    reg = RunRegistry(tmp_path / "r.sqlite")
    reg.sync_folder(runs)
    paired = reg.compare_runs("a", "b")["paired"]
    assert paired["split"] == "test" and (paired["a_only"], paired["b_only"]) == (0, 8)
    assert paired["p_value"] == pytest.approx(2 / 2**8)  # exact: 2 * 0.5**8


def test_sweeps_and_their_runs(tmp_path):
    reg = RunRegistry(tmp_path / "r.sqlite")
    reg.add_sweep("s1", kind="strategy", params={"values": ["a", "b"]}, out_dir=tmp_path)
    reg.update_sweep("s1", state="done", result={"trials": 2})
    reg.add_run("s1--t1", sweep_id="s1", state="done")
    reg.add_run("other", state="done")
    s = reg.get_sweep("s1")
    assert (s.kind, s.state, s.params, s.result) == ("strategy", "done",
                                                     {"values": ["a", "b"]}, {"trials": 2})
    assert [r.id for r in reg.list_runs(sweep_id="s1")] == ["s1--t1"]
    assert [x.id for x in reg.list_sweeps()] == ["s1"]
    with pytest.raises(RegistryError, match="already registered"):
        reg.add_sweep("s1", kind="strategy")
    with pytest.raises(RegistryError, match="no sweep"):
        reg.get_sweep("s2")


def test_concurrent_writers(tmp_path):
    """The web server's threads and worker processes write at the same time."""
    path = tmp_path / "r.sqlite"
    RunRegistry(path)
    errors = []

    def work(n: int) -> None:
        try:
            reg = RunRegistry(path)
            for i in range(20):
                reg.add_run(f"t{n}-{i}", state="running")
                reg.update_run(f"t{n}-{i}", state="done", result={"i": i})
        except Exception as exc:  # pragma: no cover - the assertion reports it
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(RunRegistry(path).list_runs(state="done")) == 80


def test_run_result_of_an_empty_folder(tmp_path):
    assert run_result(tmp_path) == {}
