"""How long the scanner takes to refuse a decompression bomb (from its header, no pixels).

The timing that ``tests/reliability/test_hostile_images.py`` used to assert (under 1 s per
bomb) lives here instead: tests check *that* a bomb is refused without allocating, this
measures *how fast*. The first call pays Pillow's plugin imports, so it is reported apart
from the median of the repeats. Run::

    .venv/bin/python benchmarks/bomb_refusal.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "reliability"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_average  # noqa: E402
from corpus import png_claiming  # noqa: E402

from transferlab.data.scan import validate_image  # noqa: E402


def main(repeats: int = 20) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bombs = {"100000x100000 PNG": png_claiming(100_000, 100_000),
                 "12000x12000 PNG": png_claiming(12_000, 12_000)}
        paths = {}
        for name, data in bombs.items():
            path = Path(tmp) / f"{name.split()[0]}.png"
            path.write_bytes(data)
            paths[name] = str(path)
        print(f"load average {load_average()}")
        for name, path in paths.items():
            t = time.perf_counter()
            reason = validate_image(path)
            first = time.perf_counter() - t
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                validate_image(path)
                times.append(time.perf_counter() - t)
            print(f"{name}: {reason!r}\n  first call {first * 1e3:.1f} ms; median of {repeats} "
                  f"{statistics.median(times) * 1e3:.2f} ms (range {min(times) * 1e3:.2f}-"
                  f"{max(times) * 1e3:.2f} ms)")


if __name__ == "__main__":
    main()
