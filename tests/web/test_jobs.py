"""Real training jobs through the web app: worker process, queue, live events, results,
prediction, inspection, downloads, comparison and a server restart."""

from __future__ import annotations

import io
import json
import time

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from safetensors.torch import load as safetensors_load

from transferlab.store.registry import RunRegistry
from transferlab.web.app import create_app

FE = {"dataset": "food", "strategy": "feature-extraction", "epochs": 3, "batch_size": 8}


def _events(client, job_id: str, headers: dict | None = None) -> list[tuple[str | None, dict]]:
    """Read the job's server-sent events to the end: [(id, doc), ...]."""
    out, last_id = [], None
    with client.stream("GET", f"/api/jobs/{job_id}/events", headers=headers or {}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("id: "):
                last_id = line[4:]
            elif line.startswith("data: "):
                doc = json.loads(line[6:])
                out.append((last_id if doc["event"] not in ("job", "end") else None, doc))
                last_id = None
    return out


@pytest.fixture(scope="module")
def client(data_root, runs_root):
    app = create_app(data_root=data_root, runs_root=runs_root)
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def finished(client):
    """One feature-extraction job, run through the queue in a worker process."""
    r = client.post("/api/jobs/train", json={**FE, "bn_policy": "freeze",
                                             "class_weighting": "balanced"})
    assert r.status_code == 202
    job = r.json()
    assert job["state"] in ("queued", "running") and job["kind"] == "train"
    events = _events(client, job["id"])
    return {"a": job["id"], "events": events}


@pytest.fixture(scope="module")
def cli_run(runs_root, data_root):
    """A run made by the library directly (as `transferlab train` does) into the runs root."""
    from transferlab.api import fine_tune

    fine_tune(data=str(data_root / "food"), out=str(runs_root), name="cli-run", epochs=2,
              seed=1, batch_size=8, strategy="feature-extraction", progress=False)
    return "cli-run"


def test_a_warm_worker_takes_the_next_job(client, finished):
    runner = client.app.state.service.runner
    deadline = time.monotonic() + 120
    while not runner.standby_ready:  # imported torch while the server was idle
        assert time.monotonic() < deadline, "no standby worker became ready"
        time.sleep(0.1)
    standby = runner._standby[0]
    job = client.post("/api/jobs/train", json={**FE, "epochs": 1}).json()
    done = runner.wait(job["id"], timeout=120)
    assert done["state"] == "done", done["error"]
    standby.join(30)
    # the standby ran the job, then ended (a job given to a fresh process would leave the
    # standby waiting: exitcode None). How much sooner it starts: benchmarks/web_jobs.py.
    assert standby.exitcode == 0


def test_live_events_stream_the_run(finished):
    events = finished["events"]
    kinds = [doc["event"] for _, doc in events]
    states = [doc["job"]["state"] for _, doc in events if doc["event"] == "job"]
    assert states[0] in ("queued", "running") and states[-1] == "done"
    assert kinds[-1] == "end" and events[-1][1]["state"] == "done"
    epochs = [doc for _, doc in events if doc["event"] == "epoch_end"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3] and all(e["epochs"] == 3 for e in epochs)
    assert all(e["early_stopping"]["patience"] == 5 for e in epochs)
    assert kinds.index("epoch_start") < kinds.index("batch_end") < kinds.index("epoch_end")
    assert "fit_end" in kinds
    grads = [doc for _, doc in events if doc["event"] == "grad_norms"]
    assert grads and grads[-1]["norms"]["head"] > 0 and grads[-1]["norms"]["stem"] == 0
    ids = [int(i) for i, _ in events if i is not None]
    assert ids == list(range(len(ids)))  # one id per line of events.jsonl


def test_events_resume_after_last_event_id(client, finished):
    full = [i for i, _ in finished["events"] if i is not None]
    resumed = _events(client, finished["a"], headers={"Last-Event-ID": "3"})
    ids = [int(i) for i, _ in resumed if i is not None]
    assert ids == list(range(4, len(full)))


def test_runs_are_registered_with_results(client, finished):
    runs = {r["id"]: r for r in client.get("/api/runs").json()}
    run = runs[finished["a"]]
    assert run["state"] == "done" and run["dataset"] == "food"
    assert run["strategy"] == "feature-extraction" and run["result"]["epochs"] == 3
    assert 0 <= run["result"]["accuracy"] <= 1 and run["result"]["wall_seconds"] > 0
    doc = client.get(f"/api/runs/{finished['a']}").json()
    ev = doc["evaluation"]
    assert ev["classes"] == ["baklava", "beef_tartare", "bibimbap", "breakfast_burrito"]
    assert sum(map(sum, ev["confusion"])) == ev["num_images"] == 12
    for err in ev["worst_errors"]:
        assert err["image"].startswith("food/val/")
    assert len(doc["metrics"]) == 3 and doc["config"]["epochs"] == 3
    assert (doc["config"]["bn_policy"], doc["config"]["class_weighting"]) == ("freeze",
                                                                             "balanced")
    assert doc["data"]["root"] == "food" and doc["predictable"]
    assert {"best.safetensors", "best.json", "curves.png", "confusion.png"} <= set(doc["files"])


def test_run_files_and_checkpoint_download(client, finished):
    run = finished["a"]
    png = client.get(f"/api/runs/{run}/files/curves.png")
    assert png.status_code == 200 and Image.open(io.BytesIO(png.content)).format == "PNG"
    ckpt = client.get(f"/api/runs/{run}/files/best.safetensors")
    assert ckpt.status_code == 200 and "attachment" in ckpt.headers["content-disposition"]
    # a lean run's best weights: the tensors it trained (the head here), loadable as they are
    trained = safetensors_load(ckpt.content)
    assert {"head.weight", "head.bias"} <= set(trained), sorted(trained)
    side = client.get(f"/api/runs/{run}/files/best.json?download=true")
    assert side.json()["format"] == "transferlab-model/1"
    assert client.get(f"/api/runs/{run}/files/registry.sqlite").status_code == 404
    assert client.get(f"/api/runs/{run}/files/..%2Fconfig.json").status_code == 404


def test_predict_with_a_finished_run(client, finished, tiny_data):
    run = finished["a"]
    info = client.get("/api/datasets/info", params={"path": "food"}).json()
    r = client.post(f"/api/runs/{run}/predict", data={"path": info["samples"]["bibimbap"][0],
                                                      "topk": "2"})
    assert r.status_code == 200, r.text
    top = r.json()["top"]
    assert len(top) == 2 and top[0]["prob"] >= top[1]["prob"]
    assert {t["class"] for t in top} <= set(info["classes"])
    photo = next((tiny_data / "val" / "baklava").iterdir()).read_bytes()
    r = client.post(f"/api/runs/{run}/predict", files={"file": ("x.jpg", photo, "image/jpeg")})
    assert r.status_code == 200 and len(r.json()["top"]) == 4
    assert sum(t["prob"] for t in r.json()["top"]) == pytest.approx(1.0, abs=1e-4)
    r = client.post(f"/api/runs/{run}/predict", files={"file": ("x.jpg", b"junk", "image/jpeg")})
    assert r.status_code == 422 and "cannot read image" in r.json()["detail"]


def test_inspect_a_run_and_its_gradient_norms(client, finished):
    run = finished["a"]
    info = client.get("/api/datasets/info", params={"path": "food"}).json()
    r = client.post("/api/inspect", data={"path": info["samples"]["baklava"][0], "run_id": run})
    assert r.status_code == 200 and r.json()["source"] == f"run {run}"
    assert r.json()["groups"][-1]["shape"] == [4]
    norms = client.get(f"/api/runs/{run}/grad-norms").json()
    assert norms and all(n["phase"] == "probe" for n in norms)
    assert norms[-1]["norms"]["head"] > 0 and norms[-1]["norms"]["stage7"] == 0


def test_command_line_runs_are_listed(client, cli_run):
    runs = {r["id"]: r for r in client.get("/api/runs").json()}
    assert runs[cli_run]["state"] == "done" and runs[cli_run]["result"]["epochs"] == 2


def test_compare_two_runs(client, finished, cli_run):
    doc = client.get("/api/runs/compare", params={"a": finished["a"], "b": cli_run}).json()
    assert doc["config_diff"]["epochs"] == [3, 2] and doc["config_diff"]["seed"] == [0, 1]
    assert doc["metrics"]["epochs"] == {"a": 3, "b": 2, "delta": -1}
    assert len(doc["history_a"]) == 3 and len(doc["history_b"]) == 2
    assert set(doc["per_class_accuracy"]) == {"baklava", "beef_tartare", "bibimbap",
                                              "breakfast_burrito"}


@pytest.mark.slow
def test_one_job_at_a_time_and_cancel_a_queued_one(client, finished):
    service = client.app.state.service
    first = client.post("/api/jobs/train", json={**FE, "epochs": 1}).json()
    second = client.post("/api/jobs/train", json={**FE, "epochs": 1, "seed": 2}).json()
    third = client.post("/api/jobs/train", json={**FE, "epochs": 1, "seed": 3}).json()
    assert second["state"] == third["state"] == "queued"
    assert third["position"] == second["position"] + 1  # the queue is visible
    stopped = client.post(f"/api/jobs/{third['id']}/stop").json()
    assert stopped["state"] == "stopped" and "cancelled" in stopped["error"]
    assert service.registry.get_run(third["id"]).state == "stopped"
    a = service.runner.wait(first["id"], timeout=240)
    b = service.runner.wait(second["id"], timeout=240)
    assert a["state"] == b["state"] == "done"
    assert b["started"] >= a["finished"] - 0.5  # the second started after the first ended
    # stopping a finished job changes nothing
    assert client.post(f"/api/jobs/{first['id']}/stop").json()["state"] == "done"


def test_runs_survive_a_server_restart(data_root, runs_root, finished):
    reg = RunRegistry(runs_root / "registry.sqlite")
    reg.add_run("ghost", state="running", config={"data": "x"})  # as if the server died
    app = create_app(data_root=data_root, runs_root=runs_root, warm_worker=False)
    with TestClient(app) as c:
        runs = {r["id"]: r for r in c.get("/api/runs").json()}
        assert runs[finished["a"]]["state"] == "done"
        assert runs[finished["a"]]["result"]["accuracy"] >= 0
        assert runs["ghost"]["state"] == "interrupted"
        assert c.get("/api/jobs").json() == []  # jobs are per server; runs are not


@pytest.mark.slow
def test_stop_a_running_job(client, finished, runs_root):
    job = client.post("/api/jobs/train", json={**FE, "strategy": "finetune", "epochs": 50,
                                               "batch_size": 4}).json()
    events = runs_root / job["id"] / "events.jsonl"
    deadline = time.monotonic() + 180
    while not (events.is_file() and '"batch_end"' in events.read_text()):
        assert time.monotonic() < deadline, "the job never started training"
        time.sleep(0.2)
    assert client.post(f"/api/jobs/{job['id']}/stop").json()["stop_requested"]
    done = client.app.state.service.runner.wait(job["id"], timeout=60)
    assert done["state"] == "stopped"
    assert client.app.state.service.registry.get_run(job["id"]).state == "stopped"
    assert (runs_root / job["id"] / "checkpoints").is_dir() or '"epoch_end"' not in \
        events.read_text()


@pytest.mark.slow
def test_a_strategy_sweep_job(client, finished):
    kinds = {k["kind"]: k for k in client.get("/api/experiments").json()["kinds"]}
    if not kinds["compare"]["available"]:
        pytest.skip(kinds["compare"]["reason"])
    r = client.post("/api/experiments", json={
        "kind": "compare", "values": ["feature-extraction"], "seeds": 1,
        "train": {**FE, "epochs": 2}})
    assert r.status_code == 202, r.text
    job = r.json()
    events = _events(client, job["id"])
    rows = [doc for _, doc in events if doc["event"] == "sweep_row"]
    assert [(d["done"], d["total"]) for d in rows] == [(1, 1)]
    sweep = client.get(f"/api/experiments/{job['id']}").json()
    assert sweep["state"] == "done" and sweep["kind"] == "compare"
    table = sweep["result"]["table"]
    assert len(table) == 1 and table[0]["arm"] == "feature-extraction"
    assert 0 <= table[0]["accuracy_mean"] <= 1
    assert {"plot", "report.md", "table.csv"} <= set(sweep["files"])
    plot = client.get(f"/api/experiments/{job['id']}/files/plot")
    assert Image.open(io.BytesIO(plot.content)).format == "PNG"
    (trial,) = sweep["runs"]  # the trial's run folder is registered and opens like any run
    doc = client.get(f"/api/runs/{trial}").json()
    assert doc["run"]["sweep_id"] == job["id"] and len(doc["metrics"]) == 2
    listed = client.get("/api/experiments").json()["sweeps"]
    assert listed[0]["id"] == job["id"]


def test_export_requests_are_checked(client, finished):
    from transferlab.web.service import export_formats

    if not export_formats():
        r = client.post(f"/api/runs/{finished['a']}/export", json={"format": "onnx"})
        assert r.status_code == 501 and "not available" in r.json()["detail"]
        return
    r = client.post(f"/api/runs/{finished['a']}/export", json={"format": "jpeg"})
    assert r.status_code == 422 and "unknown export format" in r.json()["detail"]
    r = client.post("/api/runs/nope/export", json={"format": export_formats()[0]})
    assert r.status_code == 404


@pytest.mark.slow
def test_export_job_and_download(client, finished):
    from transferlab.web.service import export_formats

    if "safetensors" not in export_formats():
        pytest.skip("transferlab.export has no safetensors exporter here")
    run = finished["a"]
    job = client.post(f"/api/runs/{run}/export", json={"format": "safetensors"}).json()
    assert job["kind"] == "export"
    done = client.app.state.service.runner.wait(job["id"], timeout=120)
    assert done["state"] == "done", done["error"]
    exported = client.get(f"/api/runs/{run}").json()["exported"]
    assert {"model.safetensors", "preprocessing.json"} <= set(exported)
    r = client.get(f"/api/runs/{run}/exported/preprocessing.json")
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    assert client.get(f"/api/runs/{run}/exported/..%2Fconfig.json").status_code == 404


def test_a_train_job_reports_autos_resolution_search(tiny_data, tmp_path, monkeypatch):
    """The worker's status line follows the search that runs before the run folder exists."""
    import threading

    from transferlab.config import TrainConfig
    from transferlab.experiments import resolution
    from transferlab.web import jobs

    monkeypatch.setattr(resolution, "CANDIDATES", (96,))
    cfg = TrainConfig(data=str(tiny_data), strategy="auto", out=str(tmp_path), name="job",
                      epochs=1, batch_size=8, cache_dir=str(tmp_path / "c"))
    sent = []
    result = jobs._train({"config": cfg.to_dict()}, threading.Event(),
                         lambda state, **info: sent.append((state, info.get("detail"))))
    details = [d for _, d in sent if d]
    assert any(d.startswith("auto: choosing the resolution among 224, 96 px") for d in details)
    assert any(d.startswith("auto: 96 px: held-out loss") for d in details)
    # the search comes before training, and the result names what was chosen
    assert details.index("training") > max(i for i, d in enumerate(details) if "px" in d)
    saved = json.loads((tmp_path / "job" / "config.json").read_text())
    assert result["run_dir"] == str(tmp_path / "job")
    assert any("chosen by a linear probe" in n for n in saved["notes"])


@pytest.mark.slow
def test_a_killed_worker_leaves_the_run_interrupted_and_resume_finishes_it(client, finished,
                                                                          runs_root):
    """SIGKILL of the worker process mid-run (as the OOM killer would): the run is
    'interrupted' with a message saying it can be resumed, POST /api/runs/ID/resume (the
    page's one click) continues it from its last epoch to 'done', and metrics.json holds
    every epoch once; the run finished earlier is untouched."""
    import os
    import signal

    svc = client.app.state.service
    job = client.post("/api/jobs/train", json={
        **FE, "strategy": "finetune", "train_top": 1, "epochs": 12, "patience": 20,
        "batch_size": 4, "image_size": 64}).json()
    last = runs_root / job["id"] / "checkpoints" / "last.safetensors"
    deadline = time.monotonic() + 600
    while not last.is_file():  # an epoch is checkpointed
        assert time.monotonic() < deadline, "the job never finished an epoch"
        time.sleep(0.2)
    current = svc.runner._current
    assert current is not None and current[0].id == job["id"]
    os.kill(current[1].pid, signal.SIGKILL)
    done = svc.runner.wait(job["id"], timeout=120)
    assert done["state"] == "interrupted", done
    assert "resume" in done["error"] and "died" in done["error"]
    assert svc.registry.get_run(job["id"]).state == "interrupted"
    assert not (runs_root / job["id"] / "best.safetensors").exists()

    r = client.post(f"/api/runs/{job['id']}/resume")
    assert r.status_code == 202, r.text
    done = svc.runner.wait(job["id"], timeout=900)
    assert done["state"] == "done", done["error"]
    doc = client.get(f"/api/runs/{job['id']}").json()
    assert doc["run"]["state"] == "done"
    assert [m["epoch"] for m in doc["metrics"]] == list(range(1, 13))
    runs = {x["id"]: x for x in client.get("/api/runs").json()}
    assert runs[finished["a"]]["state"] == "done"
    # a finished run is not resumed again
    r = client.post(f"/api/runs/{job['id']}/resume")
    assert r.status_code == 422 and "only an interrupted" in r.json()["detail"]
