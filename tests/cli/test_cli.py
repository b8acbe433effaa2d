"""The command line end to end on a tiny real subset."""

import json
import re
import subprocess
import sys

import pytest

from transferlab.cli.main import main


def test_train_evaluate_predict(tiny_data, tmp_path, capsys):
    code = main(["train", str(tiny_data), "--strategy", "feature-extraction", "--epochs", "3",
                 "--out", str(tmp_path), "--name", "fe", "--batch-size", "8"])
    out = capsys.readouterr().out
    assert code == 0
    assert "run folder:" in out
    # every accuracy with its 95 % interval and the number of images it rests on; without a
    # test split the validation figure is called optimistic
    assert re.search(r"validation accuracy 0\.\d{3} \[0\.\d{3}, [01]\.\d{3}\] on 12 images "
                     r"\(balanced 0\.\d{3}; optimistic", out), out
    run = tmp_path / "fe"
    for name in ("config.json", "data.json", "metrics.csv", "metrics.json", "best.safetensors",
                 "best.json", "curves.png", "confusion.png", "report.md", "evaluation.json",
                 "reliability.png",
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


def test_help_for_every_command(capsys):
    from transferlab.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    commands = sorted(sub.choices)
    assert {"train", "evaluate", "predict", "summary", "models"} <= set(commands)
    for cmd in [[], *([c] for c in commands)]:
        with pytest.raises(SystemExit) as exit_info:
            main([*cmd, "--help"])
        assert exit_info.value.code == 0
        assert "usage:" in capsys.readouterr().out, cmd
    # And once through the installed module entry point, as a user runs it.
    proc = subprocess.run([sys.executable, "-m", "transferlab", "--help"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and "usage: transferlab" in proc.stdout, proc.stderr


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["doctor", "--help"],
                                  ["models"]])
def test_help_and_models_do_not_import_torch(argv):
    """Start-up: the CLI parses first and imports torch/timm only for a command that needs
    them (``import torch`` alone takes seconds)."""
    code = ("import sys\nfrom transferlab.cli.main import main\ntry:\n"
            f"    main({argv!r})\nexcept SystemExit:\n    pass\n"
            "print('heavy:', sorted({'torch', 'timm'} & set(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("heavy: []"), proc.stdout[-500:]


@pytest.mark.parametrize("cmd", [["models"]])
def test_models_lists_offline_availability(cmd, capsys):
    assert main(cmd) == 0
    out = capsys.readouterr().out
    assert "tf_efficientnet_lite0" in out and "offline" in out


def test_config_file_fills_unset_flags(tmp_path):
    from transferlab.cli.main import build_parser
    from transferlab.cli.train import config_from_args

    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("strategy: feature-extraction\nepochs: 2\nbatch_size: 8\n")
    args = build_parser().parse_args(["train", "photos", "--config", str(cfg_file),
                                      "--epochs", "5"])
    cfg = config_from_args(args, args.data)
    assert (cfg.strategy, cfg.epochs, cfg.batch_size, cfg.data) == ("feature-extraction", 5, 8,
                                                                     "photos")
    cfg_file.write_text("stratgy: full\n")
    with pytest.raises(ValueError, match="unknown settings"):
        config_from_args(build_parser().parse_args(["train", "x", "--config", str(cfg_file)]), "x")
