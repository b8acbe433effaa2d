// Lab page: a CodeMirror editor, an xterm.js terminal and the live tensor inspector over the
// session's Jupyter kernel (/api/lab/*, see docs/WEB.md), plus the challenges.
import { api } from "../lib/api.js";
import { $, el, say, svg } from "../lib/dom.js";
import { fmtLocale as F, t } from "../lib/i18n.js";
import { loaders } from "../lib/router.js";

const SAVED = "tlab.lab.code";
let V = null; // the bundled CodeMirror + xterm.js module
let editor = null;
let term = null;
let source = null;
let running = false;
let settings = null;
let challengeList = null;
const openModules = new Set();

// The Lab tab shows only when the server allows code (docs/WEB.md, "Security model").
api("/api/settings").then((s) => {
  settings = s;
  const link = document.querySelector('[data-nav="lab"]');
  if (link) link.parentElement.hidden = !s.lab.enabled;
}).catch(() => {});

loaders.lab = async (arg) => {
  settings = settings || await api("/api/settings");
  $("#lab-body").hidden = !settings.lab.enabled;
  if (!settings.lab.enabled) return say("#lab-msg", t(settings.lab.reason));
  if (!V) {
    try { V = await import("/static/vendor/lab-vendor.js"); } catch { return say("#lab-msg", t("lab.no_bundle")); }
    await setup();
  }
  if (arg && arg.startsWith("challenge:")) {
    const card = document.getElementById(`challenge-${arg.slice(10)}`);
    if (card) { card.open = true; card.scrollIntoView(); card.querySelector("summary")?.focus(); }
  } else if (arg && arg.startsWith("run:")) {
    const snip = await api(`/api/lab/snippet?run=${encodeURIComponent(arg.slice(4))}`);
    setCode(`# ${t("lab.snippet_comment", { run: snip.run })}\n${snip.code}`);
    say("#lab-msg", t("lab.snippet_loaded", { run: snip.run }), "info");
  }
};

// ------------------------------------------------------------------------------ setup
async function setup() {
  const session = await api("/api/lab/session", { method: "POST" });
  const limits = session.limits;
  $("#lab-body").dataset.lastRun = session.runs;
  $("#lab-limits").textContent = t("lab.limits", {
    seconds: F.int(limits.run_seconds), memory: F.bytes(limits.memory_bytes),
    output: F.bytes(limits.output_bytes), kernels: F.int(limits.max_kernels), idle: F.int(limits.idle_seconds / 60),
  });
  const runKey = V.Prec.highest(V.keymap.of([{ key: "Mod-Enter", run: () => { runCode(); return true; } }]));
  editor = new V.EditorView({
    doc: sessionStorage.getItem(SAVED) || await starter(),
    extensions: [V.basicSetup, V.python(), runKey,
      V.EditorView.updateListener.of((u) => { if (u.docChanged) sessionStorage.setItem(SAVED, u.state.doc.toString()); }),
      V.EditorView.contentAttributes.of({ "aria-label": t("lab.editor_label") })],
    parent: $("#lab-editor"),
  });
  term = new V.Terminal({ convertEol: true, fontSize: 13, rows: 18, scrollback: 5000, disableStdin: true,
    screenReaderMode: true, theme: { background: "#1d2330" } });
  term.open($("#lab-terminal"));
  term.writeln(t("lab.terminal_ready"));
  $("#lab-run").addEventListener("click", runCode);
  $("#lab-interrupt").addEventListener("click", () => api("/api/lab/interrupt", { method: "POST" }).catch(showError));
  $("#lab-restart").addEventListener("click", async () => {
    setStatus(t("lab.kernel.restarting"));
    try { await api("/api/lab/restart", { method: "POST" }); } catch (err) { showError(err); }
  });
  $("#lab-starter").addEventListener("click", async () => setCode(await starter()));
  $("#lab-filter").addEventListener("input", () => renderTensors(lastSnapshot));
  follow();
  renderChallenges();
}

async function starter() {
  const text = await (await fetch("/static/lab/train.py")).text();
  return text.replace(/\{\{([\w.]+)\}\}/g, (_, key) => t(key));
}

function setCode(code) {
  editor.dispatch({ changes: { from: 0, to: editor.state.doc.length, insert: code } });
  editor.focus();
}

function setStatus(text) { $("#lab-status").textContent = text; }
function showError(err) { say("#lab-msg", err.message); }

async function runCode() {
  if (running) return;
  say("#lab-msg", "");
  try {
    const r = await api("/api/lab/run", { json: { code: editor.state.doc.toString() } });
    $("#lab-body").dataset.startedRun = r.run; // with data-last-run: scripts can wait for this run
  } catch (err) { showError(err); }
}

function setRunning(on) {
  running = on;
  $("#lab-run").disabled = on;
  $("#lab-interrupt").disabled = !on;
}

// ------------------------------------------------------------------------------ events
function follow() {
  if (source) source.close();
  source = new EventSource("/api/lab/events");
  source.onmessage = (msg) => handle(JSON.parse(msg.data));
}

const YELLOW = "\x1b[33m", RED = "\x1b[31m", DIM = "\x1b[2m", RESET = "\x1b[0m";
function handle(ev) {
  switch (ev.type) {
    case "kernel":
      setStatus(t(`lab.kernel.${ev.state}`));
      if (ev.state === "restarting") {
        const reason = t(`lab.reason.${ev.reason}`);
        term.writeln(YELLOW + t("lab.kernel.restarting_note", { reason }) + RESET);
      }
      break;
    case "run":
      setRunning(true);
      setStatus(t("lab.running", { run: ev.run }));
      term.writeln(`${DIM}── ${t("lab.run_header", { run: ev.run })} ──${RESET}`);
      break;
    case "stream":
      term.write(ev.name === "stderr" ? `${RED}${ev.text}${RESET}` : ev.text);
      break;
    case "error":
      term.writeln(ev.traceback || `${ev.ename}: ${ev.evalue}`);
      break;
    case "image":
      $("#lab-images").append(el("img", { src: `data:image/png;base64,${ev.png}`, alt: t("lab.figure_alt", { run: ev.run }) }));
      break;
    case "inspect":
      lastSnapshot = ev;
      renderTensors(ev);
      renderModules(ev);
      $("#lab-inspect-time").textContent = t(ev.final ? "lab.inspect_after" : "lab.inspect_during", { run: ev.run, time: F.time(ev.time * 1000) });
      break;
    case "limit":
      term.writeln(`${YELLOW}${t(`lab.limit.${ev.what}`, { limit: ev.what === "memory" ? F.bytes(ev.limit) : F.int(ev.limit) })}${RESET}`);
      break;
    case "truncated":
      term.writeln(`\n${YELLOW}${t("lab.truncated", { limit: F.bytes(ev.limit) })}${RESET}`);
      break;
    case "died":
      term.writeln(`${RED}${t("lab.died", { code: ev.exit_code ?? "?", memory: F.bytes(ev.memory_limit) })}${RESET}`);
      break;
    case "interrupt":
      term.writeln(`${YELLOW}${t("lab.interrupting")}${RESET}`);
      break;
    case "done":
      setRunning(false);
      $("#lab-body").dataset.lastRun = ev.run; // lets tests and scripts wait for a run
      setStatus(t(`lab.done.${ev.status}`, { run: ev.run, seconds: F.fixed(ev.elapsed, 2) }));
      break;
    default:
  }
}

// ------------------------------------------------------------------------------ inspector
let lastSnapshot = null;
const fmtStat = (x) => (x === null || x === undefined ? "–" : F.num(x, 3));

function histogram(counts) {
  const w = 64, h = 18, max = Math.max(...counts, 1), bw = w / counts.length;
  const s = svg("svg", { width: w, height: h, viewBox: `0 0 ${w} ${h}`, class: "hist", "aria-hidden": "true" });
  counts.forEach((c, i) => s.append(svg("rect", { x: i * bw, y: h - (h * c) / max, width: Math.max(bw - 1, 1), height: (h * c) / max })));
  return s;
}

function renderTensors(snap) {
  if (!snap) return;
  const filter = $("#lab-filter").value.trim().toLowerCase();
  const rows = snap.tensors.filter((x) => !filter || x.name.toLowerCase().includes(filter));
  const body = $("#lab-tensors tbody");
  body.replaceChildren(...rows.map((x) => {
    const name = x.image
      ? el("button", { type: "button", class: "linklike", text: x.name, title: t(`lab.show_${x.image}`), onclick: () => showImage(x.name) })
      : el("span", { text: x.name });
    const bad = (x.nan || 0) + (x.inf || 0);
    return el("tr", { class: x.changed ? "changed" : x.new ? "new" : "", dataset: { name: x.name } },
      el("th", { scope: "row" }, name, x.changed ? el("span", { class: "badge", text: t("lab.changed") }) : null),
      el("td", { class: "shape", text: `(${x.shape.join(", ")})` }),
      el("td", { text: x.dtype }), el("td", { text: x.device }),
      el("td", { class: "rg", text: x.requires_grad ? t("lab.yes") : t("lab.no") }),
      el("td", { text: x.has_grad ? t("lab.yes") : t("lab.no") }),
      el("td", { text: fmtStat(x.min) }), el("td", { text: fmtStat(x.max) }),
      el("td", { text: fmtStat(x.mean) }), el("td", { text: fmtStat(x.std) }),
      el("td", { text: x.zeros === undefined ? "–" : F.pct(x.zeros) }),
      el("td", { class: bad ? "bad" : "", text: x.nan === undefined ? "–" : `${F.int(x.nan)} / ${F.int(x.inf)}` }),
      el("td", {}, x.hist ? histogram(x.hist) : ""));
  }));
  $("#lab-tensor-count").textContent = t(snap.truncated ? "lab.tensor_count_cut" : "lab.tensor_count", { n: F.int(snap.tensors.length), max: F.int(snap.max_tensors) });
  $("#lab-inspect-empty").hidden = snap.tensors.length + snap.modules.length > 0;
}

function moduleItem(m) {
  const open = openModules.has(m.name);
  const li = el("li", { dataset: { module: m.name } },
    el("button", { type: "button", class: "linklike", "aria-expanded": m.children ? String(open) : null, disabled: !m.children,
      onclick: () => toggleModule(m.name) }, `${m.children ? (open ? "▾ " : "▸ ") : "· "}${m.name}`),
    " ", el("span", { class: "muted", text: t("lab.module_line", { cls: m.class, params: F.int(m.params), trainable: F.int(m.trainable), frozen: F.int(m.frozen) }) }));
  if (open) li.append(el("ul", { class: "module-children", dataset: { parent: m.name } }));
  return li;
}

function renderModules(snap) {
  $("#lab-modules").replaceChildren(...snap.modules.map(moduleItem));
  for (const name of openModules) loadChildren(name);
}

async function toggleModule(name) {
  if (openModules.has(name)) openModules.delete(name); else openModules.add(name);
  if (lastSnapshot) renderModules(lastSnapshot);
}

async function loadChildren(name) {
  const ul = document.querySelector(`ul[data-parent="${CSS.escape(name)}"]`);
  if (!ul) return;
  try {
    const doc = await api(`/api/lab/module?name=${encodeURIComponent(name)}`);
    ul.replaceChildren(...doc.children_list.map(moduleItem));
    for (const child of doc.children_list) if (openModules.has(child.name)) loadChildren(child.name);
  } catch (err) { ul.replaceChildren(el("li", { class: "muted", text: err.message })); }
}

async function showImage(name) {
  const box = $("#lab-image");
  box.hidden = false;
  box.replaceChildren(el("p", { class: "muted", text: t("lab.loading") }));
  try {
    const img = await api(`/api/lab/image?name=${encodeURIComponent(name)}`);
    const caption = img.kind === "heatmap" ? t("lab.heatmap_caption", { name, shape: img.shape.join(" × ") })
      : t("lab.featuremaps_caption", { name, shape: img.shape.join(" × "), shown: F.int(img.shown) });
    box.replaceChildren(el("figure", {}, el("img", { src: `data:image/png;base64,${img.png}`, alt: caption, class: img.kind }), el("figcaption", { text: caption })));
  } catch (err) { box.replaceChildren(el("p", { class: "msg", text: err.message })); }
}

// ------------------------------------------------------------------------------ challenges
export async function labChallenges() {
  if (!challengeList) challengeList = await api("/api/lab/challenges");
  return challengeList;
}

async function renderChallenges() {
  const list = await labChallenges();
  $("#lab-challenges").replaceChildren(...list.map((c) => {
    const box = el("details", { class: "challenge", id: `challenge-${c.id}` },
      el("summary", {}, el("strong", { text: t(`challenge.${c.id}.title`) })),
      el("p", { text: t(`challenge.${c.id}.intro`, { losses: (c.given.val_losses || []).join(", ") }) }));
    c.steps.forEach((s, i) => box.append(stepBlock(c, s, i)));
    return box;
  }));
}

function stepBlock(c, s, i) {
  const key = `challenge.${c.id}.step${i}`;
  const id = `ch-${c.id}-${i}`;
  const verdict = el("p", { class: "verdict", "aria-live": "polite" });
  const extra = el("div", { class: "step-extra" });
  const show = (r) => {
    verdict.className = "verdict " + (r.ok ? "correct" : "wrong");
    verdict.textContent = `${t(r.ok ? "lab.correct" : "lab.not_yet")} ${t(r.message, paramsText(r.params || {}))}`;
    extra.replaceChildren();
    if (r.hint) extra.append(el("p", { class: "hint" }, el("strong", { text: `${t("lab.hint")} ` }), t(`${key}.hint`)));
    if (r.solution) extra.append(solutionBlock(r.solution));
  };
  const check = async (body) => {
    verdict.className = "verdict"; verdict.textContent = t("lab.checking");
    try { show(await api(`/api/lab/challenges/${c.id}/${i}`, { json: body })); } catch (err) { verdict.textContent = err.message; }
  };
  const row = el("div", { class: "answer-row" });
  if (s.kind === "number") {
    const input = el("input", { type: "text", id, inputmode: "decimal", autocomplete: "off" });
    row.append(el("label", { for: id, class: "sr-label", text: t("lab.your_answer") }), input,
      el("button", { type: "button", text: t("lab.check"), onclick: () => check({ answer: input.value }) }));
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") check({ answer: input.value }); });
  } else {
    row.append(
      el("button", { type: "button", class: "secondary", text: t("lab.load_starter_step"), onclick: () => setCode(`# ${t(`${key}.prompt`)}\n${s.starter}`) }),
      el("button", { type: "button", text: t("lab.check_code"), onclick: () => check({ code: editor.state.doc.toString() }) }));
  }
  row.append(el("button", { type: "button", class: "secondary", text: t("lab.show_solution"), onclick: async () => {
    const r = await api(`/api/lab/challenges/${c.id}/${i}/solution`, { method: "POST" });
    extra.replaceChildren(solutionBlock(r.solution));
  } }));
  return el("div", { class: "step", dataset: { step: i } },
    el("p", {}, el("strong", { text: t("lab.step", { n: i + 1 }) + " " }), t(`${key}.prompt`)), row, verdict, extra);
}

function paramsText(params) {
  const out = {};
  for (const [k, v] of Object.entries(params)) out[k] = Array.isArray(v) ? v.join(", ") : typeof v === "number" ? F.num(v, 6) : typeof v === "object" ? JSON.stringify(v) : v;
  return out;
}

function solutionBlock(code) {
  return el("div", { class: "solution" }, el("p", { class: "small", text: t("lab.solution") }), el("pre", {}, el("code", { text: code })));
}
