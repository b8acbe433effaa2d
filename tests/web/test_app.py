"""Every endpoint of the web app that needs no training, with its errors (TestClient)."""

from __future__ import annotations

import io
import json
import re

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from transferlab.config import STRATEGIES
from transferlab.models.factory import offline_availability
from transferlab.web.app import STATIC, create_app


@pytest.fixture(scope="module")
def client(data_root, runs_root):
    app = create_app(data_root=data_root, runs_root=runs_root, max_upload_bytes=3 * 2**20,
                     max_image_bytes=2**20, warm_worker=False)
    with TestClient(app) as c:
        yield c


def _image_rel(client) -> str:
    info = client.get("/api/datasets/info", params={"path": "food"}).json()
    return info["samples"]["baklava"][0]


# -- page and assets ---------------------------------------------------------------------


def test_index_and_assets_are_local(client):
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert '<script type="module" src="/static/js/main.js">' in r.text
    for name in ("js/main.js", "js/lib/api.js", "js/pages/train.js", "app.css"):
        got = client.get(f"/static/{name}")
        assert got.status_code == 200, name
        if name.endswith(".js"):  # browsers refuse a module served under another type
            assert "javascript" in got.headers["content-type"], name
    files = [p for p in STATIC.rglob("*") if p.is_file()]
    assert len(files) > 10
    for path in files:  # no CDN: nothing is loaded from another origin
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".css":  # comments load nothing (xterm.css credits its origins there)
            text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
        assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", text), path.name
        assert not re.search(r"""\bfrom\s+["'](https?:)?//""", text), path.name  # module imports
        urls = set(re.findall(r"https?://[^\s\"'`)]+", text))
        assert urls <= {"http://www.w3.org/2000/svg"}, (path.name, urls)  # SVG namespace
        assert "@import" not in text, path.name
    assert client.get("/docs").status_code == 404  # FastAPI's docs page would use a CDN
    assert client.get("/openapi.json").status_code == 200


def test_health_and_settings(client, data_root):
    assert client.get("/api/health").json() == {"ok": True, "active_job": None}
    s = client.get("/api/settings").json()
    assert s["data_root"] == str(data_root.resolve()) and s["max_upload_mib"] == 3
    assert s["token_required"] is False


# -- datasets ----------------------------------------------------------------------------


def test_lists_dataset_folders_only(client):
    found = {d["path"]: d["layout"] for d in client.get("/api/datasets").json()}
    assert found["food"] == "split-folders"
    assert "notes" not in found


def test_dataset_info(client):
    info = client.get("/api/datasets/info", params={"path": "food"}).json()
    assert info["classes"] == ["baklava", "beef_tartare", "bibimbap", "breakfast_burrito"]
    assert info["totals"] == {"train": 24, "val": 12, "test": 0}
    assert info["counts"]["bibimbap"] == {"train": 6, "val": 3, "test": 0}
    assert info["bad_files"] == [{"path": "food/train/baklava/broken.jpg",
                                  "reason": "not an image (cannot identify image file)"}]
    assert all(p.startswith("food/") for paths in info["samples"].values() for p in paths)


@pytest.mark.parametrize("path, status, message", [
    ("../etc", 403, "'..'"),
    ("/etc", 403, "relative"),
    ("missing", 404, "no dataset folder 'missing'"),
    ("oneclass", 422, "at least 2 classes"),
])
def test_dataset_info_errors(client, path, status, message):
    r = client.get("/api/datasets/info", params={"path": path})
    assert r.status_code == status, r.text
    assert message in r.json()["detail"]


def test_thumbnails(client):
    rel = _image_rel(client)
    r = client.get("/api/datasets/thumb", params={"path": rel, "size": 64})
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    img = Image.open(io.BytesIO(r.content))
    assert max(img.size) == 64
    for params, status in (({"path": "notes/readme.txt"}, 400),
                           ({"path": "../secret.jpg"}, 403),
                           ({"path": "food/train/baklava/none.jpg"}, 404),
                           ({"path": "food/train/baklava/broken.jpg"}, 422),
                           ({"path": rel, "size": 4000}, 422)):
        assert client.get("/api/datasets/thumb", params=params).status_code == status, params


# -- uploads -----------------------------------------------------------------------------


@pytest.fixture
def dataset_zip(tiny_data, make_zip):
    def build(top: str = "") -> bytes:
        members = {}
        for cls in ("baklava", "bibimbap"):
            for f in sorted((tiny_data / "train" / cls).iterdir())[:3]:
                members[f"{top}{cls}/{f.name}"] = f.read_bytes()
        return make_zip(members)
    return build


def _upload(client, data: bytes, name: str = "mine", filename: str = "photos.zip"):
    return client.post("/api/datasets/upload", data={"name": name},
                       files={"file": (filename, data, "application/zip")})


def test_upload_unpacks_and_describes(client, data_root, dataset_zip):
    r = _upload(client, dataset_zip("wrapped/"), name="photos")
    assert r.status_code == 200, r.text
    info = r.json()
    assert info["path"] == "uploads/photos/wrapped" and info["classes"] == ["baklava",
                                                                           "bibimbap"]
    assert info["totals"]["train"] + info["totals"]["val"] == 6
    assert "uploads/photos/wrapped" in [d["path"] for d in client.get("/api/datasets").json()]
    r = _upload(client, dataset_zip(), name="photos")
    assert r.status_code == 409 and "already uploaded" in r.json()["detail"]


def test_upload_refuses_unsafe_zips(client, data_root, make_zip, tiny_data):
    photo = next((tiny_data / "train" / "baklava").iterdir()).read_bytes()
    cases = [
        (make_zip({"a/1.jpg": photo, "../../escape.jpg": photo}), 400, "'..'"),
        (make_zip({"a/1.jpg": photo, "b/2.jpg": b"/etc/passwd"}, symlinks=("b/2.jpg",)), 400,
         "symbolic link"),
        (make_zip({"a/zeros.jpg": bytes(20_000_000)}), 413, "zip bomb"),
        (b"this is not a zip", 400, "not a valid zip"),
    ]
    for i, (data, status, message) in enumerate(cases):
        r = _upload(client, data, name=f"bad{i}")
        assert r.status_code == status, (i, r.text)
        assert message in r.json()["detail"], i
        assert not (data_root / "uploads" / f"bad{i}").exists()
    assert not list(data_root.parent.glob("escape.jpg"))


def test_upload_size_cap_and_bad_content(client, data_root, make_zip, tiny_data):
    r = _upload(client, b"x" * (4 * 2**20), name="huge")
    assert r.status_code == 413 and "too large" in r.json()["detail"]
    one = next((tiny_data / "train" / "baklava").iterdir())
    r = _upload(client, make_zip({f"cats/{i}.jpg": one.read_bytes() for i in range(3)}),
                name="single")
    assert r.status_code == 422 and "at least 2 classes" in r.json()["detail"]
    assert not (data_root / "uploads" / "single").exists()  # removed again
    r = client.post("/api/datasets/upload", data={"name": "x"})
    assert r.status_code == 422 and "'file'" in r.json()["detail"]
    r = _upload(client, make_zip({"a/1.jpg": b"1"}), name="../../x")
    assert r.status_code in (200, 422)  # the name is sanitised, never a path
    assert not (data_root.parent / "x").exists()


# -- models, strategies, plans -----------------------------------------------------------


def test_models_list_offline_availability(client):
    models = {m["name"]: m for m in client.get("/api/models").json()}
    lite = models["tf_efficientnet_lite0"]
    assert lite["offline"] and lite["availability"] == "package" and lite["default"]
    assert models["resnet18"]["availability"] == offline_availability("resnet18")


def test_summary_of_the_default_backbone(client):
    s = client.post("/api/models/summary", json={"num_classes": 4, "train_top": 0}).json()
    assert s["head_repr"] == "Linear(1280, 4)" and s["head_in_features"] == 1280
    assert [g["name"] for g in s["groups"]][0] == "stem" and s["groups"][-1]["name"] == "head"
    assert s["counts"]["trainable"] == 1280 * 4 + 4
    assert s["counts"]["total"] == s["counts"]["trainable"] + s["counts"]["frozen"]
    assert s["groups"][0]["output_shape"] == [32, 112, 112]
    assert [g["state"] for g in s["groups"]].count("trainable") == 1
    assert not s["architecture_only"]


def test_summary_freezes_what_it_is_told(client):
    top2 = client.post("/api/models/summary", json={"num_classes": 4, "train_top": 2}).json()
    assert top2["trainable_groups"] == ["stage6", "stage7", "head"]
    stem = client.post("/api/models/summary",
                       json={"num_classes": 4, "train_groups": ["stem"]}).json()
    assert stem["trainable_groups"] == ["stem", "head"]
    assert stem["counts"]["trainable"] == 928 + 5124
    everything = client.post("/api/models/summary", json={"num_classes": 4}).json()
    assert everything["counts"]["frozen"] == 0


def test_summary_errors(client):
    r = client.post("/api/models/summary", json={"train_groups": ["stage99"]})
    assert r.status_code == 422 and "stage99" in r.json()["detail"]
    r = client.post("/api/models/summary", json={"model": "no_such_net"})
    assert r.status_code == 422 and "unknown backbone" in r.json()["detail"]
    r = client.post("/api/models/summary", json={"num_classes": 1})
    assert r.status_code == 422
    r = client.post("/api/models/summary", json={"colour": "red"})
    assert r.status_code == 422


def test_architecture_only_summary_for_backbones_without_offline_weights(client):
    if offline_availability("resnet18") != "download":
        pytest.skip("resnet18 weights are cached on this machine")
    s = client.post("/api/models/summary", json={"model": "resnet18", "num_classes": 7}).json()
    assert s["architecture_only"] and s["weights"]["source"] == "random"
    assert s["head_repr"] == "Linear(512, 7)"


def test_strategies_follow_the_config(client):
    names = [s["name"] for s in client.get("/api/strategies").json()]
    assert names == list(STRATEGIES)


def test_plan(client):
    plan = client.post("/api/train/plan", json={"strategy": "feature-extraction",
                                                 "epochs": 7}).json()
    assert plan["groups"][-1] == "head" and len(plan["phases"]) == 1
    phase = plan["phases"][0]
    assert phase["epochs"] == 7 and phase["head_only"] and phase["cached_features"]
    two = client.post("/api/train/plan", json={"strategy": "two-phase"}).json()
    assert [p["name"] for p in two["phases"]] == ["probe", "finetune"]
    lrs = [1e-5] * (len(plan["groups"]) - 1) + [1e-3]  # one rate per group, input to head
    custom = client.post("/api/train/plan", json={"strategy": "full", "lrs": lrs}).json()
    assert custom["phases"][0]["lrs"] == dict(zip(plan["groups"], lrs, strict=True))


def test_plan_errors(client):
    groups = client.post("/api/train/plan", json={"strategy": "full"}).json()["groups"]
    r = client.post("/api/train/plan", json={"strategy": "full", "lrs": [1e-3]})
    assert r.status_code == 422 and f"1 rates for the {len(groups)} groups" in r.json()["detail"]
    r = client.post("/api/train/plan", json={"strategy": "sideways"})
    assert r.status_code == 422 and "unknown strategy 'sideways'" in r.json()["detail"]


@pytest.mark.parametrize("bad", [0, -1e-3, None, "", "fast"])
def test_a_bad_learning_rate_is_refused_naming_its_group(client, bad):
    """Blank, text, zero or negative: refused before any job starts, naming the group (the
    page once sent a blank rate as 0 and a negative one was replaced by the defaults)."""
    groups = client.post("/api/train/plan", json={"strategy": "full"}).json()["groups"]
    lrs = [1e-4] * len(groups)
    lrs[-2] = bad
    jobs = len(client.get("/api/jobs").json())
    for path in ("/api/train/plan", "/api/jobs/train"):
        r = client.post(path, json={"data": "food", "strategy": "full", "lrs": lrs})
        assert r.status_code == 422, (path, r.text)
        assert f"the learning rate of {groups[-2]} must be" in r.json()["detail"], r.text
    assert len(client.get("/api/jobs").json()) == jobs  # no job started


def test_web_and_cli_default_strategy_agree(client):
    from transferlab.cli.main import build_parser
    from transferlab.config import TrainConfig

    plan = client.post("/api/train/plan", json={}).json()
    cli = build_parser().parse_args(["train", "x"])
    assert cli.strategy == TrainConfig(data="x").strategy == "two-phase"
    assert [p["name"] for p in plan["phases"]] == ["probe", "finetune"]  # two-phase's plan


@pytest.mark.skipif("auto" not in STRATEGIES, reason="this library has no auto strategy")
def test_plan_auto_decides_from_the_dataset(client):
    r = client.post("/api/train/plan", json={"strategy": "auto"})
    assert r.status_code == 422 and "choose one first" in r.json()["detail"]
    plan = client.post("/api/train/plan", json={"strategy": "auto", "dataset": "food"}).json()
    assert plan["resolved"]["strategy"] in STRATEGIES
    assert plan["resolved"]["notes"]


# -- training requests that never start ---------------------------------------------------


@pytest.mark.parametrize("body, status, message", [
    ({"dataset": "../food"}, 403, "'..'"),
    ({"dataset": "missing"}, 404, "no dataset folder"),
    ({"dataset": "food", "strategy": "sideways"}, 422, "unknown strategy"),
    ({"dataset": "food", "model": "no_such_net"}, 422, "unknown backbone"),
    ({"dataset": "food", "epochs": 0}, 422, None),
    ({"dataset": "food", "colour": "red"}, 422, None),
    ({"dataset": "food", "bn_policy": "sometimes"}, 422, None),
    ({"dataset": "food", "strategy": "finetune", "train_groups": ["nope"]}, 422, "nope"),
])
def test_bad_training_requests(client, body, status, message):
    r = client.post("/api/jobs/train", json=body)
    assert r.status_code == status, r.text
    if message:
        assert message in r.json()["detail"]
    assert client.get("/api/jobs").json() == []  # nothing was queued


def test_training_without_offline_weights_is_refused(client):
    if offline_availability("resnet50") != "download":
        pytest.skip("resnet50 weights are available here")
    r = client.post("/api/jobs/train", json={"dataset": "food", "model": "resnet50"})
    assert r.status_code == 422 and "weights 'random'" in r.json()["detail"]


@pytest.mark.parametrize("method, path", [
    ("get", "/api/jobs/nope"), ("post", "/api/jobs/nope/stop"), ("get", "/api/jobs/nope/events"),
    ("get", "/api/runs/nope"), ("get", "/api/runs/nope/files/config.json"),
    ("get", "/api/runs/nope/grad-norms"), ("get", "/api/runs/compare?a=x&b=y"),
    ("get", "/api/runs/nope/exported/model.onnx"), ("get", "/api/experiments/nope"),
    ("get", "/api/experiments/nope/files/plot"),
])
def test_unknown_ids_are_404(client, method, path):
    r = getattr(client, method)(path)
    assert r.status_code == 404, (path, r.text)
    assert r.json()["detail"]


def test_run_ids_cannot_escape(client):
    assert client.get("/api/runs/..").status_code in (403, 404)
    r = client.get("/api/runs/compare", params={"a": "../x", "b": "y"})
    assert r.status_code == 403


def test_predict_needs_a_run_and_an_image(client):
    r = client.post("/api/runs/nope/predict", data={"path": _image_rel(client)})
    assert r.status_code == 404
    r = client.post("/api/runs/nope/predict", data={"topk": "0"})
    assert r.status_code == 422 and "between 1 and 100" in r.json()["detail"]
    r = client.post("/api/runs/nope/predict", data={"topk": "three"})
    assert r.status_code == 422 and "whole number" in r.json()["detail"]


# -- inspector ---------------------------------------------------------------------------


def test_inspect_pretrained_backbone(client):
    r = client.post("/api/inspect", data={"path": _image_rel(client)})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["source"] == "pretrained tf_efficientnet_lite0"
    names = [g["name"] for g in doc["groups"]]
    assert names[0] == "stem" and names[-1] == "head"
    stem = doc["groups"][0]
    assert stem["shape"] == [32, 112, 112] and 0 < stem["zero_fraction"] < 1
    assert stem["grid_png"].startswith("data:image/png;base64,")
    assert "grid_png" not in doc["groups"][-1]


def test_inspect_upload_and_errors(client, tiny_data):
    photo = next((tiny_data / "val" / "bibimbap").iterdir()).read_bytes()
    r = client.post("/api/inspect", files={"file": ("dish.jpg", photo, "image/jpeg")})
    assert r.status_code == 200 and len(r.json()["groups"]) == 9
    r = client.post("/api/inspect", files={"file": ("dish.jpg", b"not an image", "image/jpeg")})
    assert r.status_code == 422 and "cannot read image" in r.json()["detail"]
    r = client.post("/api/inspect", files={"file": ("big.jpg", b"x" * (2 * 2**20), "image/jpeg")})
    assert r.status_code == 413
    r = client.post("/api/inspect", data={"model": "tf_efficientnet_lite0"})
    assert r.status_code == 422 and "'file'" in r.json()["detail"]
    r = client.post("/api/inspect", data={"path": "../../etc/passwd.jpg"})
    assert r.status_code == 403
    r = client.post("/api/inspect", data={"path": _image_rel(client), "run_id": "nope"})
    assert r.status_code == 404


# -- experiments -------------------------------------------------------------------------


def test_experiments_list_and_bad_requests(client):
    doc = client.get("/api/experiments").json()
    kinds = {k["kind"]: k for k in doc["kinds"]}
    assert set(kinds) == {"data-size", "freeze-depth", "compare"}
    for k in kinds.values():
        assert k["available"] == (k["reason"] is None)
    assert doc["sweeps"] == []
    base = {"dataset": "food", "strategy": "feature-extraction"}
    for body, message in (({"kind": "data-size", "values": [0, 5], "train": base},
                           "images per class"),
                          ({"kind": "compare", "values": ["sideways"], "train": base},
                           "unknown strategies"),
                          ({"kind": "freeze-depth", "values": [-1],
                            "train": {**base, "strategy": "two-phase"}}, "K >= 0"),
                          # as on the command line: refused, never switched to two-phase
                          ({"kind": "freeze-depth", "values": [1], "train": base},
                           "freeze-depth sweeps use two-phase or finetune, got "
                           "'feature-extraction'")):
        if not kinds[body["kind"]]["available"]:
            continue
        r = client.post("/api/experiments", json=body)
        assert r.status_code == 422 and message in r.json()["detail"], r.text
    r = client.post("/api/experiments", json={"kind": "nothing", "train": base})
    assert r.status_code == 422
    r = client.post("/api/experiments", json={"kind": "compare",
                                               "train": {**base, "dataset": "../x"}})
    assert r.status_code == 403


# -- learn -------------------------------------------------------------------------------


def test_quiz_answers_are_computed_and_checked_on_the_server(client):
    quiz = client.get("/api/learn/quiz").json()
    assert all("answer" not in q for q in quiz)
    ids = {q["id"]: q for q in quiz}
    assert "512 features" in ids["new-layer"]["question"]

    def check(qid, answer):
        r = client.post("/api/learn/check", json={"id": qid, "answer": answer})
        assert r.status_code == 200
        return r.json()

    assert check("new-layer", "Linear(512, 7)")["correct"]
    assert check("new-layer", "nn.Linear(in_features=512, out_features=7)")["correct"]
    wrong = check("new-layer", "Linear(512, 1000)")
    assert not wrong["correct"] and wrong["expected"] == "Linear(512, 7)"
    assert check("head-params", "5,124")["correct"]
    assert not check("head-params", "lots")["correct"]
    assert check("unfreeze-first", "stage7")["correct"]
    assert check("discriminative-lr", "6e-5")["correct"]
    assert check("batchnorm", "they keep their pretrained values")["correct"]
    r = client.post("/api/learn/check", json={"id": "nope", "answer": "x"})
    assert r.status_code == 404


# -- security: token and host --------------------------------------------------------------


def test_token_is_required_when_set(data_root, tmp_path):
    app = create_app(data_root=data_root, runs_root=tmp_path, token="s3cret-token",
                     warm_worker=False)
    with TestClient(app) as c:
        r = c.get("/api/health")
        assert r.status_code == 401 and "token" in r.json()["detail"]
        assert c.get("/").status_code == 401
        assert c.get("/api/health", headers={"Authorization": "Bearer wrong-token"}
                     ).status_code == 401
        assert c.get("/api/health", headers={"Authorization": "Bearer s3cret-token"}
                     ).status_code == 200
        r = c.get("/?token=s3cret-token")  # the address `transferlab serve` prints
        assert r.status_code == 200 and "transferlab_token" in r.headers["set-cookie"]
        assert "HttpOnly" in r.headers["set-cookie"]
        assert c.get("/api/health").status_code == 200  # the cookie now carries it


def test_host_header_is_checked_on_loopback(data_root, tmp_path):
    app = create_app(data_root=data_root, runs_root=tmp_path,
                     allowed_hosts=("localhost", "127.0.0.1"), warm_worker=False)
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        assert c.get("/api/health").status_code == 200
        r = c.get("/api/health", headers={"host": "attacker.example:8000"})
        assert r.status_code == 400 and "Host" in r.json()["detail"]


def test_create_app_needs_real_roots(tmp_path):
    with pytest.raises(ValueError, match="is not a folder"):
        create_app(data_root=tmp_path / "missing", runs_root=tmp_path)
    with pytest.raises(ValueError, match="needs data_root"):
        create_app()


@pytest.mark.parametrize("opts", [
    {"strategy": "finetune", "train_top": 1, "epochs": 3},
    {"strategy": "two-phase", "probe_epochs": 4, "lrs": [1e-5] * 7 + [2e-5, 1e-3]},
    {"strategy": "auto"},
])
def test_cli_dry_run_prints_the_plan_the_web_returns(client, data_root, capsys, opts):
    from transferlab.cli.main import main

    web = client.post("/api/train/plan", json={"data": "food", **opts})
    assert web.status_code == 200, web.text
    flags = []
    for k, v in opts.items():
        flags += [f"--{k.replace('_', '-')}", ",".join(map(str, v)) if isinstance(v, list)
                  else str(v)]
    assert main(["train", str(data_root / "food"), *flags, "--dry-run"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert cli == web.json()
    if opts["strategy"] == "auto":
        assert cli["resolved"]["notes"] and cli["strategy"] != "auto"
