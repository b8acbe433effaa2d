"""Shared fixtures: the shipped sample dataset, tiny copies of it, the shared real data."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

# Tests never reach a hub: fail fast instead of retrying DNS for a minute.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "src" / "transferlab" / "sample_data" / "food4"
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Feature caches of the test session live in a temp folder, not in ~/.cache."""
    path = tmp_path_factory.mktemp("tl-cache")
    old = os.environ.get("TRANSFERLAB_CACHE")
    os.environ["TRANSFERLAB_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("TRANSFERLAB_CACHE", None)
    else:
        os.environ["TRANSFERLAB_CACHE"] = old


@pytest.fixture(autouse=True)
def _restore_signal_handlers():
    """The CLI, called in-process, installs its own SIGINT/SIGTERM handlers: undo that."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.fixture(scope="session")
def sample_root() -> Path:
    assert SAMPLE.is_dir(), f"the shipped sample dataset is missing at {SAMPLE}"
    return SAMPLE


def make_subset(dest: Path, train: int, val: int, classes: int = 4) -> Path:
    """Copy the first ``train``/``val`` images of ``classes`` sample classes into ``dest``."""
    for split, n in (("train", train), ("val", val)):
        for cls in sorted(p.name for p in (SAMPLE / split).iterdir())[:classes]:
            out = dest / split / cls
            out.mkdir(parents=True, exist_ok=True)
            for f in sorted((SAMPLE / split / cls).iterdir())[:n]:
                shutil.copy(f, out / f.name)
    return dest


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """4 classes x (6 train, 3 val) real food photos: enough to train for a step or two."""
    return make_subset(tmp_path_factory.mktemp("tiny"), train=6, val=3)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared datasets not found at {SHARED_DATA}")
    return SHARED_DATA
