"""The "Check data" routes: the action list lives beside the runs, never in the dataset, and
the next training job on the dataset applies it."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from transferlab.web.app import create_app


@pytest.fixture(scope="module")
def client(data_root, runs_root):
    app = create_app(data_root=data_root, runs_root=runs_root, warm_worker=False)
    with TestClient(app) as c:
        yield c


def _first_train_image(data_root) -> str:
    path = sorted((data_root / "food" / "train" / "bibimbap").iterdir())[0]
    return path.relative_to(data_root / "food").as_posix()


def test_actions_are_written_beside_the_runs_and_checked(client, data_root, runs_root):
    before = sorted(p.relative_to(data_root).as_posix() for p in data_root.rglob("*"))
    rel = _first_train_image(data_root)
    state = client.get("/api/doctor", params={"dataset": "food"}).json()
    assert state["report"] is None and state["actions"] == []
    r = client.post("/api/doctor/actions", json={"dataset": "food", "path": rel,
                                                  "action": "relabel", "label": "baklava"})
    assert r.status_code == 200, r.text
    assert r.json()["actions"] == [{"path": rel, "action": "relabel", "label": "baklava",
                                    "reason": "reviewed in the web page"}]
    fixes = runs_root / "doctor" / "food" / "fixes.json"
    assert json.loads(fixes.read_text())["actions"][0]["label"] == "baklava"
    # a class the dataset does not have, a path outside it, a missing file: refused
    bad = [{"path": rel, "action": "relabel", "label": "pizza"},
           {"path": "../oneclass/cats/x.jpg", "action": "remove"},
           {"path": "train/bibimbap/nope.jpg", "action": "keep"}]
    for body in bad:
        r = client.post("/api/doctor/actions", json={"dataset": "food", **body})
        assert r.status_code == 422, (body, r.text)  # the app answers ValueError with 422
    assert sorted(p.relative_to(data_root).as_posix() for p in data_root.rglob("*")) == before


def test_next_training_job_gets_the_action_list(client, data_root, runs_root):
    from transferlab.web.doctor import fixes_for

    svc = client.app.state.service
    rel = _first_train_image(data_root)
    client.post("/api/doctor/actions", json={"dataset": "food", "path": rel,
                                             "action": "remove"})
    assert fixes_for(svc, "food") == runs_root / "doctor" / "food" / "fixes.json"
    r = client.post("/api/doctor/actions", json={"dataset": "food", "path": rel,
                                                 "action": "clear"})
    assert r.json()["actions"] == []
    assert fixes_for(svc, "food") is None  # an empty list is not applied
