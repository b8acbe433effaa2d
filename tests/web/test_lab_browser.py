"""The Lab end to end: ``transferlab serve`` driven by Debian's Chromium (Playwright).

One server and one kernel for the module (each kernel start imports torch: seconds on a loaded
machine). The run limit is 60 s so that the endless loop is cut in a minute while the starter
``train.py`` (loading EfficientNet-Lite0, one batch) still fits. Screenshots go where
test_browser.py puts them (``TRANSFERLAB_SCREENSHOTS=docs/screenshots`` refreshes the docs').
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REPO = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("TRANSFERLAB_SCREENSHOTS") or REPO / "test-artifacts" / "screenshots")
VENDOR = REPO / "src" / "transferlab" / "web" / "static" / "vendor" / "lab-vendor.js"
RUN_LIMIT = 60  # the starter (load EfficientNet-Lite0, one batch) must fit on a loaded machine

if not CHROMIUM.is_file():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:
    pytest.skip("playwright is not installed (pip install playwright)", allow_module_level=True)
if not VENDOR.is_file():
    pytest.fail(f"{VENDOR} is missing: run `make install` (npm ci && npm run build in frontend/)")

KERNEL_MS = 120_000  # a kernel start (import torch) or the starter script on 2 loaded cores
expect.set_options(timeout=30_000)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(tmp: Path, *extra: str, host: str = "127.0.0.1", token: str | None = None):
    port = _free_port()
    log = open(tmp / f"server-{port}.log", "w")  # noqa: SIM115 - closed by _stop
    cmd = [sys.executable, "-m", "transferlab.cli.main", "serve", "--host", host, "--port",
           str(port), "--data-root", str(tmp), "--runs-root", str(tmp / "runs"), *extra]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if token:
        env["TRANSFERLAB_TOKEN"] = token
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while True:
        try:
            req = urllib.request.Request(base + "api/health", headers={
                "Authorization": f"Bearer {token}"} if token else {})
            urllib.request.urlopen(req, timeout=2)
            return proc, log, base
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                log.close()
                pytest.fail("the server did not start:\n" + Path(log.name).read_text())
            time.sleep(0.3)


def _stop(proc, log) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from transferlab.config import TrainConfig

    root = tmp_path_factory.mktemp("lab")
    (root / "runs" / "old-run").mkdir(parents=True)  # a run folder, for "Open in Lab"
    TrainConfig(data=str(root), model="resnet18", epochs=3).save(root / "runs" / "old-run" /
                                                                  "config.json")
    proc, log, base = _serve(root, "--lab-run-seconds", str(RUN_LIMIT))
    yield base
    _stop(proc, log)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def lab(server, browser):
    """One page (one session, one kernel) for the module's tests, in order."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-US")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server + "#lab")
    expect(page.locator(".cm-content")).to_be_visible()
    yield page
    context.close()
    assert errors == [], errors


def type_code(page, code: str) -> None:
    page.click(".cm-content")
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(code)


def run_and_wait(page, code: str, timeout: float = KERNEL_MS):
    """Run ``code`` with Ctrl+Enter and wait until it is done; returns the terminal."""
    body = page.locator("#lab-body")
    before = body.get_attribute("data-started-run")
    type_code(page, code)
    page.keyboard.press("Control+Enter")
    if before is not None:
        expect(body).not_to_have_attribute("data-started-run", before)
    expect(body).to_have_attribute("data-started-run", re.compile(r"\d+"))
    run = body.get_attribute("data-started-run")  # the server's number for this run
    expect(body).to_have_attribute("data-last-run", run, timeout=timeout)
    return page.locator("#lab-terminal .xterm-rows")  # shows the last rows (not the scrollback)


def shot(page, name: str, full_page: bool = False) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


def test_typed_layer_appears_in_the_inspector(lab):
    type_code(lab, "")
    lab.keyboard.type("new_layer = torch.nn.Linear(512, 7)")  # typed, key by key
    lab.keyboard.press("Control+Enter")
    row = lab.locator('#lab-tensors tr[data-name="new_layer.weight"]')
    expect(row).to_be_visible(timeout=KERNEL_MS)
    expect(row.locator("td.shape")).to_have_text("(7, 512)")
    expect(row.locator("td.rg")).to_have_text("yes")
    expect(lab.locator('#lab-modules li[data-module="new_layer"]')).to_contain_text("Linear")


def test_head_challenge_passes_right_answers_and_fails_wrong_ones(lab):
    lab.click("#challenge-head summary")
    step = lambda i: lab.locator(f'#challenge-head .step[data-step="{i}"]')  # noqa: E731
    step(0).locator("input").fill("1000")
    step(0).get_by_role("button", name="Check", exact=True).click()
    expect(step(0).locator(".verdict")).to_have_class("verdict wrong")
    expect(step(0).locator(".hint")).to_be_visible()  # a hint after the first wrong try
    step(0).locator("input").fill("512")
    step(0).get_by_role("button", name="Check", exact=True).click()
    expect(step(0).locator(".verdict")).to_have_class("verdict correct")

    type_code(lab, "new_layer = torch.nn.Linear(7, 512)")
    step(1).get_by_role("button", name="Run and check the editor's code").click()
    expect(step(1).locator(".verdict")).to_have_class("verdict wrong", timeout=KERNEL_MS)
    expect(step(1).locator(".verdict")).to_contain_text("512")
    type_code(lab, "new_layer = torch.nn.Linear(512, 7)")
    step(1).get_by_role("button", name="Run and check the editor's code").click()
    expect(step(1).locator(".verdict")).to_have_class("verdict correct", timeout=KERNEL_MS)

    step(2).locator("input").fill("512")
    step(2).get_by_role("button", name="Check", exact=True).click()
    expect(step(2).locator(".verdict")).to_have_class("verdict wrong")
    step(2).locator("input").fill("7")
    step(2).get_by_role("button", name="Check", exact=True).click()
    expect(step(2).locator(".verdict")).to_have_class("verdict correct")
    step(2).get_by_role("button", name="Show the solution").click()
    expect(step(2).locator(".solution")).to_contain_text("7")


def test_starter_train_py_runs_to_the_end(lab):
    lab.click("#lab-starter")
    expect(lab.locator(".cm-content")).to_contain_text("create_model")
    lab.click("#lab-run")
    expect(lab.locator("#lab-status")).to_contain_text("finished", timeout=KERNEL_MS)
    terminal = lab.locator("#lab-terminal .xterm-rows")
    expect(terminal).to_contain_text("done")
    expect(terminal).to_contain_text("trainable 5,124")
    expect(terminal).not_to_contain_text("Traceback")
    lab.locator('#lab-tensors tr[data-name="stem_maps"] button').click()
    expect(lab.locator("#lab-image img.featuremaps")).to_be_visible()
    lab.locator('#lab-modules li[data-module="model"] > button').click()
    expect(lab.locator('li[data-module="model.body"]')).to_be_visible()
    shot(lab, "lab", full_page=True)


def test_learn_links_to_the_challenge_and_a_run_opens_as_code(lab, server):
    lab.goto(server + "#learn")
    link = lab.locator('.question[data-qid="new-layer"] a.practise')
    expect(link).to_have_attribute("href", "#lab/challenge:head")
    link.click()
    expect(lab.locator("#challenge-head")).to_have_attribute("open", "")
    lab.goto(server + "#lab/run:old-run")
    expect(lab.locator(".cm-content")).to_contain_text("model='resnet18'")
    expect(lab.locator(".cm-content")).to_contain_text("epochs=3")
    lab.goto(server + "#lab")


def test_endless_loop_is_interrupted_by_the_limit_and_the_kernel_stays(lab):
    term = run_and_wait(lab, "kept = 41\nwhile True:\n    pass", timeout=(RUN_LIMIT + 60) * 1000)
    expect(term).to_contain_text(f"Time limit of {RUN_LIMIT} s reached")
    expect(term).to_contain_text("KeyboardInterrupt")
    expect(lab.locator("#lab-status")).to_contain_text("hit the time limit")
    expect(run_and_wait(lab, "print(kept + 1)")).to_contain_text("42")


def test_20_gb_allocation_is_refused(lab):
    term = run_and_wait(lab, "big = torch.empty(5 * 2**30)")
    expect(term).to_contain_text("Memory limit of")
    expect(term).to_contain_text("can't allocate memory")
    expect(run_and_wait(lab, "print('still', 'here')")).to_contain_text("still here")


def test_output_flood_is_truncated(lab):
    term = run_and_wait(lab, "for i in range(200_000):\n    print('flood', i)\nprint('THE END')")
    expect(term).to_contain_text("Output truncated")
    expect(term).not_to_contain_text("THE END")


def test_off_loopback_without_allow_code_the_lab_is_hidden_and_refused(tmp_path, browser):
    token = "browser-test-token"
    proc, log, base = _serve(tmp_path, host="0.0.0.0", token=token)
    try:
        page = browser.new_page()
        page.goto(base + f"?token={token}#data")
        expect(page.locator("#page-data")).to_be_visible()
        expect(page.locator('a[data-nav="learn"]')).to_be_visible()
        expect(page.locator('a[data-nav="lab"]')).to_be_hidden()
        answer = page.request.post(base + "api/lab/run", data={"code": "print(1)"})
        assert answer.status == 403  # the page's token cookie is sent: still refused
        assert page.request.get(base + "api/lab/challenges").status == 403
        page.goto(base + "#lab")
        expect(page.locator("#lab-msg")).to_contain_text("--allow-code")
        expect(page.locator("#lab-body")).to_be_hidden()
        page.close()
    finally:
        _stop(proc, log)


PAGES = ("data", "model", "train", "results", "experiments", "inspector", "predict", "learn",
         "runs", "lab")


def _catalog(lang: str) -> dict:
    import json

    path = REPO / "src" / "transferlab" / "web" / "static" / "i18n" / f"{lang}.json"
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("lang,locale,shot_page", [("ko", "ko-KR", "lab"), ("es", "es-ES", "learn"),
                                                   ("it", "it-IT", "model")])
def test_every_page_speaks_the_browsers_language(server, browser, lang, locale, shot_page):
    en, cat = _catalog("en"), _catalog(lang)
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale=locale)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    for name in PAGES:
        page.goto(server + f"#{name}")
        heading = page.locator(f"#h-{name}")
        key = heading.get_attribute("data-i18n")
        assert cat[key] != en[key]
        expect(heading).to_have_text(cat[key])
        expect(page.locator(f'a[data-nav="{name}"]')).to_have_text(cat[f"ui.{name}"] if name != "lab"
                                                                     else cat["nav.lab"])
        # text the page scripts write (not only the HTML's): the data root line, the model's
        # totals, the quiz's question computed on the server, the plan's strategy default
        if name == "data":
            expect(page.locator("#data-root-line")).to_contain_text(cat["data.root_line"].split("{")[0])
        if name == "model":
            expect(page.locator("#totals")).to_contain_text(cat["model.head_in_out"])
        if name == "learn":
            expect(page.locator('[data-qid="batchnorm"]')).to_contain_text(
                cat["learn.q.batchnorm.option0"])
            expect(page.locator('[data-qid="new-layer"]')).to_contain_text(
                cat["learn.q.new-layer.question"].split("{")[0])
        if name == "lab":
            expect(page.locator("#lab-terminal .xterm-rows")).to_contain_text(
                cat["lab.terminal_ready"][:6])
            page.locator("#challenge-head summary").click()
            expect(page.locator("#challenge-head summary")).to_have_text(cat["challenge.head.title"])
            expect(page.locator(".cm-content")).to_contain_text(cat["starter.freeze"][:12])
        if name == shot_page:
            shot(page, f"lang-{lang}-{name}")
    assert page.evaluate("document.documentElement.lang") == lang
    context.close()
    assert errors == [], errors


def test_the_language_picker_is_remembered(server, browser):
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.goto(server + "#learn")
    expect(page.locator("html")).to_have_attribute("data-i18n-ready", "en")
    expect(page.locator("#h-learn")).to_have_text(_catalog("en")["learn.8_learn"])
    page.select_option("#lang-picker", "it")
    expect(page.locator("#h-learn")).to_have_text(_catalog("it")["learn.8_learn"])
    page.goto(server + "#runs")  # a new load: the choice beats the browser's English
    expect(page.locator("#h-runs")).to_have_text(_catalog("it")["runs.9_runs"])
    expect(page.locator("#lang-picker")).to_have_value("it")
    context.close()
