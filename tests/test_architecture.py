"""Layers that hold: the import-linter contracts in pyproject.toml, and no private names
imported across packages (which import-linter cannot express)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "transferlab"


def test_import_linter_contracts_are_kept():
    pytest.importorskip("importlinter")
    cli = Path(sys.executable).parent / "lint-imports"
    if not cli.is_file():
        pytest.skip("lint-imports is not installed (pip install import-linter)")
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": str(cli.parent)}
    done = subprocess.run([str(cli), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 3 kept, 0 broken." in done.stdout, done.stdout


def _package(module: str) -> str:
    """``transferlab.training.loop`` -> ``transferlab.training``; a top-level module is its
    own package (``transferlab.api``)."""
    parts = module.split(".")
    return ".".join(parts[:2])


def _module_name(path: Path, src: Path) -> str:
    rel = path.relative_to(src.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def private_imports_across_packages(src: Path = SRC) -> list[str]:
    found = []
    for path in sorted(src.rglob("*.py")):
        module = _module_name(path, src)
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("transferlab"):
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__") \
                        and _package(target) != _package(module):
                    found.append(f"{module} imports {target}.{alias.name}")
    return found


def test_no_private_names_are_imported_across_packages():
    assert private_imports_across_packages() == []


def test_the_private_import_check_finds_one(tmp_path):
    pkg = tmp_path / "transferlab"
    (pkg / "a").mkdir(parents=True)
    (pkg / "b").mkdir()
    for d in (pkg, pkg / "a", pkg / "b"):
        (d / "__init__.py").write_text("")
    (pkg / "a" / "x.py").write_text("from ..b.y import _secret\nfrom .z import _ok\n")
    assert private_imports_across_packages(pkg) == [
        "transferlab.a.x imports transferlab.b.y._secret"]
