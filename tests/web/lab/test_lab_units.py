"""The Lab's parts that need no kernel process: checks, inspector summaries, policy, snippets."""

from __future__ import annotations

import math

import pytest
import torch

from transferlab.models import create_model
from transferlab.web.lab import challenges as ch
from transferlab.web.lab.checks import EARLY_STOP_CASES, run_check
from transferlab.web.lab.kernel import Inspector, tensor_summary
from transferlab.web.lab.routes import lab_policy, run_snippet


@pytest.fixture(scope="module")
def r18():
    return create_model("resnet18", weights="random", num_classes=7)


# -- head -------------------------------------------------------------------------------------
def test_head_check_reads_the_object_not_the_text():
    assert run_check("head_layer", {"new_layer": torch.nn.Linear(512, 7)})["ok"]
    wrong = run_check("head_layer", {"new_layer": torch.nn.Linear(7, 512)})
    assert not wrong["ok"] and wrong["message"] == "check.linear_in"
    assert run_check("head_layer", {"new_layer": torch.nn.Linear(512, 4)})["message"] == \
        "check.linear_out"
    assert run_check("head_layer", {})["message"] == "check.not_defined"
    conv = run_check("head_layer", {"new_layer": torch.nn.Conv2d(512, 7, 1)})
    assert conv["message"] == "check.wrong_type" and conv["params"]["got"] == "Conv2d"


# -- freeze -----------------------------------------------------------------------------------
def test_freeze_check_counts_requires_grad(r18):
    for p in r18.parameters():
        p.requires_grad = True
    assert run_check("freeze_body", {"model": r18})["message"] == "check.body_trainable"
    for p in r18.body.parameters():
        p.requires_grad = False
    ok = run_check("freeze_body", {"model": r18})
    assert ok["ok"] and ok["params"]["trainable"] == 512 * 7 + 7
    r18.head.weight.requires_grad = False  # froze too much
    assert run_check("freeze_body", {"model": r18})["message"] == "check.head_frozen"
    for p in r18.parameters():
        p.requires_grad = True


# -- discriminative learning rates ------------------------------------------------------------
def _groups(model, lrs, *, swap=False, skip_head=False):
    body = list(model.body.parameters())
    half = len(body) // 2
    parts = [body[:half], body[half:], [] if skip_head else list(model.head.parameters())]
    if swap:
        parts[0], parts[1] = parts[1], parts[0]
    return torch.optim.AdamW([{"params": p, "lr": lr} for p, lr in zip(parts, lrs, strict=True)
                              if p])


def test_discriminative_lr_check(r18):
    good = _groups(r18, [1e-6, 1e-5, 1e-4])
    assert run_check("disc_lrs", {"model": r18, "optimizer": good})["ok"]
    # the same three rates, but the early layers get the middle rate: wrong order
    swapped = _groups(r18, [1e-6, 1e-5, 1e-4], swap=True)
    assert run_check("disc_lrs", {"model": r18, "optimizer": swapped})["message"] == \
        "check.lr_order"
    wrong = _groups(r18, [1e-5, 1e-5, 1e-4])
    assert run_check("disc_lrs", {"model": r18, "optimizer": wrong})["message"] == "check.lrs"
    one = torch.optim.SGD(r18.parameters(), lr=1e-4)
    assert run_check("disc_lrs", {"model": r18, "optimizer": one})["message"] == "check.lrs"
    assert ch.CHALLENGES["lrs"].steps[1].solution  # the solution itself passes:
    ns = {"model": r18, "torch": torch}
    exec(ch.CHALLENGES["lrs"].steps[1].solution, ns)
    assert run_check("disc_lrs", ns)["ok"]


# -- early stopping ---------------------------------------------------------------------------
def test_early_stopping_check_runs_the_function_on_hidden_sequences():
    ns: dict = {}
    exec(ch.CHALLENGES["early"].steps[1].solution, ns)
    assert run_check("early_stopping", ns)["ok"]
    assert [ns["stop_epoch"](list(c[0]), patience=c[1]) for c in EARLY_STOP_CASES] == \
        [c[2] for c in EARLY_STOP_CASES]
    fitted = {"stop_epoch": lambda losses, patience=2: 6}  # right on the given sequence only
    bad = run_check("early_stopping", fitted)
    assert not bad["ok"] and bad["message"] == "check.stop_epoch"
    off_by_one: dict = {}
    exec(ch.CHALLENGES["early"].steps[1].solution.replace(">= patience", "> patience"),
         off_by_one)
    assert not run_check("early_stopping", off_by_one)["ok"]
    assert run_check("early_stopping", {"stop_epoch": 3})["message"] == "check.wrong_type"


def test_number_steps_hint_then_solution():
    attempts = ch.Attempts()
    _, step = ch.get("head", 0)
    first = ch.check_number(step, "1000")
    assert not first["ok"]
    a1 = attempts.record("s", "head", 0, first["ok"])
    assert a1["hint"] and a1["solution"] is None
    a2 = attempts.record("s", "head", 0, False)
    assert a2["solution"] == "512"
    assert ch.check_number(step, " 512 ")["ok"]
    assert ch.check_number(step, "five")["message"] == "check.not_a_number"
    assert ch.check_number(ch.get("lrs", 0)[1], "1e-6")["ok"]
    with pytest.raises(KeyError):
        ch.get("head", 3)
    public = ch.public(ch.CHALLENGES["head"])
    assert "answer" not in str(public) and "512" not in str(public["steps"])


# -- inspector --------------------------------------------------------------------------------
def test_tensor_summary_counts():
    t = torch.tensor([0.0, 0.0, 1.0, float("nan"), float("inf"), -2.0])
    s = tensor_summary(t)
    assert (s["nan"], s["inf"]) == (1, 1)
    assert math.isclose(s["zeros"], 2 / 6)
    assert (s["min"], s["max"]) == (-2.0, 1.0)  # over the finite values
    assert sum(s["hist"]) == 4 and len(s["hist"]) == 16
    w = torch.nn.Linear(512, 7).weight
    sw = tensor_summary(w)
    assert sw["shape"] == [7, 512] and sw["requires_grad"] and sw["kind"] == "Parameter"
    assert sw["image"] == "heatmap" and "Parameter[7, 512]" in sw["lovely"]
    assert tensor_summary(torch.zeros(2, 3, 8, 8))["image"] == "featuremaps"


def test_inspector_lists_parameters_and_marks_changes():
    layer = torch.nn.Linear(512, 7)
    ns = {"new_layer": layer, "x": torch.ones(3), "_hidden": torch.ones(1), "n": 3,
          "batch": [torch.zeros(2)]}
    ins = Inspector(ns)
    snap = ins.snapshot(commit=True)
    names = [t["name"] for t in snap["tensors"]]
    assert names == ["new_layer.weight", "new_layer.bias", "x", "batch[0]"]
    assert snap["modules"][0] == {"name": "new_layer", "class": "Linear", "params": 3591,
                                  "trainable": 3591, "frozen": 0, "children": 0}
    with torch.no_grad():
        layer.weight.mul_(2)  # in place: same object, new version
    ns["y"] = torch.zeros(1)
    snap = {t["name"]: t for t in ins.snapshot(commit=True)["tensors"]}
    assert snap["new_layer.weight"]["changed"] and not snap["new_layer.bias"]["changed"]
    assert snap["y"]["new"] and not snap["x"]["changed"]
    again = {t["name"]: t for t in ins.snapshot()["tensors"]}
    assert not again["new_layer.weight"]["changed"]  # compared with the last run now
    ns["alias"] = layer.weight
    assert "aliases" in ins.snapshot()["tensors"][0]
    img = ins.image("new_layer.weight")
    assert img["kind"] == "heatmap" and len(img["png"]) > 100
    fm = Inspector({"a": torch.randn(1, 10, 6, 6)}).image("a")
    assert fm["kind"] == "featuremaps" and fm["shown"] == 10
    mod = Inspector({"m": torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU())}
                    ).module("m")
    assert [c["name"] for c in mod["children_list"]] == ["m.0", "m.1"]


# -- policy and snippet -----------------------------------------------------------------------
def test_lab_policy():
    assert lab_policy(loopback_only=True, token=None, allow_code=None)[0]
    assert not lab_policy(loopback_only=False, token="t" * 10, allow_code=None)[0]
    assert not lab_policy(loopback_only=False, token=None, allow_code=True)[0]
    assert lab_policy(loopback_only=False, token="t" * 10, allow_code=True)[0]
    assert not lab_policy(loopback_only=True, token=None, allow_code=False)[0]


def test_run_snippet_is_valid_python_with_the_non_defaults():
    code = run_snippet({"data": "/d/food", "model": "resnet18", "strategy": "two-phase",
                        "epochs": 3, "weight_decay": 0.01, "not_a_field": 1})
    compile(code, "snippet", "exec")
    assert "model='resnet18'" in code and "epochs=3" in code
    assert "weight_decay" not in code and "strategy" not in code and "not_a_field" not in code


def test_off_loopback_the_lab_needs_allow_code(data_root, runs_root):
    from fastapi.testclient import TestClient

    from transferlab.web.app import create_app

    token = {"Authorization": "Bearer secret-token-1"}
    off = create_app(data_root=data_root, runs_root=runs_root, token="secret-token-1",
                     warm_worker=False)  # as when bound to 0.0.0.0: no host list
    with TestClient(off) as client:
        lab = client.get("/api/settings", headers=token).json()["lab"]
        assert lab == {"enabled": False, "reason": "lab.off.network"}
        for method, path in (("post", "/api/lab/session"), ("post", "/api/lab/run"),
                             ("get", "/api/lab/inspect"), ("get", "/api/lab/challenges")):
            assert getattr(client, method)(path, headers=token).status_code == 403
    on = create_app(data_root=data_root, runs_root=runs_root, token="secret-token-1",
                    allow_code=True, warm_worker=False)
    with TestClient(on) as client:
        assert client.get("/api/settings", headers=token).json()["lab"]["enabled"]
        assert client.post("/api/lab/session", headers=token).status_code == 200
        assert client.post("/api/lab/session").status_code == 401  # the token still applies
        assert len(client.get("/api/lab/challenges", headers=token).json()) == 4


def test_cross_site_pages_cannot_run_code(data_root, runs_root):
    """A page of another site must not reach the Lab of a playground on 127.0.0.1."""
    from fastapi.testclient import TestClient

    from transferlab.web.app import create_app
    from transferlab.web.security import LOOPBACK_NAMES

    app = create_app(data_root=data_root, runs_root=runs_root, allowed_hosts=LOOPBACK_NAMES,
                     warm_worker=False)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        client.post("/api/lab/session")
        body = '{"code": "open(\'/tmp/pwned\', \'w\')", "wait": true}'
        for headers in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
            r = client.post("/api/lab/run", content=body,
                            headers={**headers, "Content-Type": "application/json"})
            assert r.status_code == 403
        # a "simple" cross-site form post cannot send JSON: text/plain is refused
        r = client.post("/api/lab/run", content=body, headers={"Content-Type": "text/plain"})
        assert r.status_code == 422
        assert app.state.lab["enabled"] and not app.state.lab_pool.kernels  # no kernel started
        r = client.post("/api/lab/run", content=body, headers={"Host": "attacker.example",
                                                               "Content-Type": "application/json"})
        assert r.status_code == 400  # DNS rebinding
