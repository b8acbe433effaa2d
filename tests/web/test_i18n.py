"""The interface's text lives in the message catalogs (static/i18n/<lang>.json), in four languages.

* every key exists in every catalog, with the same {placeholders}, and no value is empty;
* every key the page uses (data-i18n in the HTML, t("...") in the JS) is in the catalogs;
* a static check finds user-facing text that bypasses them: text nodes and labelling attributes
  of index.html outside data-i18n elements, and string literals with words given to the DOM in
  the JS (``text:``, ``textContent =``, ``say(..., "...")``, ``alt``, ``title``, ``aria-label``).
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[2] / "src" / "transferlab" / "web" / "static"
LANGS = ("en", "es", "it", "ko")
WORD = re.compile(r"[A-Za-zÀ-ÿ\uac00-\ud7a3]{2,}")
PLACEHOLDER = re.compile(r"\{(\w+)\}")
# Modules whose strings still bypass the catalogs; shrink this list, never grow it.
NOT_YET_TRANSLATED: set[str] = set()
# Pages of index.html (data-page) whose text is not in the catalogs yet.
HTML_NOT_YET: set[str] = set()


def catalogs() -> dict[str, dict[str, str]]:
    return {lang: json.loads((STATIC / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))
            for lang in LANGS}


def js_files() -> list[Path]:
    return sorted((STATIC / "js").rglob("*.js"))


def test_every_key_is_in_every_catalog_with_the_same_placeholders():
    cats = catalogs()
    en = cats["en"]
    for lang, cat in cats.items():
        assert set(cat) == set(en), (lang, sorted(set(cat) ^ set(en)))
        for key, text in cat.items():
            assert text.strip(), (lang, key)
            assert set(PLACEHOLDER.findall(text)) == set(PLACEHOLDER.findall(en[key])), (lang, key)
    # translated, not copied: most values differ from English in each other language
    for lang in ("es", "it", "ko"):
        same = [k for k in en if cats[lang][k] == en[k]]
        assert len(same) < 0.15 * len(en), (lang, same)


def test_every_key_the_page_uses_exists():
    en = catalogs()["en"]
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    used = set(re.findall(r'data-i18n(?:-html)?="([^"]+)"', html))
    for attrs in re.findall(r'data-i18n-attr="([^"]+)"', html):
        used |= {pair.split("=")[1].strip() for pair in attrs.split(";")}
    for path in js_files():
        used |= set(re.findall(r'\bt\(\s*"([\w.]+)"', path.read_text(encoding="utf-8")))
    missing = sorted(k for k in used if k not in en)
    assert not missing, missing
    # keys built at run time (t(`lab.done.${status}`)): every value the server sends is there
    for prefix, values in {"lab.done.": ["ok", "error", "interrupted", "timeout", "killed", "died"],
                           "lab.kernel.": ["starting", "ready", "restarting"],
                           "lab.limit.": ["time", "kill", "memory"],
                           "lab.reason.": ["requested", "died", "timeout"],
                           # stateName(): every state a run, job or sweep is recorded in
                           "state.": ["queued", "running", "done", "failed", "stopped",
                                      "interrupted", "cancelled"]}.items():
        for v in values:
            assert prefix + v in en
    from transferlab.web.lab import challenges, checks

    for c in challenges.CHALLENGES.values():
        for key in ("title", "intro"):
            assert f"challenge.{c.id}.{key}" in en
        for i in range(len(c.steps)):
            assert f"challenge.{c.id}.step{i}.prompt" in en
            assert f"challenge.{c.id}.step{i}.hint" in en
    source = Path(checks.__file__).read_text() + Path(challenges.__file__).read_text()
    for key in set(re.findall(r'"(check\.\w+)"', source)):
        assert key in en, key
    starter = (STATIC / "lab" / "train.py").read_text()
    for key in re.findall(r"\{\{([\w.]+)\}\}", starter):
        assert key in en, key


class _TextFinder(HTMLParser):
    SKIP = {"code", "script", "style", "pre", "kbd"}
    LABELS = ("aria-label", "placeholder", "title", "alt")
    VOID = {"br", "img", "input", "meta", "link", "hr", "source", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, dict]] = []
        self.found: list[str] = []

    def covered(self) -> bool:
        return any("data-i18n" in a or "data-i18n-html" in a or tag in self.SKIP
                   or a.get("data-page") in HTML_NOT_YET or a.get("id") == "lang-picker"
                   for tag, a in self.stack)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag not in self.VOID:
            self.stack.append((tag, a))
        if not self.covered() or tag in self.VOID:
            keyed = a.get("data-i18n-attr", "")
            for name in self.LABELS:
                if WORD.search(a.get(name) or "") and f"{name}=" not in keyed \
                        and not self.covered():
                    self.found.append(f"<{tag} {name}={a[name]!r}>")
        if tag in self.VOID:
            return

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data):
        if WORD.search(data) and not self.covered():
            self.found.append(data.strip()[:60])


def test_no_text_in_the_html_bypasses_the_catalogs():
    finder = _TextFinder()
    finder.feed((STATIC / "index.html").read_text(encoding="utf-8"))
    # the brand name and the page title are names, not sentences
    allowed = {"transferlab", "transferlab playground", "playground", "train.py"}
    leaks = [f for f in finder.found if f not in allowed]
    assert not leaks, leaks


JS_SINKS = [
    re.compile(r"""\btext:\s*(["'`])((?:(?!\1).)*)\1"""),
    re.compile(r"""\.textContent\s*=\s*(["'`])((?:(?!\1).)*)\1"""),
    re.compile(r"""\bsay\([^,]+,\s*(["'`])((?:(?!\1).)*)\1"""),
    re.compile(r"""\b(?:alt|title|placeholder|"aria-label"):\s*(["'`])((?:(?!\1).)*)\1"""),
    re.compile(r"""\.(?:append|writeln|write)\(\s*(["'`])((?:(?!\1).)*)\1\s*\)"""),  # text only
]


def js_leaks(text: str) -> list[str]:
    leaks = []
    for pattern in JS_SINKS:
        for m in pattern.finditer(text):
            literal = re.sub(r"\$\{[^}]*\}", "", m.group(2))  # template holes are data
            literal = re.sub(r"\\x1b\[[0-9;]*m", "", literal)
            if WORD.search(literal):
                leaks.append(m.group(0)[:80])
    return leaks


@pytest.mark.parametrize("path", js_files(), ids=lambda p: str(p.relative_to(STATIC / "js")))
def test_no_string_in_the_js_bypasses_the_catalogs(path):
    rel = str(path.relative_to(STATIC / "js"))
    leaks = js_leaks(path.read_text(encoding="utf-8"))
    if rel in NOT_YET_TRANSLATED:
        pytest.skip(f"{rel}: not moved to the catalogs yet ({len(leaks)} strings)")
    assert not leaks, leaks


def test_the_static_check_catches_a_bypassing_string():
    assert js_leaks('el("p", { text: "Hello there" })')
    assert js_leaks('node.textContent = `Run ${n} finished`;')
    assert js_leaks('say("#x", "No runs yet")')
    assert js_leaks('term.writeln("Ready to go")')
    assert not js_leaks('body.append("file", file)')  # FormData, not the DOM
    assert not js_leaks('el("p", { text: t("lab.title") })')
    assert not js_leaks('el("td", { text: `(${x.shape.join(", ")})` })')
    finder = _TextFinder()
    finder.feed('<div><p>Plain words</p><p data-i18n="k">Covered</p><code>x = y</code>'
                '<input aria-label="Unkeyed label"></div>')
    assert finder.found == ["Plain words", "<input aria-label='Unkeyed label'>"]


def test_the_learn_quiz_is_in_the_catalogs_and_says_what_the_server_says():
    """Each question's sentences are catalog keys filled with the server's computed values.

    The English catalog, filled with a question's params, must read as the server's English
    (thousands separators aside: the page formats numbers per locale), so a changed question on
    the server with a stale catalog fails here; every choice that is a sentence is translated.
    """
    from transferlab.web.learn import build_quiz

    cats = catalogs()
    en = cats["en"]

    def fill(text: str, params: dict) -> str:
        return PLACEHOLDER.sub(lambda m: str(params[m.group(1)]), text)

    quiz = build_quiz()
    assert quiz
    for q in quiz:
        params = q.get("params", {})
        for part in ("question", "explanation"):
            key = f"learn.q.{q['id']}.{part}"
            assert key in en, key
            assert fill(en[key], params).replace(",", "") == q[part].replace(",", ""), key
            for lang in ("es", "it", "ko"):  # the same values in every language
                assert set(PLACEHOLDER.findall(cats[lang][key])) <= set(params), (lang, key)
        for i, option in enumerate(q.get("options", [])):
            key = f"learn.q.{q['id']}.option{i}"
            if " " in option:  # a sentence, not a layer group's name
                assert en.get(key) == option, key
