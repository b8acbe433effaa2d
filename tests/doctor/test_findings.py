"""The doctor finds injected faults in small real data, and nothing in a clean folder."""

from __future__ import annotations

from transferlab.data import load_splits
from transferlab.doctor import diagnose, fast_checks

from ..conftest import make_subset


def _paths(report, kind):
    return {p for f in report.of_kind(kind) for p in f.paths}


def test_injected_flips_are_found(faulty_data, faulty_report):
    """Every flipped photo is flagged, by confident learning on the k-fold probes or as an
    image in another class's cluster, with the class it came from as the suggestion."""
    _, truth = faulty_data
    label = {f.paths[0]: f for f in faulty_report.of_kind("label")}
    other = {f.paths[0]: f for f in faulty_report.of_kind("other-class")}
    assert label, "confident learning flagged nothing"
    for path in truth["flip"]:
        finding = label.get(path) or other.get(path)
        assert finding is not None, (path, sorted(label), sorted(other))
        assert finding.labels == [path.split("/")[1]]
        assert finding.suggested_label == truth["origin"][path]
    assert set(label) & set(truth["flip"])  # at least one by the label check itself
    # flags are few: out of 70 real photos, the label check flags at most twice the flips
    assert len(label) <= 2 * len(truth["flip"])


def test_leaks_exact_and_resized_are_found(faulty_data, faulty_report):
    _, truth = faulty_data
    leaks = faulty_report.of_kind("leak")
    train_side = {p for f in leaks for p, s in zip(f.paths, f.splits, strict=True) if s == "train"}
    assert set(truth["leak"]) == train_side
    exact = {f.paths[0]: f.exact for f in leaks}
    assert sorted(exact.values()) == [False, True]
    for f in leaks:  # the suggestion removes the training copy, never the validation image
        assert {a["path"] for a in f.actions} <= set(truth["leak"])
        assert all(a["action"] == "remove" for a in f.actions)


def test_duplicates_within_train_are_found(faulty_data, faulty_report):
    _, truth = faulty_data
    groups = faulty_report.of_kind("duplicate")
    assert len(groups) == 2
    assert set(truth["duplicate"]) <= _paths(faulty_report, "duplicate")
    for f in groups:
        assert len(f.paths) == 2 and len(f.actions) == 1  # keep one copy


def test_document_scan_is_an_outlier(faulty_data, faulty_report):
    _, truth = faulty_data
    outliers = [f.paths[0] for f in faulty_report.of_kind("outlier")]
    assert truth["outlier"][0] in outliers
    assert outliers[0] == truth["outlier"][0]  # the farthest of all
    # food photos are not outliers: at most one more flagged among 70 images
    assert len(outliers) <= 2


def test_class_balance_and_statistics(faulty_report):
    assert faulty_report.balance["suggestion"] is None  # 12-15 images per class: balanced
    stats = {s["class"]: s for s in faulty_report.class_stats}
    assert set(stats) == set(faulty_report.classes)
    assert all(s["width_median"] > 100 and len(s["mean_rgb"]) == 3 for s in stats.values())


def test_suggested_fixes_cover_every_fault(faulty_data, faulty_report):
    _, truth = faulty_data
    fixes = faulty_report.suggested_fixes(kinds=("label", "leak", "duplicate", "outlier",
                                                 "other-class"))
    for path in truth["flip"]:
        assert fixes.actions[path].action == "relabel"
        assert fixes.actions[path].label == truth["origin"][path]
    for path in truth["leak"] + truth["outlier"]:
        assert fixes.actions[path].action == "remove"
    assert sum(fixes.actions[p].action == "remove" for p in truth["duplicate"]) >= 1


def test_clean_folder_has_no_leak_and_no_duplicate(tmp_path):
    root = make_subset(tmp_path / "clean", train=8, val=4)
    report = diagnose(root, image_stats=False)
    assert report.of_kind("leak") == [] and report.of_kind("duplicate") == []
    assert fast_checks(load_splits(root)).findings == []


def test_fast_checks_find_identical_files_without_a_model(faulty_data):
    root, truth = faulty_data
    check = fast_checks(load_splits(root))
    assert (check.leaks, check.duplicates) == (1, 1)  # the identical copies only
    message = check.message(str(root))
    assert "transferlab doctor" in message and "1 image(s) shared" in message
