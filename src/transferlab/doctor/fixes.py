"""The reviewed action list: relabel, remove or keep an image, applied when training.

The list is a small JSON file of paths relative to the dataset folder. Training applies it
to the scanned samples in memory (a relabelled image gets its new class, a removed one is
left out); the user's files are never moved, renamed or rewritten. ``keep`` records that a
finding was reviewed and the image is fine as it is.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..data.scan import DatasetSplits

FORMAT = "transferlab-fixes"
ACTIONS = ("relabel", "remove", "keep")


class FixesError(ValueError):
    """An action list cannot be used; the message names the file and the entry at fault."""


@dataclass
class Action:
    path: str  # relative to the dataset folder, with forward slashes
    action: str  # relabel | remove | keep
    label: str | None = None  # the new class (relabel only)
    reason: str = ""

    def to_dict(self) -> dict:
        doc = {"path": self.path, "action": self.action}
        if self.label is not None:
            doc["label"] = self.label
        if self.reason:
            doc["reason"] = self.reason
        return doc


@dataclass
class FixList:
    dataset: str
    actions: dict[str, Action] = field(default_factory=dict)

    def set(self, path: str, action: str, label: str | None = None, reason: str = "") -> Action:
        if action not in ACTIONS:
            raise FixesError(f"unknown action {action!r} for {path}; use one of {ACTIONS}")
        if action == "relabel" and not label:
            raise FixesError(f"relabel of {path} needs the new label")
        entry = Action(path, action, label if action == "relabel" else None, reason)
        self.actions[path] = entry
        return entry

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(ACTIONS, 0)
        for a in self.actions.values():
            out[a.action] += 1
        return out

    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": 1, "dataset": self.dataset,
                "actions": [a.to_dict() for a in sorted(self.actions.values(),
                                                        key=lambda a: a.path)]}

    def save(self, path: str | os.PathLike[str]) -> Path:
        from ..utils import atomic_write_text

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1))
        return path


def load_fixes(path: str | os.PathLike[str]) -> FixList:
    """Read and check an action list written by ``transferlab doctor --fix`` or the web page."""
    path = Path(path)
    if not path.is_file():
        raise FixesError(f"action list not found: {path}")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise FixesError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise FixesError(f"{path} is not a transferlab action list (format {FORMAT!r})")
    fixes = FixList(dataset=str(doc.get("dataset", "")))
    for n, entry in enumerate(doc.get("actions", [])):
        if not isinstance(entry, dict) or "path" not in entry or "action" not in entry:
            raise FixesError(f"{path}: entry {n} needs 'path' and 'action'")
        try:
            fixes.set(str(entry["path"]), str(entry["action"]), entry.get("label"),
                      str(entry.get("reason", "")))
        except FixesError as exc:
            raise FixesError(f"{path}: {exc}") from exc
    return fixes


def relative_path(root: Path, path: str) -> str:
    return Path(path).absolute().relative_to(root.absolute()).as_posix()


def apply_fixes(splits: DatasetSplits, fixes: FixList, *, source: str = ""
                ) -> tuple[DatasetSplits, list[dict]]:
    """A copy of ``splits`` with the actions applied (files untouched), and the changes
    made: ``[{path, split, action, from, to}]`` for each relabelled or removed image.

    Every path must name an image of the dataset and every new label one of its classes;
    otherwise :class:`FixesError` names the entry, so a stale list never applies silently.
    """
    where = f"{source}: " if source else ""
    index = {c: i for i, c in enumerate(splits.classes)}
    known: set[str] = set()
    for name in ("train", "val", "test"):
        for p, _ in getattr(splits, name) or []:
            known.add(relative_path(splits.root, p))
    unused = 0
    for a in fixes.actions.values():
        if a.path not in known:
            if not (splits.root / a.path).is_file():
                raise FixesError(f"{where}{a.path} is not an image of {splits.root}")
            unused += 1  # e.g. outside this run's --per-class subset
        if a.action == "relabel" and a.label not in index:
            raise FixesError(f"{where}relabel of {a.path} to unknown class {a.label!r} "
                             f"(classes: {', '.join(splits.classes)})")

    changes: list[dict] = []

    def fix(name: str):
        samples = getattr(splits, name)
        if samples is None:
            return None
        out = []
        for p, label in samples:
            rel = relative_path(splits.root, p)
            a = fixes.actions.get(rel)
            if a is None or a.action == "keep" or (a.action == "relabel"
                                                   and index[a.label] == label):
                out.append((p, label))
                continue
            change = {"path": rel, "split": name, "action": a.action,
                      "from": splits.classes[label]}
            if a.action == "relabel":
                out.append((p, index[a.label]))
                change["to"] = a.label
            changes.append(change)
        return out

    new = replace(splits, train=fix("train"), val=fix("val"), test=fix("test"),
                  notes=list(splits.notes))
    n_relabel = sum(c["action"] == "relabel" for c in changes)
    new.notes.append(f"applied fixes{' from ' + source if source else ''}: "
                     f"{n_relabel} relabelled, {len(changes) - n_relabel} removed, "
                     f"{fixes.counts()['keep']} kept as they are (files untouched)"
                     + (f"; {unused} listed image(s) not in this run's splits" if unused
                        else ""))
    for name in ("train", "val"):
        labels = {label for _, label in getattr(new, name)}
        if not getattr(new, name):
            raise FixesError(f"{where}the fixes remove every {name} image")
        if name == "train" and len(labels) < len(splits.classes):
            empty = [c for i, c in enumerate(splits.classes) if i not in labels]
            raise FixesError(f"{where}the fixes leave class '{empty[0]}' with no training image")
    return new, changes
