"""End-to-end: the real server (``transferlab serve``) driven by headless Chromium.

Needs Debian's Chromium at /usr/bin/chromium and the ``playwright`` package (never
``playwright install``); skipped with the reason otherwise. Saves one screenshot per main page
to docs/screenshots/.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REPO = Path(__file__).resolve().parents[2]
# Screenshots go to test-artifacts/ (ignored); `TRANSFERLAB_SCREENSHOTS=docs/screenshots` refreshes
# the README's pictures.
SHOTS = Path(os.environ.get("TRANSFERLAB_SCREENSHOTS") or REPO / "test-artifacts" / "screenshots")
SAMPLE = REPO / "src" / "transferlab" / "sample_data" / "food4"

if not CHROMIUM.is_file():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:
    pytest.skip("playwright is not installed (pip install playwright)", allow_module_level=True)

# The machine may be busy (2 cores shared with other jobs): wait generously for each step.
STEP_MS = 30_000
expect.set_options(timeout=STEP_MS)


def _printed_url(log: Path, proc, deadline: float) -> str:
    """The address ``transferlab serve --port 0`` prints once it holds its socket."""
    while time.monotonic() < deadline and proc.poll() is None:
        match = re.search(r"transferlab playground: (http://127\.0\.0\.1:\d+/)",
                          log.read_text())
        if match:
            return match.group(1)
        time.sleep(0.2)
    pytest.fail("the server did not start:\n" + log.read_text())


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    """(data root with a copy of 8+4 photos per class, runs root) of the server."""
    data = tmp_path_factory.mktemp("browser-data")
    for split, n in (("train", 8), ("val", 4)):
        for cls in sorted(p.name for p in (SAMPLE / split).iterdir()):
            out = data / "food4mini" / split / cls
            out.mkdir(parents=True)
            for f in sorted((SAMPLE / split / cls).iterdir())[:n]:
                shutil.copy(f, out / f.name)
    return data, tmp_path_factory.mktemp("browser-runs")


@pytest.fixture(scope="module")
def server(folders):
    """``transferlab serve`` on a free loopback port over ``folders``."""
    data, runs = folders
    log = open(runs / "server.log", "w")  # noqa: SIM115 - closed below
    # port 0: the server binds a free port itself and prints it (no pick-then-bind race)
    proc = subprocess.Popen(
        [sys.executable, "-m", "transferlab.cli.main", "serve", "--port", "0",
         "--data-root", str(data), "--runs-root", str(runs)],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 180  # a loaded 2-core machine imports torch slowly
    base = _printed_url(runs / "server.log", proc, deadline)
    while True:
        try:
            urllib.request.urlopen(base + "api/health", timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                log.close()
                pytest.fail("the server did not start:\n" + (runs / "server.log").read_text())
            time.sleep(0.3)
    yield base
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(STEP_MS)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert errors == [], errors  # no JavaScript errors on any page


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def choose_dataset(page, base: str) -> None:
    page.goto(base + "#data")
    page.click('button.dataset[data-path="food4mini"]')
    expect(page.locator("#class-table tbody tr")).to_have_count(4)


def params(page, which: str) -> int:
    return int(page.inner_text(f"#{which}-params").replace(",", ""))


def test_main_flow(server, page):
    choose_dataset(page, server)
    expect(page.locator("#dataset-summary")).to_contain_text("32 train, 16 val")
    expect(page.locator("#thumbs img")).to_have_count(24)
    expect(page.locator("#chip-dataset")).to_contain_text("food4mini (4 classes)")
    shot(page, "data")

    # Model: unfreeze two top groups, then freeze them again
    page.click('a[data-nav="model"]')
    expect(page.locator("#groups .group-btn")).to_have_count(9)
    expect(page.locator('[data-group="stage7"]')).to_have_class("group-btn frozen")
    head_only = params(page, "trainable")
    assert head_only == 1280 * 4 + 4
    page.click('[data-group="stage7"]')
    expect(page.locator('[data-group="stage7"]')).to_have_class("group-btn trainable")
    page.click('[data-group="stage6"]')
    expect(page.locator('[data-group="stage6"]')).to_have_class("group-btn trainable")
    expect(page.locator("#k-label")).to_have_text("stage6, stage7")
    assert params(page, "trainable") == head_only + 1_017_600 + 1_652_640
    assert params(page, "total") == params(page, "trainable") + params(page, "frozen")
    shot(page, "model")
    page.click('[data-group="stage6"]')
    expect(page.locator('[data-group="stage6"]')).to_have_class("group-btn frozen")
    page.click('[data-group="stage7"]')  # freeze: back to feature extraction
    expect(page.locator('[data-group="stage7"]')).to_have_class("group-btn frozen")
    expect(page.locator("#trainable-params")).to_have_text(f"{head_only:,}")

    # Train: a short feature-extraction run, watched live
    page.click('a[data-nav="train"]')
    expect(page.locator("#strategy-feature-extraction")).to_be_checked()
    expect(page.locator("#lr-table tbody tr")).to_have_count(9)
    page.fill("#epochs", "8")
    page.fill("#patience", "20")
    page.click("#start-btn")
    seen = set()
    deadline = time.monotonic() + 150
    while page.locator("#live-done").is_hidden():
        seen.add(page.inner_text("#epoch-label"))
        assert time.monotonic() < deadline, page.inner_text("#live-state")
        page.wait_for_timeout(100)
    expect(page.locator("#epoch-label")).to_have_text("Epoch 8 / 8")
    expect(page.locator("#epoch-table tbody tr")).to_have_count(8)
    expect(page.locator("#chart-loss polyline")).to_have_count(2)
    expect(page.locator("#live-state")).to_contain_text("done — validation accuracy")
    assert "Epoch –" in seen  # the page was there before the first epoch arrived
    shot(page, "train")

    # Results
    page.click("#open-results")
    expect(page.locator("#res-accuracy")).to_contain_text("%")
    expect(page.locator("#res-accuracy")).to_have_text(re.compile(r"\d+\.\d% \[\d+\.\d, \d+\.\d\]"))
    expect(page.locator("#results-summary")).to_contain_text("optimistic")  # no test split
    expect(page.locator("#res-ece")).to_contain_text("with temperature")
    expect(page.locator("#confusion tbody tr")).to_have_count(4)
    expect(page.locator("#per-class-acc .bar-row")).to_have_count(4)
    expect(page.locator("#downloads a")).to_have_count(7)
    href = page.get_attribute("#downloads a >> nth=0", "href")
    assert href.endswith("best.safetensors?download=true")
    run_id = page.input_value("#results-run")
    shot(page, "results")

    # Predict with the finished run
    page.click('a[data-nav="predict"]')
    expect(page.locator("#predict-picks button")).to_have_count(8)
    page.click("#predict-picks button >> nth=4")
    page.click("#predict-btn")
    expect(page.locator("#predict-bars .bar-row")).to_have_count(3)
    expect(page.locator("#predict-preview")).to_be_visible()
    shot(page, "predict")

    # Inspector on the trained run: activations per group and its gradient norms
    page.click('a[data-nav="inspector"]')
    page.select_option("#inspect-source", run_id)
    expect(page.locator("#grad-bars .bar-row")).to_have_count(9)
    expect(page.locator("#grad-bars .bar-row >> nth=0")).to_contain_text("frozen")
    page.click("#inspect-btn")
    expect(page.locator(".act-card")).to_have_count(9)
    expect(page.locator(".act-card img")).to_have_count(8)  # the head is a vector
    shot(page, "inspector")

    # Learn: a self-check question marked by the page
    page.click('a[data-nav="learn"]')
    page.fill("#q-new-layer", "Linear(512, 7)")
    page.click('[data-qid="new-layer"] button')
    expect(page.locator('[data-qid="new-layer"] .verdict')).to_contain_text("Correct")
    page.check("#q-batchnorm-1")  # "they update from the new data": wrong
    page.click('[data-qid="batchnorm"] button')
    expect(page.locator('[data-qid="batchnorm"] .verdict')).to_contain_text("Not quite")
    expect(page.locator("#quiz-score")).to_have_text("1 of 6 correct")
    shot(page, "learn")

    # Experiments: one card per sweep, offered or explained
    page.click('a[data-nav="experiments"]')
    expect(page.locator("#sweep-kinds .card")).to_have_count(3)
    shot(page, "experiments")


def tab_to(page, selector: str, limit: int = 150) -> None:
    """Press Tab until the focused element matches ``selector`` (keyboard only)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement && document.activeElement.matches(s)",
                         selector):
            return
    raise AssertionError(f"{selector} cannot be reached with Tab")


def test_main_flow_with_the_keyboard_alone(server, page):
    page.goto(server)
    tab_to(page, 'button.dataset[data-path="food4mini"]')
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"  # focus is visible
    page.keyboard.press("Enter")
    expect(page.locator("#class-table tbody tr")).to_have_count(4)

    tab_to(page, 'a[data-nav="model"]')
    page.keyboard.press("Enter")
    expect(page.locator("#groups .group-btn")).to_have_count(9)
    tab_to(page, '[data-group="stage7"]')
    page.keyboard.press("Enter")
    expect(page.locator('[data-group="stage7"]')).to_have_class("group-btn trainable")
    expect(page.locator('[data-group="stage7"]')).to_be_focused()  # focus survives re-render
    page.keyboard.press("Space")
    expect(page.locator('[data-group="stage7"]')).to_have_class("group-btn frozen")

    tab_to(page, 'a[data-nav="train"]')
    page.keyboard.press("Enter")
    expect(page.locator("#lr-table tbody tr")).to_have_count(9)
    tab_to(page, "#epochs")
    page.keyboard.type("3")
    tab_to(page, "#start-btn")
    page.keyboard.press("Enter")
    expect(page.locator("#live-done")).to_be_visible(timeout=150_000)
    expect(page.locator("#epoch-label")).to_have_text("Epoch 3 / 3")
    tab_to(page, "#open-results")
    page.keyboard.press("Enter")
    expect(page.locator("#res-accuracy")).to_contain_text("%")

    tab_to(page, 'a[data-nav="predict"]')
    page.keyboard.press("Enter")
    tab_to(page, "#predict-picks button")
    page.keyboard.press("Enter")
    tab_to(page, "#predict-btn")
    page.keyboard.press("Enter")
    expect(page.locator("#predict-bars .bar-row")).to_have_count(3)


@pytest.fixture(scope="module")
def two_runs(folders) -> None:
    """Two finished runs of its own in the server's runs root (made as `transferlab train`
    makes them), so the tests that need runs do not depend on the tests before them."""
    from transferlab.api import fine_tune

    data, runs = folders
    for seed in (1, 2):  # different seeds and epochs: both show in the comparison
        fine_tune(data=str(data / "food4mini"), out=str(runs), name=f"fixture-{seed}",
                  strategy="feature-extraction", epochs=1 + seed, batch_size=16, seed=seed,
                  image_size=64, progress=False, device="cpu")


def test_runs_page_compares_two_runs(server, two_runs, page):
    page.goto(server + "#runs")
    boxes = page.locator("#runs-table tbody input[type=checkbox]")
    expect(boxes.nth(1)).to_be_visible()  # two or more runs: ours, and any of other tests
    expect(page.locator("#compare-btn")).to_be_disabled()
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.click("#compare-btn")
    expect(page.locator("#compare-out")).to_be_visible()
    expect(page.locator("#compare-config")).to_contain_text("epochs")
    expect(page.locator("#compare-chart polyline")).to_have_count(2)
    # the same validation images: a paired (McNemar) test, not overlapping intervals
    expect(page.locator("#compare-paired")).to_contain_text("Paired test on the same")
    expect(page.locator("#runs-table tbody")).to_contain_text("[")
    shot(page, "runs")


def test_phone_width(server, two_runs, browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    page.set_default_timeout(STEP_MS)
    try:
        choose_dataset(page, server)
        for name in ("data", "model", "train", "results", "experiments", "inspector",
                     "predict", "learn", "runs"):
            page.goto(f"{server}#{name}")
            expect(page.locator(f"#page-{name}")).to_be_visible()
            page.wait_for_load_state("networkidle")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 391, f"{name} page is {width}px wide at a 390px viewport"
            if name == "model":
                expect(page.locator("#groups .group-btn")).to_have_count(9)
                page.tap('[data-group="stage7"]')
                expect(page.locator('[data-group="stage7"]')).to_have_class(
                    "group-btn trainable")
                shot(page, "phone-model")
            if name == "results":
                expect(page.locator("#res-accuracy")).to_contain_text("%")
                shot(page, "phone-results")
    finally:
        context.close()
