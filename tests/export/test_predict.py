"""Batch prediction: the CSV says what ``evaluate_model`` says, image by image."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from transferlab.cli.main import main
from transferlab.data import build_transforms, scan_image_folder
from transferlab.export.predict import (
    _open_draft,
    list_images,
    predict_folder,
    predict_images,
    predict_probs,
)
from transferlab.inspect.interpret import evaluate_model
from transferlab.models.factory import create_model
from transferlab.runs import load_model, save_model

SAMPLE = Path(__file__).resolve().parents[2] / "src" / "transferlab" / "sample_data" / "food4"


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _check_against_evaluate(model, folder: Path, rows: list[dict]) -> float:
    """Row count, classes, per-image predictions and accuracy equal evaluate_model's."""
    samples = scan_image_folder(folder, classes=model.classes).samples
    ev = evaluate_model(model, samples, build_transforms(model.data_config, train=False))
    assert len(rows) == len(samples) == len(list_images(folder))
    by_path = {str(Path(r["path"]).resolve()): r for r in rows}
    for i, (path, label) in enumerate(samples):
        row = by_path[str(Path(path).resolve())]
        assert row["predicted"] in model.classes and row["true"] == model.classes[label]
        assert row["predicted"] == model.classes[int(ev.preds[i])]
        assert float(row["probability"]) == pytest.approx(float(ev.probs[i].max()), abs=1e-4)
        assert row["correct"] == str(int(row["predicted"] == row["true"]))
        tops = [t.split(":") for t in row["top_k"].split(";")]
        assert tops[0][0] == row["predicted"] and all(c in model.classes for c, _ in tops)
    csv_accuracy = sum(r["correct"] == "1" for r in rows) / len(rows)
    assert csv_accuracy == pytest.approx(ev.accuracy)
    return csv_accuracy


def test_folder_prediction_matches_evaluate(trained_run, tmp_path):
    model = load_model(trained_run)
    calls = []
    result = predict_folder(model, SAMPLE / "val", batch_size=16,
                            progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (60, 60) and len(calls) == 4  # one progress call per batch
    rows = _read_csv(result.write_csv(tmp_path / "p.csv"))
    acc = _check_against_evaluate(model, SAMPLE / "val", rows)
    assert result.accuracy == pytest.approx(acc) and acc > 0.4  # trained: above chance (0.25)
    s = result.summary()
    assert s["images"] == 60 and s["failures"] == 0 and s["labelled"] == 60
    assert s["images_per_s"] > 0


def test_workers_and_batch_size_do_not_change_results(trained_run):
    model = load_model(trained_run)
    paths = list_images(SAMPLE / "val" / "bibimbap")[:6]
    a, _ = predict_probs(model, paths, batch_size=6)
    b, _ = predict_probs(model, paths, batch_size=4, num_workers=2)
    assert torch.allclose(a, b, atol=1e-5)


def test_bad_files_and_unlabelled_folders(trained_run, tmp_path):
    model = load_model(trained_run)
    folder = tmp_path / "mixed"
    (folder / "baklava").mkdir(parents=True)
    (folder / "unsorted" / "deeper").mkdir(parents=True)
    shutil.copy(next((SAMPLE / "val" / "baklava").iterdir()), folder / "baklava" / "a.jpg")
    shutil.copy(next((SAMPLE / "val" / "bibimbap").iterdir()),
                folder / "unsorted" / "deeper" / "b.jpg")
    (folder / "unsorted" / "broken.jpg").write_bytes(b"not a jpeg at all")
    (folder / "notes.txt").write_text("ignored")
    (folder / ".hidden.jpg").write_bytes(b"ignored")
    result = predict_folder(model, folder)
    rows = {Path(r["path"]).name: r for r in _read_csv(result.write_csv(tmp_path / "m.csv"))}
    assert sorted(rows) == ["a.jpg", "b.jpg", "broken.jpg"]
    assert rows["a.jpg"]["true"] == "baklava" and rows["a.jpg"]["correct"] in {"0", "1"}
    assert rows["b.jpg"]["true"] == "" and rows["b.jpg"]["correct"] == ""
    assert rows["b.jpg"]["predicted"] in model.classes
    assert "cannot read image" in rows["broken.jpg"]["error"]
    assert rows["broken.jpg"]["predicted"] == ""
    s = result.summary()
    assert (s["images"], s["failures"], s["labelled"]) == (3, 1, 1)


def test_predict_images_keeps_its_contract(trained_run, tmp_path):
    model = load_model(trained_run)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG broken")
    good = next((SAMPLE / "val" / "beef_tartare").iterdir())
    out = predict_images(model, [good, bad], topk=2)
    assert out[0]["path"] == str(good) and len(out[0]["top"]) == 2
    assert out[0]["top"][0]["prob"] >= out[0]["top"][1]["prob"]
    assert sum(t["prob"] for t in out[0]["top"]) <= 1.0 + 1e-6
    assert set(out[1]) == {"path", "error"}


def test_fast_decode_reads_big_jpegs_at_reduced_scale(trained_run, tmp_path):
    model = load_model(trained_run)
    src = next((SAMPLE / "val" / "baklava").iterdir())
    big = tmp_path / "big.jpg"
    Image.open(src).convert("RGB").resize((1600, 1200), Image.LANCZOS).save(big, quality=95)
    drafted = _open_draft(str(big), 256)
    assert drafted.size == (400, 300)  # 1/4 scale: the shorter side stays >= 256
    full, _ = predict_probs(model, [big])
    fast, _ = predict_probs(model, [big], fast_decode=True)
    assert (fast - full).abs().max() < 0.05  # slightly different pixels, same answer
    assert fast.argmax() == full.argmax()


def test_cli_predict_folder_writes_csv_and_summary(trained_run, tmp_path, capsys):
    out = tmp_path / "predictions.csv"
    assert main(["predict", str(trained_run), str(SAMPLE / "val" / "baklava"), "--out",
                 str(out), "--batch-size", "8"]) == 0
    captured = capsys.readouterr()
    assert "15 images, 0 failed" in captured.out and "images/s" in captured.out
    rows = _read_csv(out)
    assert len(rows) == 15 and "true" not in rows[0]  # no class folders below "baklava"
    # a folder and files together is ambiguous
    assert main(["predict", str(trained_run), str(SAMPLE), str(out)]) == 2
    assert "either one FOLDER or image files" in capsys.readouterr().err


def test_grayscale_defect_images(shared_data, tmp_path):
    """magnetic_tile: grayscale JPEGs of varied size, class-folder layout (subset)."""
    src = shared_data / "magnetic_tile"
    folder = tmp_path / "tiles"
    classes = sorted(p.name for p in src.iterdir() if p.is_dir())
    for c in classes:
        (folder / c).mkdir(parents=True)
        for f in sorted((src / c).iterdir())[:3]:
            shutil.copy(f, folder / c / f.name)
    torch.manual_seed(0)
    model = create_model(classes=classes)  # pretrained body, untrained head: any answers do
    result = predict_folder(model, folder, batch_size=8)
    rows = _read_csv(result.write_csv(tmp_path / "tiles.csv"))
    _check_against_evaluate(model, folder, rows)


@pytest.mark.slow
def test_cli_predict_food10_val(shared_data, tmp_path, capsys):
    """All 500 food10 validation photos through the command line, checked against evaluate."""
    folder = shared_data / "food10" / "val"
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    torch.manual_seed(0)
    model = create_model(classes=classes)
    save_model(model, tmp_path / "model.safetensors")
    out = tmp_path / "food10.csv"
    assert main(["predict", str(tmp_path / "model.safetensors"), str(folder), "--out",
                 str(out), "--workers", "1"]) == 0
    captured = capsys.readouterr()
    assert "500 images, 0 failed, accuracy" in captured.out
    rows = _read_csv(out)
    _check_against_evaluate(load_model(tmp_path / "model.safetensors"), folder, rows)


def test_predictions_use_the_runs_temperature(trained_run):
    """predict, batch predict and the web read probabilities as softmax(logits / T)."""
    model = load_model(trained_run)
    assert model.temperature != 1.0  # fitted on the validation split when the run ended
    photos = sorted((SAMPLE / "val" / "bibimbap").iterdir())[:3]
    probs, errors = predict_probs(model, photos)
    assert not any(errors)
    x = torch.stack([build_transforms(model.data_config, train=False)(
        __import__("transferlab.data", fromlist=["load_rgb"]).load_rgb(p)) for p in photos])
    with torch.inference_mode():
        logits = model.eval()(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(probs, (logits / model.temperature).softmax(1), atol=1e-5)
    assert not torch.allclose(probs, logits.softmax(1), atol=1e-3)
    top = predict_images(model, photos[:1], topk=1)[0]["top"][0]["prob"]
    assert top == pytest.approx(float(probs[0].max()), abs=1e-5)
