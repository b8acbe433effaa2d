"""``diagnose``: every check on one dataset folder, and ``fast_checks`` for training's start."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..data.scan import DatasetSplits, load_splits
from . import duplicates, labels, outliers, stats
from .duplicates import Item
from .fixes import FixList, relative_path

KINDS = ("label", "leak", "duplicate", "outlier", "other-class")
SPLITS = ("train", "val", "test")


@dataclass
class Finding:
    """One thing worth a look: its kind, the image(s), a score and the suggested action(s)."""

    kind: str  # label | leak | duplicate | outlier | other-class
    paths: list[str]  # relative to the dataset folder
    splits: list[str]
    labels: list[str]  # the given class of each path
    score: float  # kind-specific: similarity, probability of the given label, affinity
    detail: str
    suggested_label: str | None = None
    exact: bool = False
    actions: list[dict] = field(default_factory=list)  # [{path, action, label?}]

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.paths[0]}"

    def to_dict(self) -> dict:
        return {"id": self.id, **asdict(self)}


@dataclass
class DoctorReport:
    root: str
    layout: str
    classes: list[str]
    model: str
    sizes: dict[str, int]
    findings: list[Finding]
    balance: dict
    class_stats: list[dict]
    thresholds: dict
    seconds: dict[str, float]
    notes: list[str] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[Finding]:
        return [f for f in self.findings if f.kind == kind]

    def counts(self) -> dict[str, int]:
        return {k: len(self.of_kind(k)) for k in KINDS}

    def to_dict(self) -> dict:
        doc = asdict(self)
        doc["findings"] = [f.to_dict() for f in self.findings]
        doc["counts"] = self.counts()
        return doc

    def suggested_fixes(self, kinds: tuple[str, ...] = ("label", "leak", "duplicate",
                                                         "outlier")) -> FixList:
        """One action per image from the findings' suggestions; when findings disagree
        about an image, removing it wins over relabelling it."""
        fixes = FixList(dataset=self.root)
        for f in self.findings:
            if f.kind not in kinds:
                continue
            for a in f.actions:
                old = fixes.actions.get(a["path"])
                if old is not None and old.action == "remove":
                    continue
                fixes.set(a["path"], a["action"], a.get("label"), f"{f.kind}: {f.detail}")
        return fixes


def _items(splits: DatasetSplits) -> list[Item]:
    out = []
    for name in SPLITS:
        for i, (p, _) in enumerate(getattr(splits, name) or []):
            out.append(Item(name, i, p))
    return out


def _label_of(splits: DatasetSplits, item: Item) -> str:
    return splits.classes[getattr(splits, item.split)[item.index][1]]


def _group_finding(splits: DatasetSplits, group: list[Item], sim: float, exact: bool
                   ) -> Finding:
    rel = [relative_path(splits.root, it.path) for it in group]
    names = sorted({it.split for it in group}, key=SPLITS.index)
    how = "identical files" if exact else f"near-identical pictures (similarity {sim:.3f})"
    if len(names) > 1:
        # the training copies leak into evaluation: drop them (or, val vs test, the val copy)
        drop = "train" if "train" in names else names[0]
        actions = [{"path": r, "action": "remove"}
                   for r, it in zip(rel, group, strict=True) if it.split == drop]
        return Finding("leak", rel, [it.split for it in group],
                       [_label_of(splits, it) for it in group], sim,
                       f"{how} in {' and '.join(names)}", exact=exact, actions=actions)
    actions = [{"path": r, "action": "remove"} for r in rel[1:]]
    return Finding("duplicate", rel, [it.split for it in group],
                   [_label_of(splits, it) for it in group], sim,
                   f"{how} within {names[0]}", exact=exact, actions=actions)


def _sorted_group(group: list[Item]) -> list[Item]:
    return sorted(group, key=lambda it: (SPLITS.index(it.split), it.path))


def exact_findings(splits: DatasetSplits, items: list[Item] | None = None) -> list[Finding]:
    """Exact duplicates and exact leaks (content hash): the fast checks."""
    items = _items(splits) if items is None else items
    return [_group_finding(splits, _sorted_group(g), 1.0, True)
            for g in duplicates.exact_groups(items)]


@dataclass
class FastCheck:
    duplicates: int  # groups of identical files within a split
    leaks: int  # groups of identical files shared between splits
    findings: list[Finding]
    seconds: float

    def message(self, data: str) -> str | None:
        if not self.findings:
            return None
        parts = []
        if self.leaks:
            parts.append(f"{self.leaks} image(s) shared between train and val/test "
                         "(the validation figure is optimistic)")
        if self.duplicates:
            parts.append(f"{self.duplicates} group(s) of identical images within a split")
        return (f"data check: {'; '.join(parts)}. See them with `transferlab doctor {data}`; "
                "training uses the data as it is.")


def fast_checks(splits: DatasetSplits) -> FastCheck:
    """Identical files within a split and across splits (content hash only: no model)."""
    start = time.perf_counter()
    found = exact_findings(splits)
    return FastCheck(sum(f.kind == "duplicate" for f in found),
                     sum(f.kind == "leak" for f in found), found,
                     time.perf_counter() - start)


def diagnose(
    data: str | Path | DatasetSplits,
    *,
    model: str = "tf_efficientnet_lite0",
    weights: str = "auto",
    cache_dir: str | Path | None = None,
    device: str = "cpu",
    seed: int = 0,
    val_fraction: float = 0.2,
    near_threshold: float = duplicates.NEAR_THRESHOLD,
    outlier_mads: float = outliers.OUTLIER_MADS,
    other_class_margin: float = outliers.OTHER_CLASS_MARGIN,
    image_stats: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
) -> DoctorReport:
    """Check a dataset folder (or loaded splits) for label errors, duplicates, leaks,
    outliers and imbalance, from the pretrained backbone's cached features.

    ``data`` is split exactly as training splits it (same ``seed`` and ``val_fraction``), so
    the leaks reported are the leaks that run would have.
    """
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    splits = data if isinstance(data, DatasetSplits) else load_splits(
        data, val_fraction=val_fraction, seed=seed)
    seconds["scan"] = time.perf_counter() - t0
    classes = splits.classes
    root = splits.root
    present = {n: getattr(splits, n) for n in SPLITS if getattr(splits, n)}
    items = _items(splits)

    t = time.perf_counter()
    feats = duplicates_feats = None
    from .features import split_features

    feats = split_features(present, model=model, weights=weights, cache_dir=cache_dir,
                           device=device, progress=progress)
    seconds["features"] = time.perf_counter() - t
    order = [n for n in SPLITS if n in present]
    duplicates_feats = np.concatenate([feats[n] for n in order])

    findings: list[Finding] = []
    # -- duplicates and leaks: exact by hash, then near by cosine similarity
    t = time.perf_counter()
    hash_groups = duplicates.exact_groups(items)
    pos = {(it.split, it.index): k for k, it in enumerate(items)}
    edges = [(pos[(g[0].split, g[0].index)], pos[(o.split, o.index)])
             for g in hash_groups for o in g[1:]]
    exact_edges = {tuple(sorted(e)) for e in edges}
    seconds["hash"] = time.perf_counter() - t
    t = time.perf_counter()
    near = duplicates.near_pairs(duplicates_feats, near_threshold)
    sim_of = {(i, j): s for i, j, s in near}
    for comp in duplicates.components(len(items), [*edges, *[(i, j) for i, j, _ in near]]):
        pairs = [(i, j) for i in comp for j in comp if i < j]
        exact = all(p in exact_edges for p in pairs)
        sims = [sim_of[p] for p in pairs if p in sim_of]
        sim = 1.0 if exact else (min(sims) if sims else near_threshold)
        group = _sorted_group([items[k] for k in comp])
        findings.append(_group_finding(splits, group, sim, exact))
    seconds["near_duplicates"] = time.perf_counter() - t

    # -- label errors on the training split: k-fold probes + confident learning
    t = time.perf_counter()
    y_train = np.asarray([label for _, label in splits.train])
    x_train = feats["train"]
    notes: list[str] = []
    try:
        issues, _ = labels.find_label_issues(x_train, y_train, n_classes=len(classes),
                                             seed=seed)
    except ValueError as exc:
        issues = []
        notes.append(f"label check skipped: {exc}")
    for issue in issues:
        path = relative_path(root, splits.train[issue.index][0])
        findings.append(Finding(
            "label", [path], ["train"], [classes[issue.given]], issue.quality,
            f"labelled {classes[issue.given]} (p={issue.quality:.2f} out of sample); "
            f"looks like {classes[issue.suggested]} (p={issue.suggested_prob:.2f})",
            suggested_label=classes[issue.suggested],
            actions=[{"path": path, "action": "relabel", "label": classes[issue.suggested]}]))
    seconds["labels"] = time.perf_counter() - t

    # -- outliers and other-class clusters, for every image against the training classes
    t = time.perf_counter()
    self_index = np.asarray([it.index if it.split == "train" else -1 for it in items])
    aff = outliers.class_affinity(duplicates_feats, x_train, y_train, len(classes),
                                  self_index=self_index)
    best = aff.max(axis=1)
    is_train = self_index >= 0
    threshold = outliers.outlier_threshold(best[is_train], outlier_mads)
    given = np.asarray([getattr(splits, it.split)[it.index][1] for it in items])
    own = aff[np.arange(len(items)), given]
    nearest = aff.argmax(axis=1)
    for k in np.argsort(best):
        if best[k] >= threshold:
            break
        it = items[k]
        path = relative_path(root, it.path)
        findings.append(Finding(
            "outlier", [path], [it.split], [classes[given[k]]], float(best[k]),
            f"far from every class: similarity {best[k]:.3f} to its nearest class "
            f"({classes[nearest[k]]}), below the threshold {threshold:.3f}",
            actions=[{"path": path, "action": "remove"}]))
    outlier_set = {int(k) for k in np.flatnonzero(best < threshold)}
    margin = best - own
    for k in np.argsort(-margin):
        if margin[k] < other_class_margin:
            break
        if int(k) in outlier_set:
            continue
        it = items[k]
        path = relative_path(root, it.path)
        findings.append(Finding(
            "other-class", [path], [it.split], [classes[given[k]]], float(margin[k]),
            f"labelled {classes[given[k]]} but sits in {classes[nearest[k]]}'s cluster "
            f"(similarity {best[k]:.3f} vs {own[k]:.3f} to its own class)",
            suggested_label=classes[nearest[k]],
            actions=[{"path": path, "action": "relabel", "label": classes[nearest[k]]}]))
    seconds["outliers"] = time.perf_counter() - t

    t = time.perf_counter()
    bal = stats.balance(splits.train, classes)
    per_class = stats.class_statistics(splits.train, classes) if image_stats else []
    seconds["stats"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t0
    return DoctorReport(
        root=str(root), layout=splits.layout, classes=classes, model=model,
        sizes={n: len(s) for n, s in present.items()}, findings=findings, balance=bal,
        class_stats=per_class,
        thresholds={"near_duplicate_similarity": near_threshold,
                    "outlier_affinity": round(float(threshold), 4),
                    "outlier_mads": outlier_mads, "other_class_margin": other_class_margin,
                    "label_folds": labels.FOLDS, "neighbours": outliers.K_NEIGHBOURS},
        seconds={k: round(v, 3) for k, v in seconds.items()},
        notes=[*splits.notes, *notes])
