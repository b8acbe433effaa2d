"""A small trained run shared by the export and prediction tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def trained_run(tiny_data, tmp_path_factory) -> Path:
    """Feature extraction on 24 sample photos (4 classes): a real run folder in seconds."""
    from transferlab.api import fine_tune

    out = tmp_path_factory.mktemp("runs")
    result = fine_tune(data=str(tiny_data), out=str(out), name="food4", batch_size=8,
                       strategy="feature-extraction", epochs=15, seed=0, progress=False)
    return result.run_dir
