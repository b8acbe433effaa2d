"""Trials on a local Ray instance: same rows, same resumable trials.jsonl."""

from __future__ import annotations

import pytest

from transferlab.experiments.ray_backend import RayBackend
from transferlab.experiments.sweeps import compare_strategies, read_rows


def test_backend_checks_its_arguments():
    with pytest.raises(ValueError, match="cpus_per_trial must be positive"):
        RayBackend("local", cpus_per_trial=0)
    assert list(RayBackend("local").run([], "unused")) == []  # nothing to do: no Ray started


def test_trials_run_in_parallel_on_local_ray(tiny_data, tmp_path):
    pytest.importorskip("ray")
    seen = []
    with RayBackend("local", num_cpus=2, cpus_per_trial=1) as backend:
        result = compare_strategies(tiny_data, ["feature-extraction"], seeds=2, out=tmp_path,
                                    name="ray", backend=backend, epochs=2, image_size=64,
                                    batch_size=8,
                                    on_row=lambda row, done, total: seen.append((done, total)))
    assert sorted(seen) == [(1, 2), (2, 2)]
    rows = read_rows(tmp_path / "ray")
    assert sorted(r["key"] for r in rows) == ["feature-extraction_s0", "feature-extraction_s1"]
    for row in rows:  # each trial trained in a Ray worker and wrote its own run folder
        assert (tmp_path / "ray" / "runs" / row["key"] / "best.safetensors").is_file()
        assert 0.0 <= row["accuracy"] <= 1.0
    assert result.ran == 2 and result.files["report"].is_file()
