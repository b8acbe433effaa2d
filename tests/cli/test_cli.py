"""The command line end to end on a tiny real subset."""

import json
import subprocess
import sys

import pytest

from transferlab.cli.main import main


def test_train_evaluate_predict(tiny_data, tmp_path, capsys):
    code = main(["train", str(tiny_data), "--strategy", "feature-extraction", "--epochs", "3",
                 "--out", str(tmp_path), "--name", "fe", "--batch-size", "8"])
    out = capsys.readouterr().out
    assert code == 0
    assert "validation accuracy:" in out and "run folder:" in out
    run = tmp_path / "fe"
    for name in ("config.json", "data.json", "metrics.csv", "metrics.json", "best.safetensors",
                 "best.json", "curves.png", "confusion.png", "report.md", "evaluation.json",
                 "events.jsonl", "checkpoints/last.safetensors"):
        assert (run / name).is_file(), name
    sidecar = json.loads((run / "best.json").read_text())
    assert sidecar["model_name"] == "tf_efficientnet_lite0"
    assert sidecar["classes"] == sorted(p.name for p in (tiny_data / "train").iterdir())
    assert sidecar["weights"]["source"] == "package" and sidecar["strategy"] == "feature-extraction"
    assert sidecar["data_config"]["mean"] == [0.5, 0.5, 0.5]
    assert len(json.loads((run / "metrics.json").read_text())) == 3

    assert main(["evaluate", str(run), str(tiny_data)]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "confusion matrix" in out and "bibimbap" in out

    image = sorted((tiny_data / "val" / "bibimbap").iterdir())[0]
    assert main(["predict", str(run), str(image), "--json", "--topk", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result[0]["top"]) == 2 and result[0]["top"][0]["class"] in sidecar["classes"]


def test_summary_prints_groups_and_head(capsys):
    assert main(["summary", "resnet18", "--classes", "7", "--train-top", "1"]) == 0
    out = capsys.readouterr().out
    assert "in_features=512 out_features=7" in out
    assert "stage4" in out and "frozen" in out
    assert main(["summary", "resnet50", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["total_params"] == 25_557_032


def test_clear_errors_exit_2(tmp_path, capsys):
    assert main(["train", str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err
    single = tmp_path / "one" / "cats"
    single.mkdir(parents=True)
    assert main(["train", str(tmp_path / "one")]) == 2
    assert "2 classes" in capsys.readouterr().err
    assert main(["predict", str(tmp_path), "x.jpg"]) == 2
    assert "finished run folder" in capsys.readouterr().err


def test_help_for_every_command():
    for cmd in ([], ["train"], ["evaluate"], ["predict"], ["summary"], ["models"]):
        proc = subprocess.run([sys.executable, "-m", "transferlab.cli.main", *cmd, "--help"],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0 and "usage:" in proc.stdout, (cmd, proc.stderr)


@pytest.mark.parametrize("cmd", [["models"]])
def test_models_lists_offline_availability(cmd, capsys):
    assert main(cmd) == 0
    out = capsys.readouterr().out
    assert "tf_efficientnet_lite0" in out and "offline" in out
