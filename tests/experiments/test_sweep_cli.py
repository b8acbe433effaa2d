"""The sweep commands end to end on a tiny copy of the shipped sample photos."""

from __future__ import annotations

import json

import pytest

from transferlab.cli.main import main


def test_data_size_command_says_what_it_clipped(tiny_data, tmp_path, capsys):
    code = main(["sweep", "data-size", str(tiny_data), "--sizes", "2,50", "--compare",
                 "transfer", "--seeds", "2", "--epochs", "3", "--image-size", "64",
                 "--out", str(tmp_path), "--name", "ds"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "note: size 50 exceeds the largest class (6 training images): clipped to 6" in out
    assert "[4/4] transfer_n6_s1" in out
    assert f"report: {tmp_path / 'ds' / 'report.md'}" in out
    table = json.loads((tmp_path / "ds" / "table.json").read_text())
    assert [(e["arm"], e["size"], e["n"]) for e in table["table"]] == [
        ("transfer", 2, 2), ("transfer", 6, 2)]
    # the same command again finds everything done
    assert main(["sweep", "data-size", str(tiny_data), "--sizes", "2,50", "--compare",
                 "transfer", "--seeds", "2", "--epochs", "3", "--image-size", "64",
                 "--out", str(tmp_path), "--name", "ds"]) == 0
    assert "resuming: 4 of 4 trials already finished" in capsys.readouterr().out


def test_compare_command_with_auto(tiny_data, tmp_path, capsys):
    code = main(["compare", str(tiny_data), "--strategies", "feature-extraction,auto",
                 "--seeds", "2", "--epochs", "2", "--image-size", "64", "--out", str(tmp_path),
                 "--name", "cmp"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "auto → feature-extraction" in out
    assert "auto - best fixed preset" in out
    report = (tmp_path / "cmp" / "report.md").read_text()
    assert "What auto chose" in report and (tmp_path / "cmp" / "compare.png").is_file()


@pytest.mark.slow
def test_position_command(tiny_data, tmp_path, capsys):
    code = main(["sweep", "freeze-depth", str(tiny_data), "--mode", "position", "--groups",
                 "stage7", "--epochs", "1", "--probe-epochs", "2", "--image-size", "64",
                 "--out", str(tmp_path), "--name", "pos"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "[3/3]" in out and "stage7 - head only" in out
    assert (tmp_path / "pos" / "position.png").is_file()


def test_lr_find_command(tiny_data, tmp_path, capsys):
    plot, curve = tmp_path / "lr.png", tmp_path / "lr.json"
    code = main(["lr-find", str(tiny_data), "--strategy", "feature-extraction", "--steps", "30",
                 "--plot", str(plot), "--json", str(curve), "--cache-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "suggested head LR:" in out and plot.is_file()
    assert json.loads(curve.read_text())["suggestion"] is not None


@pytest.mark.parametrize("argv,message", [
    (["compare", "DATA", "--strategies", "feature-extraction,magic"], "unknown strategies"),
    (["sweep", "data-size", "DATA", "--compare", "transfer,finetune"],
     "compare takes transfer and/or scratch"),
    (["sweep", "freeze-depth", "DATA", "--depths", "0,42"], "depths must be within 0..8"),
    (["sweep", "resume", "NOWHERE"], "is not a sweep folder"),
])
def test_bad_input_is_a_clear_error(argv, message, tiny_data, tmp_path, capsys):
    argv = [str(tiny_data) if a == "DATA" else str(tmp_path / "x") if a == "NOWHERE" else a
            for a in argv]
    assert main([*argv, "--out", str(tmp_path)] if argv[1] != "resume" else argv) == 2
    assert message in capsys.readouterr().err
