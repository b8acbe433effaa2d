"""The agreement test: the CLI, the web model and TrainConfig are generated from one table.

For every option of :data:`transferlab.options.OPTIONS` the faces that show it must have the
same name, default and choices, and a bad value must get the same message from each.
"""

from __future__ import annotations

import argparse
import dataclasses
import re

import pytest

from transferlab.cli.main import build_parser
from transferlab.config import TrainConfig
from transferlab.options import (
    BY_NAME,
    CLI,
    OPTIONS,
    SWEEP_KINDS,
    WEB,
    check,
    check_sweep,
    options_for,
)

pydantic = pytest.importorskip("pydantic")
schemas = pytest.importorskip("transferlab.web.schemas")


def _train_parser() -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["train"]


def _cli_actions() -> dict[str, argparse.Action]:
    # the first action of a dest is its canonical flag (hidden old spellings come after)
    out: dict[str, argparse.Action] = {}
    for a in _train_parser()._actions:
        if a.option_strings:
            out.setdefault(a.dest, a)
    return out


def test_trainconfig_has_exactly_the_table_fields_with_its_defaults():
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    assert set(fields) == {o.name for o in OPTIONS} | {"data", "notes"}
    cfg = TrainConfig(data="x")
    for o in OPTIONS:
        assert getattr(cfg, o.name) == o.default, o.name


def test_cli_flags_are_the_table_with_its_defaults_and_choices():
    actions = _cli_actions()
    for o in options_for(CLI):
        a = actions[o.name]
        assert o.flag in a.option_strings, o.name
        assert a.default == o.default, o.name
        if o.choices:
            assert a.metavar == "{" + ",".join(o.choices) + "}", o.name
    table_cli = {o.name for o in options_for(CLI)}
    train_only = {"resume", "config", "help", "dry_run"}
    assert set(actions) - train_only == table_cli
    ns = _train_parser().parse_args(["x"])
    assert TrainConfig(data="x") == TrainConfig(
        data="x", **{o.name: getattr(ns, o.name) for o in options_for(CLI)})


def test_web_model_is_the_table_with_its_defaults_and_choices():
    fields = schemas.TrainOptions.model_fields
    assert set(fields) == {o.name for o in options_for(WEB)} | {"data"}
    defaults = schemas.TrainOptions(data="food")
    for o in options_for(WEB):
        assert getattr(defaults, o.name) == o.default, o.name
    props = schemas.TrainOptions.model_json_schema()["properties"]
    for o in options_for(WEB):
        if o.choices and not o.web_choices:
            assert props[o.name]["enum"] == list(o.choices), o.name
    # server-side settings (paths, devices, trackers) are never taken from a browser
    for name in ("out", "name", "cache_dir", "device", "mlflow_uri"):
        assert name not in fields


# one bad value per kind of rule; each face must answer with the table's message
BAD = [("strategy", "magic"), ("augment", "heavy"), ("bn_policy", "sometimes"),
       ("head_lr", 0), ("head_lr", -1e-3), ("body_lr", 0), ("epochs", 0), ("train_top", -1),
       ("batch_size", 0), ("val_fraction", 1.0), ("dropout", 1.0), ("lr_decay", 2),
       ("schedule", "linear"), ("class_weighting", "some")]


@pytest.mark.parametrize(("name", "value"), BAD)
def test_a_bad_value_gets_the_same_message_from_every_face(name, value, capsys):
    with pytest.raises(ValueError) as lib:
        check(name, value)
    message = str(lib.value)
    assert name in message
    with pytest.raises(ValueError, match=None) as cfg:
        TrainConfig(data="x", **{name: value})
    assert str(cfg.value) == message
    with pytest.raises(SystemExit):
        _train_parser().parse_args(["x", BY_NAME[name].flag, str(value)])
    assert message in capsys.readouterr().err
    if WEB in BY_NAME[name].faces:
        with pytest.raises(pydantic.ValidationError) as web:
            schemas.TrainOptions(data="food", **{name: value})
        assert message in str(web.value)


def test_text_where_a_number_belongs_is_refused_alike(capsys):
    with pytest.raises(SystemExit):
        _train_parser().parse_args(["x", "--head-lr", "fast"])
    assert "head_lr must be a number, got 'fast'" in capsys.readouterr().err
    with pytest.raises(pydantic.ValidationError, match="head_lr must be a number, got 'fast'"):
        schemas.TrainOptions(data="food", head_lr="fast")


def test_old_cli_spellings_still_work_and_mean_the_same():
    ns = _train_parser().parse_args(["x", "--bn", "train", "--workers", "2", "--no-cache"])
    assert (ns.bn_policy, ns.num_workers, ns.cache_features) == ("train", 2, False)
    ns = _train_parser().parse_args(["x", "--bn-policy", "train", "--no-cache-features"])
    assert (ns.bn_policy, ns.cache_features) == ("train", False)


def test_sweep_kinds_one_spelling_and_defaults():
    assert set(SWEEP_KINDS) == {"data-size", "freeze-depth", "compare"}
    web = schemas.SweepRequest.model_json_schema()["properties"]["kind"]["enum"]
    assert web == list(SWEEP_KINDS)
    with pytest.raises(ValueError, match="freeze-depth sweeps use two-phase or finetune"):
        check_sweep("freeze-depth", None, "feature-extraction")
    with pytest.raises(ValueError, match="unknown strategies"):
        check_sweep("compare", ["magic"])
    with pytest.raises(ValueError, match="images per class"):
        check_sweep("data-size", [0])


def test_a_backbone_without_offline_weights_is_refused_alike_unless_chosen(tiny_data, tmp_path,
                                                                          capsys):
    from fastapi.testclient import TestClient

    from transferlab.api import fine_tune
    from transferlab.cli.main import main
    from transferlab.models.factory import offline_availability
    from transferlab.models.weights import WeightsUnavailableError
    from transferlab.web.app import create_app

    if offline_availability("resnet18") != "download":
        pytest.skip("resnet18 weights are cached on this machine")
    message = "no pretrained weights for resnet18 on this machine (offline)"
    with pytest.raises(WeightsUnavailableError, match=re.escape(message)):
        fine_tune(data=str(tiny_data), model="resnet18", out=str(tmp_path))
    assert main(["train", str(tiny_data), "--model", "resnet18", "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    app = create_app(data_root=tiny_data.parent, runs_root=tmp_path, warm_worker=False)
    with TestClient(app) as client:
        r = client.post("/api/jobs/train", json={"data": tiny_data.name, "model": "resnet18"})
    assert r.status_code == 422 and message in r.json()["detail"]
    assert not any(tmp_path.glob("*resnet18*"))  # refused before any run folder
