"""The Lab's API over a real ipykernel: one kernel for the module (starting one imports torch,
several seconds on a loaded machine), limits set small so that hitting them is quick."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from transferlab.web.app import create_app
from transferlab.web.lab.kernels import LabLimits
from transferlab.web.security import LOOPBACK_NAMES

pytestmark = pytest.mark.slow

LIMITS = LabLimits(run_seconds=4, kill_grace_seconds=8, memory_bytes=8 * 2**30,
                   output_bytes=20_000, max_kernels=1, inspect_every=0.5)


@pytest.fixture(scope="module")
def lab(data_root, runs_root):
    app = create_app(data_root=data_root, runs_root=runs_root, allowed_hosts=LOOPBACK_NAMES,
                     lab_limits=LIMITS, warm_worker=False)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert client.get("/api/settings").json()["lab"]["enabled"]
        assert client.post("/api/lab/session").status_code == 200
        yield client


def run(client, code):
    r = client.post("/api/lab/run", json={"code": code, "wait": True})
    assert r.status_code == 200, r.text
    return r.json()


def events(client, after=0):
    r = client.get("/api/lab/events", params={"after": after, "follow": False})
    return [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]


def test_run_streams_output_and_the_inspector_sees_new_layer(lab):
    out = run(lab, "import torch\nnew_layer = torch.nn.Linear(512, 7)\nprint('made', SAMPLE_DATA.name)")
    assert out["status"] == "ok" and out["text"] == "made food4\n"
    tensors = {t["name"]: t for t in lab.get("/api/lab/inspect").json()["tensors"]}
    w = tensors["new_layer.weight"]
    assert w["shape"] == [7, 512] and w["requires_grad"] and not w["has_grad"]
    kinds = [e["type"] for e in events(lab)]
    assert kinds.index("stream") < kinds.index("done")
    final = [e for e in events(lab) if e["type"] == "inspect" and e["final"]][-1]
    assert any(t["name"] == "new_layer.weight" for t in final["tensors"])
    # state persists between runs; an in-place change is flagged against the last run
    seq = events(lab)[-1]["seq"]
    out = run(lab, "with torch.no_grad():\n    new_layer.weight.zero_()\nprint(new_layer.out_features)")
    assert out["text"] == "7\n"
    final = [e for e in events(lab, seq) if e["type"] == "inspect" and e["final"]][-1]
    by_name = {t["name"]: t for t in final["tensors"]}
    assert by_name["new_layer.weight"]["changed"] and by_name["new_layer.weight"]["zeros"] == 1.0
    assert not by_name["new_layer.bias"]["changed"]
    img = lab.get("/api/lab/image", params={"name": "new_layer.weight"}).json()
    assert img["kind"] == "heatmap"
    assert lab.get("/api/lab/image", params={"name": "nope"}).status_code == 422


def test_head_challenge_checked_in_the_kernel(lab):
    post = lambda step, **body: lab.post(f"/api/lab/challenges/head/{step}", json=body).json()  # noqa: E731
    assert post(0, answer="512")["ok"]
    wrong = post(1, code="new_layer = torch.nn.Linear(7, 512)")
    assert not wrong["ok"] and wrong["message"] == "check.linear_in" and wrong["hint"]
    second = post(1, code="new_layer = torch.nn.Linear(512, 4)")
    assert not second["ok"] and second["solution"] == "new_layer = torch.nn.Linear(512, 7)"
    assert post(1, code="new_layer = torch.nn.Linear(512, 7)")["ok"]
    assert post(2, answer="7")["ok"] and not post(2, answer="512")["ok"]
    broken = post(1, code="new_layer = torch.nn.Linear(512, 7")  # a syntax error
    assert broken["message"] == "check.run_failed"


def test_endless_loop_is_interrupted_and_the_kernel_stays(lab):
    out = run(lab, "x = 41\nwhile True:\n    pass")
    assert out["status"] == "timeout" and out["errors"][0]["ename"] == "KeyboardInterrupt"
    assert run(lab, "print(x + 1)")["text"] == "42\n"


def test_huge_allocation_is_refused_by_the_memory_limit(lab):
    out = run(lab, "big = torch.empty(5 * 2**30)")  # 20 GB of float32
    assert out["status"] == "error" and "allocate" in out["errors"][0]["evalue"]
    assert any(e["type"] == "limit" and e["what"] == "memory" for e in events(lab))
    assert run(lab, "print('alive')")["text"] == "alive\n"


def test_output_flood_is_truncated(lab):
    out = run(lab, "for i in range(20000):\n    print('flood', i)\nprint('end')")
    assert out["status"] == "ok" and out["truncated"]
    assert 0 < len(out["text"].encode()) <= LIMITS.output_bytes and "end" not in out["text"]
    assert any(e["type"] == "truncated" for e in events(lab))


def test_dead_kernel_is_reported_and_restarted(lab):
    out = run(lab, "import os\nos._exit(3)")
    assert out["status"] == "died"
    died = [e for e in events(lab) if e["type"] == "died"][-1]
    assert died["exit_code"] == 3
    assert run(lab, "print('fresh', 'x' in globals())")["text"] == "fresh False\n"


def test_one_kernel_per_session_and_the_kernel_limit(lab, data_root, runs_root):
    other = TestClient(lab.app, base_url="http://127.0.0.1")  # a second browser: no cookie
    assert other.post("/api/lab/session").status_code == 200
    r = other.post("/api/lab/run", json={"code": "1", "wait": True})
    assert r.status_code == 429 and "limit" in r.json()["detail"]
