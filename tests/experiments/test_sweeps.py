"""Sweep plans (nested subsets, one validation set, clipping) and resuming a killed sweep."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from transferlab.config import TrainConfig
from transferlab.data import load_splits
from transferlab.experiments import sweeps
from transferlab.experiments.sweeps import (
    ScratchRecipe,
    compare_strategies,
    compare_trials,
    data_size_sweep,
    data_size_trials,
    effective_sizes,
    freeze_depth_trials,
    read_rows,
    resume_sweep,
)
from transferlab.experiments.trials import Trial, run_trial

FAST = {"epochs": 2, "image_size": 64, "batch_size": 8}


def _class_folders(src: Path, dest: Path, per_class: int = 12, classes: int = 3) -> Path:
    """root/<class>/*.jpg (no split folders): the val split then comes from the seed."""
    for cls in sorted(p.name for p in (src / "train").iterdir())[:classes]:
        (dest / cls).mkdir(parents=True)
        for f in sorted((src / "train" / cls).iterdir())[:per_class]:
            shutil.copy(f, dest / cls / f.name)
    return dest


def _splits(cfg: TrainConfig):
    return load_splits(cfg.data, val_fraction=cfg.val_fraction, seed=cfg.seed,
                       per_class=cfg.per_class)


@pytest.mark.parametrize("layout", ["split-folders", "class-folders"])
def test_data_size_plan_is_nested_with_one_validation_set(sample_root, tmp_path, layout):
    data = sample_root if layout == "split-folders" else _class_folders(sample_root, tmp_path)
    sizes = [2, 5, 9] if layout == "class-folders" else [5, 10, 20]
    trials, effective, notes = data_size_trials(TrainConfig(data=str(data)), sizes, seeds=2)
    assert effective == sizes and notes == []
    assert len(trials) == len(sizes) * 2 * 2
    by_seed: dict[int, list] = {}
    for t in trials:
        splits = _splits(t.config)
        by_seed.setdefault(t.seed, []).append((t, splits))
        assert t.config.per_class == t.size and t.config.seed == t.seed
    vals = {}
    for seed, items in by_seed.items():
        # one validation set for every size and arm of a seed
        assert len({tuple(s.val) for _, s in items}) == 1
        vals[seed] = items[0][1].val
        transfer = {t.size: set(s.train) for t, s in items if t.arm == "transfer"}
        scratch = {t.size: set(s.train) for t, s in items if t.arm == "scratch"}
        assert transfer == scratch  # both arms see the same images
        for small, big in zip(sizes, sizes[1:], strict=False):
            assert transfer[small] < transfer[big]  # nested: the 5 lie inside the 10
            assert len(transfer[small]) == small * len(items[0][1].classes)
    if layout == "split-folders":
        assert vals[0] == vals[1]  # the val folder itself, for every seed
    # the other seed draws other subsets
    assert {t.size: set(s.train) for t, s in by_seed[0]} != {
        t.size: set(s.train) for t, s in by_seed[1]}


def test_scratch_arm_recipe():
    base = TrainConfig(data="x", strategy="two-phase", train_top=2, head_lr=5e-4)
    c = ScratchRecipe(epochs=12, lr=2e-3, image_size=96).config(base, per_class=10, seed=1)
    assert (c.strategy, c.weights, c.lrs, c.epochs, c.augment) == (
        "full", "random", [2e-3], 12, "standard")
    assert (c.head_lr, c.train_top, c.image_size, c.per_class, c.seed) == (
        None, None, 96, 10, 1)
    from transferlab.finetune.strategies import plan_phases

    names = ["stem", "stage1", "stage2", "head"]
    (phase,) = plan_phases(c, names)
    assert phase.train_top is None and set(phase.lrs.values()) == {2e-3}


def test_effective_sizes_clip_and_say_so():
    sizes, notes = effective_sizes([10, 50, 100], [30, 30, 30], ["a", "b", "c"])
    assert sizes == [10, 30]
    assert any("size 50 exceeds the largest class (30 training images): clipped to 30" in n
               for n in notes)
    assert any("size 100 gives the same subset as size 30: run once" in n for n in notes)
    sizes, notes = effective_sizes([10, 40], [5, 40], ["rare", "common"])
    assert sizes == [10, 40]
    assert any("use all they have: rare (5)" in n for n in notes)
    with pytest.raises(ValueError, match="at least 1"):
        effective_sizes([0], [5], ["a"])


def test_clipped_sizes_in_plan_and_in_the_data(sample_root):
    trials, effective, notes = data_size_trials(TrainConfig(data=str(sample_root)),
                                                [10, 500], compare=["transfer"], seeds=1)
    assert effective == [10, 30]  # the sample has 30 training images per class
    assert "clipped to 30" in " ".join(notes)
    top = [t for t in trials if t.size == 30][0]
    assert len(_splits(top.config).train) == 30 * 4


def test_freeze_depth_and_position_plans():
    cfg = TrainConfig(data="x")
    body = ["stem", "stage1", "stage2"]
    depth = freeze_depth_trials(cfg, body, seeds=2)
    assert [t.depth for t in depth] == [0, 0, 1, 1, 2, 2, 3, 3]
    assert all(t.config.strategy == "two-phase" and t.config.augment == "standard"
               for t in depth)
    assert [t.labels["groups"] for t in depth[::2]] == ["", "stage2", "stage1,stage2",
                                                       "stem,stage1,stage2"]
    pos = freeze_depth_trials(cfg, body, mode="position", groups=["stem", "stage2"])
    assert [(t.arm, t.group, t.config.train_groups) for t in pos] == [
        ("reference", "head-only", []), ("position", "stem", ["stem"]),
        ("position", "stage2", ["stage2"]), ("reference", "all", None)]
    assert len({t.key for t in pos}) == len(pos)
    with pytest.raises(ValueError, match="within 0..3"):
        freeze_depth_trials(cfg, body, depths=[4])
    with pytest.raises(ValueError, match="unknown body groups"):
        freeze_depth_trials(cfg, body, mode="position", groups=["neck"])


def test_compare_plan_is_seed_major_and_checked():
    trials = compare_trials(TrainConfig(data="x"), ["feature-extraction", "auto"], seeds=[3, 7])
    assert [(t.seed, t.arm) for t in trials] == [
        (3, "feature-extraction"), (3, "auto"), (7, "feature-extraction"), (7, "auto")]
    with pytest.raises(ValueError, match="unknown strategies"):
        compare_trials(TrainConfig(data="x"), ["feature-extractor"])
    with pytest.raises(ValueError, match="repeat"):
        compare_trials(TrainConfig(data="x"), ["full", "full"])


def test_trial_round_trip_and_keys():
    t = Trial(TrainConfig(data="x", per_class=5), "transfer", seed=2, size=5,
              labels={"note": "y"})
    back = Trial.from_dict(json.loads(json.dumps(t.to_dict())))
    assert back == t and back.key == "transfer_n5_s2"


def test_a_torn_last_line_is_ignored_and_not_glued_to_the_next_row(tmp_path):
    (tmp_path / "trials.jsonl").write_text('{"key": "a", "accuracy": 0.5}\n{"key": "b", "acc')
    assert [r["key"] for r in read_rows(tmp_path)] == ["a"]
    sweeps._append_row(tmp_path, {"key": "c", "accuracy": 0.7})
    assert [r["key"] for r in read_rows(tmp_path)] == ["a", "c"]
    assert read_rows(tmp_path / "nothing") == []


class Crash(RuntimeError):
    pass


def test_crashed_sweep_resumes_without_rerunning_finished_trials(tiny_data, tmp_path,
                                                                  monkeypatch):
    ran: list[str] = []
    limit = [1]

    def counting(trial, runs_dir):
        if len(ran) >= limit[0]:
            raise Crash("simulated crash")
        ran.append(trial.key)
        return run_trial(trial, runs_dir)

    monkeypatch.setattr(sweeps, "run_trial", counting)
    kwargs = {"seeds": 3, "out": tmp_path, "name": "sw", **FAST}
    with pytest.raises(Crash):
        compare_strategies(tiny_data, ["feature-extraction"], **kwargs)
    sweep_dir = tmp_path / "sw"
    first = read_rows(sweep_dir)
    assert [r["key"] for r in first] == ran == ["feature-extraction_s0"]
    # another plan in the same folder is refused, not mixed in
    with pytest.raises(ValueError, match="different compare sweep"):
        compare_strategies(tiny_data, ["feature-extraction", "finetune"], **kwargs)

    ran.clear()
    limit[0] = 99
    result = compare_strategies(tiny_data, ["feature-extraction"], **kwargs)  # same call again
    assert ran == ["feature-extraction_s1", "feature-extraction_s2"]
    assert (result.ran, result.skipped) == (2, 1)
    lines = (sweep_dir / "trials.jsonl").read_text().splitlines()
    assert [json.loads(x)["key"] for x in lines] == [
        "feature-extraction_s0", "feature-extraction_s1", "feature-extraction_s2"]
    assert json.loads(lines[0]) == first[0]  # the finished row was kept, not redone
    assert [r["key"] for r in result.rows] == [json.loads(x)["key"] for x in lines]

    # nothing missing: resuming runs nothing and rewrites the outputs
    ran.clear()
    before = (sweep_dir / "trials.jsonl").read_text()
    result = resume_sweep(sweep_dir)
    assert ran == [] and (result.ran, result.skipped) == (0, 3)
    assert (sweep_dir / "trials.jsonl").read_text() == before
    assert result.files["report"].is_file() and result.files["plot"].is_file()


@pytest.mark.slow
def test_killed_cli_sweep_resumes(tiny_data, tmp_path):
    """SIGKILL the sweep process mid-way, then `sweep resume` runs only what is missing."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "transferlab.cli.main", "compare", str(tiny_data),
           "--strategies", "feature-extraction", "--seeds", "4", "--epochs", "2",
           "--image-size", "64", "--out", str(tmp_path), "--name", "sw"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    rows = tmp_path / "sw" / "trials.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if rows.is_file() and rows.read_text().count("\n") >= 1:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the sweep finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = read_rows(tmp_path / "sw")
    assert 1 <= len(done_before) < 4
    out = subprocess.run([sys.executable, "-m", "transferlab.cli.main", "sweep", "resume",
                          str(tmp_path / "sw")], env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"resuming: {len(done_before)} of 4 trials already finished" in out.stdout
    assert out.stdout.count("] feature-extraction_s") == 4 - len(done_before)
    after = read_rows(tmp_path / "sw")
    assert sorted(r["key"] for r in after) == [f"feature-extraction_s{i}" for i in range(4)]
    assert rows.read_text().count("\n") == 4  # each trial recorded once
    for row in done_before:
        assert next(r for r in after if r["key"] == row["key"]) == row


@pytest.mark.slow
def test_data_size_sweep_end_to_end_reports_clipping(tiny_data, tmp_path):
    result = data_size_sweep(tiny_data, [2, 50], compare=["transfer", "scratch"], seeds=2,
                             scratch=ScratchRecipe(epochs=1, image_size=64), out=tmp_path,
                             name="ds", epochs=3)
    assert [(e["arm"], e["size"]) for e in result.table] == [
        ("transfer", 2), ("scratch", 2), ("transfer", 6), ("scratch", 6)]
    assert len(result.comparisons) == 2
    assert all(c["what"].startswith("transfer - scratch at") for c in result.comparisons)
    report = result.files["report"].read_text()
    assert "size 50 exceeds the largest class (6 training images): clipped to 6" in report
    assert "![data-size](data-size.png)" in report
    assert result.files["plot"].read_bytes()[:4] == b"\x89PNG"
    scratch_rows = [r for r in result.rows if r["arm"] == "scratch"]
    assert all(r["strategy"] == "full" and r["trainable_params"] == r["total_params"]
               for r in scratch_rows)
    transfer_rows = [r for r in result.rows if r["arm"] == "transfer"]
    assert all(r["trainable_params"] < r["total_params"] / 100 for r in transfer_rows)
    # one feature cache for the sweep, dropped when it finishes (rebuilt on demand)
    cfg = json.loads(Path(transfer_rows[0]["run_dir"], "config.json").read_text())
    assert cfg["cache_dir"] == str((tmp_path / "ds" / "cache").absolute())
    assert not (tmp_path / "ds" / "cache").exists()
    # lean trials: metrics and best heads; no checkpoints, no copies of a whole network
    for row in result.rows:
        run = Path(row["run_dir"])
        assert (run / "metrics.json").is_file() and (run / "evaluation.json").is_file()
        assert not (run / "checkpoints").exists()
        best = run / "best.safetensors"
        if row["arm"] == "transfer":
            assert best.stat().st_size < 100_000  # the head (4 classes x 1280 features)
        else:
            assert not best.exists()  # random weights: a whole network, not kept
