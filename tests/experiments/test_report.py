"""Tables, verdicts, CSV/JSON, plots and markdown from result rows."""

from __future__ import annotations

import csv
import json

import pytest

from transferlab.experiments.report import aggregate, comparisons, write_outputs
from transferlab.experiments.sweeps import SweepResult


def _row(arm, seed, acc, **kw):
    base = {"key": f"{arm}_{kw.get('size', '')}_{kw.get('depth', '')}_{kw.get('group', '')}"
                   f"_s{seed}",
            "arm": arm, "seed": seed, "accuracy": acc, "balanced_accuracy": acc - 0.01,
            "val_loss": 1 - acc, "trainable_params": 1000, "total_params": 5000,
            "seconds": 10.0, "seconds_per_epoch": 2.0, "images_per_s": 50.0,
            "per_class_used": kw.get("size"), "epochs": 5, "strategy": arm, "notes": []}
    return {**base, **kw}


def _data_size_rows():
    rows = []
    for size, (t, s) in {10: ([0.60, 0.64, 0.62], [0.20, 0.18, 0.22]),
                         100: ([0.80, 0.82, 0.84], [0.79, 0.83, 0.81])}.items():
        for seed in range(3):
            rows.append(_row("transfer", seed, t[seed], size=size))
            rows.append(_row("scratch", seed, s[seed], size=size))
    return rows


def test_aggregate_means_intervals_and_order():
    table = aggregate(_data_size_rows(), "data-size")
    assert [(e["arm"], e["size"]) for e in table] == [
        ("transfer", 10), ("scratch", 10), ("transfer", 100), ("scratch", 100)]
    first = table[0]
    assert first["n"] == 3 and first["seeds"] == [0, 1, 2]
    assert first["accuracy_mean"] == pytest.approx(0.62)
    half = 4.302653 * 0.02 / 3**0.5  # t(0.975, 2) * sd / sqrt(n)
    assert first["accuracy_ci_low"] == pytest.approx(0.62 - half, abs=1e-6)
    assert (first["accuracy_min"], first["accuracy_max"]) == (0.60, 0.64)
    assert first["balanced_accuracy_mean"] == pytest.approx(0.61)


def test_data_size_verdicts_tell_a_gap_from_noise():
    rows = _data_size_rows()
    cs = comparisons(rows, aggregate(rows, "data-size"), "data-size", "accuracy")
    assert [c["what"] for c in cs] == ["transfer - scratch at 10 per class",
                                       "transfer - scratch at 100 per class"]
    assert cs[0]["diff"] == pytest.approx(0.42) and cs[0]["within_noise"] is False
    assert cs[0]["verdict"].startswith("transfer better")
    assert cs[1]["within_noise"] is True


def test_compare_singles_out_auto_against_the_best_fixed_preset():
    rows = [_row(s, seed, acc) for s, accs in {"feature-extraction": [0.70, 0.72, 0.71],
                                                "full": [0.80, 0.81, 0.79],
                                                "auto": [0.79, 0.82, 0.80]}.items()
            for seed, acc in enumerate(accs)]
    cs = comparisons(rows, aggregate(rows, "compare"), "compare", "accuracy")
    auto = cs[0]
    assert auto["what"] == "auto - best fixed preset" and auto["b"] == "full"
    assert auto["within_noise"] is True
    fe = next(c for c in cs if c["a"] == "feature-extraction")
    assert fe["b"] == "auto" and fe["within_noise"] is False  # auto has the best mean
    assert len(cs) == 2  # full vs auto is said once

    tied = [r for r in rows if r["arm"] != "auto"] + [
        {**r, "arm": "auto", "key": r["key"] + "a"} for r in rows if r["arm"] == "full"]
    cs = comparisons(tied, aggregate(tied, "compare"), "compare", "accuracy")
    assert [c["what"] for c in cs] == ["auto - best fixed preset",
                                       "feature-extraction - best (full)"]
    assert cs[1]["verdict"].startswith("full better (Welch p")


@pytest.mark.parametrize("kind", ["data-size", "freeze-depth", "position", "compare"])
def test_outputs_are_written(kind, tmp_path):
    if kind == "data-size":
        rows = _data_size_rows()
    elif kind == "freeze-depth":
        rows = [_row("depth", seed, 0.6 + 0.05 * d + 0.01 * seed, depth=d)
                for d in range(3) for seed in range(2)]
    elif kind == "position":
        rows = [_row("reference", 0, 0.6, group="head-only")] + [
            _row("position", 0, 0.7, group=g, depth=i) for i, g in enumerate(["stem", "stage1"])]
    else:
        rows = [_row(s, seed, 0.7 + 0.01 * seed) for s in ("full", "gradual") for seed in (0, 1)]
    result = SweepResult(kind, tmp_path, rows, [], [], "accuracy", notes=["a note"])
    write_outputs(result, {"data": "/data", "seeds": [0, 1], "metric": "accuracy"})
    assert result.files["plot"].read_bytes()[:4] == b"\x89PNG"
    with open(result.files["table_csv"]) as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == len(result.table) and "accuracy_ci_low" in table[0]
    with open(result.files["trials_csv"]) as fh:
        assert len(list(csv.DictReader(fh))) == len(rows)
    doc = json.loads(result.files["table_json"].read_text())
    assert doc["kind"] == kind and doc["notes"] == ["a note"]
    report = result.files["report"].read_text()
    assert f"![{kind}]({kind}.png)" in report and "- a note" in report
    assert "95 % Student-t" in report
    if kind == "data-size":
        assert "within noise" in report and "do not read an order into them" in report
    if kind == "position":
        assert "undetermined" in report  # one seed: no verdict is claimed
    assert str(result)  # the terminal table renders
