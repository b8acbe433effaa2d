"""Data doctor: likely label errors, duplicates, leaks across splits, outliers and class
balance of an image folder, from the pretrained backbone's cached features.

    report = diagnose("photos/")
    for finding in report.of_kind("label")[:10]:
        print(finding.paths[0], finding.labels[0], "->", finding.suggested_label)
    report.suggested_fixes().save("fixes.json")   # review, then: train --apply-fixes fixes.json
"""

from .core import DoctorReport, FastCheck, Finding, diagnose, fast_checks
from .fixes import ACTIONS, Action, FixesError, FixList, apply_fixes, load_fixes
from .report import write_report

__all__ = [
    "ACTIONS",
    "Action",
    "DoctorReport",
    "FastCheck",
    "Finding",
    "FixList",
    "FixesError",
    "apply_fixes",
    "diagnose",
    "fast_checks",
    "load_fixes",
    "write_report",
]
