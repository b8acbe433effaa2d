"""The action list: exactly the listed images change, for the run only; files untouched."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from transferlab.data import load_splits
from transferlab.doctor import FixesError, FixList, apply_fixes, load_fixes

from .conftest import folder_hash


def _rel(root, path):
    return path.relative_to(root).as_posix()


def test_apply_fixes_changes_exactly_the_listed_images(tiny_data):
    splits = load_splits(tiny_data)
    relabel, remove, keep = splits.train[0][0], splits.train[7][0], splits.val[1][0]
    fixes = FixList(dataset=str(tiny_data))
    relabel = Path(relabel)
    fixes.set(_rel(tiny_data, relabel), "relabel",
              splits.classes[(splits.train[0][1] + 1) % len(splits.classes)])
    fixes.set(_rel(tiny_data, Path(remove)), "remove")
    fixes.set(_rel(tiny_data, Path(keep)), "keep")
    new, changes = apply_fixes(splits, fixes)
    old_train, new_train = dict(splits.train), dict(new.train)
    assert set(old_train) - set(new_train) == {remove}
    differ = {p for p in new_train if new_train[p] != old_train[p]}
    assert differ == {str(relabel)}
    assert new_train[str(relabel)] == (splits.train[0][1] + 1) % len(splits.classes)
    assert new.val == splits.val  # keep changes nothing
    assert [c["action"] for c in changes] == ["relabel", "remove"]
    assert splits.train[0][1] != new_train[str(relabel)]  # the input splits are not mutated


def test_bad_action_lists_are_refused_with_the_entry(tiny_data, tmp_path):
    splits = load_splits(tiny_data)
    fixes = FixList(dataset=str(tiny_data))
    fixes.set("train/baklava/not-there.jpg", "remove")
    with pytest.raises(FixesError, match="not-there.jpg is not an image"):
        apply_fixes(splits, fixes)
    fixes = FixList(dataset=str(tiny_data))
    some = _rel(tiny_data, Path(splits.train[0][0]))
    fixes.set(some, "relabel", "pizza")
    with pytest.raises(FixesError, match="unknown class 'pizza'"):
        apply_fixes(splits, fixes)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "transferlab-fixes", "actions": [
        {"path": some, "action": "rename"}]}))
    with pytest.raises(FixesError, match="unknown action 'rename'"):
        load_fixes(bad)
    with pytest.raises(FixesError, match="not found"):
        load_fixes(tmp_path / "missing.json")


@pytest.mark.slow
def test_train_apply_fixes_from_the_command_line(tiny_data, tmp_path):
    """`transferlab train --apply-fixes` trains on the fixed labels, records what changed and
    leaves every file of the dataset as it was."""
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    splits = load_splits(data)
    path = Path(splits.train[0][0])
    leak = data / "train" / splits.classes[1] / "copy_of_val.jpg"
    leak.write_bytes(Path(splits.val[0][0]).read_bytes())
    fixes = FixList(dataset=str(data))
    fixes.set(_rel(data, path), "relabel", splits.classes[2])
    fixes.set(_rel(data, leak), "remove")
    fixes_file = fixes.save(tmp_path / "fixes.json")
    before = folder_hash(data)
    out = subprocess.run(
        [sys.executable, "-m", "transferlab", "train", str(data), "--strategy",
         "feature-extraction", "--epochs", "1", "--out", str(tmp_path / "runs"),
         "--apply-fixes", str(fixes_file)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "data check" not in out.stderr  # the leak was removed by the action list
    run = next((tmp_path / "runs").iterdir())
    doc = json.loads((run / "data.json").read_text())
    assert doc["train"] == len(splits.train)  # +1 leak, -1 removed
    assert {(c["path"], c["action"]) for c in doc["fixes"]["applied"]} == {
        (_rel(data, path), "relabel"), (_rel(data, leak), "remove")}
    assert folder_hash(data) == before
    # without the list, training warns about the leak and how to see it, and uses the data as is
    out = subprocess.run(
        [sys.executable, "-m", "transferlab", "train", str(data), "--strategy",
         "feature-extraction", "--epochs", "1", "--out", str(tmp_path / "runs2")],
        capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "1 image(s) shared between train and val/test" in out.stderr
    assert f"transferlab doctor {data}" in out.stderr
    assert json.loads(next((tmp_path / "runs2").iterdir()).joinpath("data.json").read_text()
                      )["train"] == len(splits.train) + 1
    assert folder_hash(data) == before
