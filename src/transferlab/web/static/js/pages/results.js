// Results page: one run's summary, curves, confusion matrix, worst errors, downloads, export.
import { api } from "../lib/api.js";
import { bars, lineChart } from "../lib/charts.js";
import { $, el, fmtCI, fmtInt, fmtNum, fmtPct, say, thumbUrl } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { loaders } from "../lib/router.js";
import { fillRunSelect, loadRuns } from "../lib/runs.js";
import { TERMINAL, state } from "../lib/state.js";

loaders.results = async (arg) => {
  const runs = await loadRuns(true);
  const done = runs.filter((r) => r.state === "done");
  const chosen = arg || state.resultsRun || (done[0] && done[0].id) || (runs[0] && runs[0].id);
  fillRunSelect($("#results-run"), runs, chosen);
  if (!runs.length) {
    $("#results-body").hidden = true;
    return say("#results-msg", "No runs yet: start one on the Train page.", "info");
  }
  await showRun($("#results-run").value);
};
$("#results-run").addEventListener("change", (ev) => { location.hash = `#results/${encodeURIComponent(ev.target.value)}`; });
async function showRun(id) {
  state.resultsRun = id;
  let doc;
  try { doc = await api(`/api/runs/${encodeURIComponent(id)}`); } catch (err) { return say("#results-msg", err.message); }
  say("#results-msg", doc.evaluation ? "" : `Run ${id} is ${doc.run.state}: no evaluation yet.`, "info");
  $("#results-body").hidden = false;
  const ev = doc.evaluation || {}, cfg = doc.config || {}, res = doc.run.result || {};
  const test = ev.test, cal = ev.calibration;
  $("#results-summary").replaceChildren(
    ...(test ? [el("dt", { text: "test accuracy (untouched)" }), el("dd", { id: "res-test-accuracy", text: `${fmtCI(test.accuracy, test.accuracy_interval)} on ${fmtInt(test.num_images)} images, balanced ${fmtPct(test.balanced_accuracy)}` })] : []),
    el("dt", { text: test ? "validation accuracy (chose the epoch)" : "validation accuracy (optimistic: it also chose the epoch)" }),
    el("dd", { id: "res-accuracy", text: fmtCI(ev.accuracy, ev.accuracy_interval), title: ev.note || "" }),
    el("dt", { text: "balanced accuracy" }), el("dd", { text: fmtPct(ev.balanced_accuracy) }),
    ...(cal ? [el("dt", { text: `calibration error (ECE, ${cal.measured_on})` }), el("dd", { id: "res-ece", text: `${fmtNum(cal.ece_before, 3)} → ${fmtNum(cal.ece_after, 3)} with temperature ${fmtNum(cal.temperature, 2)}`, title: cal.binning })] : []),
    el("dt", { text: "loss" }), el("dd", { text: fmtNum(ev.loss) }),
    el("dt", { text: "images" }), el("dd", { text: fmtInt(ev.num_images) }),
    el("dt", { text: "strategy" }), el("dd", { text: cfg.strategy || "–" }),
    el("dt", { text: "backbone" }), el("dd", { text: cfg.model || "–" }),
    el("dt", { text: "epochs" }), el("dd", { text: (doc.metrics || []).length }),
    el("dt", { text: "wall time" }), el("dd", { text: res.wall_seconds ? `${res.wall_seconds.toFixed(1)} s` : "–" }),
    el("dt", { text: "state" }), el("dd", { class: `state ${doc.run.state}`, text: doc.run.state }));
  const dl = $("#downloads");
  dl.replaceChildren();
  const files = { "best.safetensors": "checkpoint weights (safetensors)", "best.json": "checkpoint sidecar (architecture, classes, preprocessing)",
    "report.md": "report", "metrics.csv": "metrics per epoch (CSV)", "evaluation.json": "evaluation (JSON)", "reliability.png": "reliability diagram (PNG)", "config.json": "resolved config" };
  for (const [name, label] of Object.entries(files)) {
    if (doc.files.includes(name)) dl.append(el("li", {}, el("a", { href: `/api/runs/${encodeURIComponent(id)}/files/${name}?download=true`, download: `${id}-${name}`, text: `${label} — ${name}` })));
  }
  const box = $("#export-box");
  box.replaceChildren();
  const settings = await api("/api/settings");
  if (settings.lab.enabled) { // the run's settings as Python, in the Lab's editor
    box.append(el("p", {}, el("a", { href: `#lab/run:${encodeURIComponent(id)}`, id: "open-in-lab", text: t("lab.open_in_lab") })));
  }
  if (doc.exports.length) {
    box.append(el("h4", { text: "Export the model" }));
    for (const fmt of doc.exports) box.append(el("button", { type: "button", text: `Export ${fmt}`, onclick: () => startExport(id, fmt) }));
    if (doc.exported.length) {
      box.append(el("ul", { class: "link-list" }, ...doc.exported.map((f) => el("li", {}, el("a", { href: `/api/runs/${encodeURIComponent(id)}/exported/${encodeURIComponent(f)}`, download: `${id}-${f}`, text: `exported: ${f}` })))));
    }
  } else {
    box.append(el("p", { class: "small muted", text: "Exported models (ONNX, TorchScript) are not available in this installation yet: download the checkpoint above." }));
  }
  const rows = doc.metrics || [];
  lineChart($("#res-chart-loss"), [
    { name: "train", points: rows.map((r, i) => [i + 1, r.train_loss]) },
    { name: "val", points: rows.map((r, i) => [i + 1, r.val_loss]) }], { label: "loss per epoch", xLabel: "epoch" });
  lineChart($("#res-chart-acc"), [
    { name: "train", points: rows.map((r, i) => [i + 1, r.train_acc]) },
    { name: "val", points: rows.map((r, i) => [i + 1, r.val_acc]) }], { label: "accuracy per epoch", xLabel: "epoch", yMin: 0, yMax: 1 });
  renderConfusion(ev);
  bars($("#per-class-acc"), Object.entries(ev.per_class_accuracy || {}).map(([c, a]) => ({ label: c, value: a ?? 0, text: fmtPct(a) })), { max: 1 });
  const worst = $("#worst");
  worst.replaceChildren();
  const errors = ev.worst_errors || [];
  if (!errors.length) worst.append(el("p", { class: "muted", text: ev.accuracy === undefined ? "No evaluation yet." : "No errors on the validation set." }));
  for (const e of errors) {
    worst.append(el("figure", {},
      e.image ? el("img", { src: thumbUrl(e.image, 200), alt: `${e.name}: true ${e.true}, predicted ${e.pred}` }) : el("div", { class: "muted", text: "(image outside the data root)" }),
      el("figcaption", {}, el("strong", { text: `true ${e.true}` }), el("br"), `predicted ${e.pred} (${fmtPct(e.confidence)})`)));
  }
}
function renderConfusion(ev) {
  const table = $("#confusion");
  table.replaceChildren();
  if (!ev.confusion) return;
  const max = Math.max(1, ...ev.confusion.flat());
  table.append(el("caption", { class: "small muted", text: `${ev.classes.length} classes` }));
  table.append(el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "true \\ predicted" }), ...ev.classes.map((c) => el("th", { scope: "col", text: c })))));
  const tbody = el("tbody");
  ev.confusion.forEach((row, i) => {
    tbody.append(el("tr", {}, el("th", { scope: "row", text: ev.classes[i] }), ...row.map((v, j) => {
      const td = el("td", { class: i === j ? "diag" : "", text: v });
      const a = v / max;
      td.style.background = i === j ? `rgba(46,133,64,${0.12 + 0.75 * a})` : v ? `rgba(179,38,30,${0.12 + 0.75 * a})` : "#f7f8fa";
      if (a > 0.55) td.style.color = "#fff";
      return td;
    })));
  });
  table.append(tbody);
}
async function startExport(id, fmt) {
  try {
    const job = await api(`/api/runs/${encodeURIComponent(id)}/export`, { json: { format: fmt } });
    say("#results-msg", `Export queued as job ${job.id}; the files appear here when it is done.`, "info");
    const wait = async () => {
      const j = await api(`/api/jobs/${job.id}`);
      if (!TERMINAL.includes(j.state)) return setTimeout(wait, 1500);
      if (j.state === "done") { say("#results-msg", `Exported ${fmt}.`, "ok"); showRun(id); } else say("#results-msg", `Export ${j.state}: ${j.error || ""}`);
    };
    setTimeout(wait, 1500);
  } catch (err) { say("#results-msg", err.message); }
}
