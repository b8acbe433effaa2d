// Results page: one run's summary, curves, confusion matrix, worst errors, downloads, export.
import { api } from "../lib/api.js";
import { bars, lineChart } from "../lib/charts.js";
import { $, el, fmtCI, fmtInt, fmtNum, fmtPct, say, thumbUrl } from "../lib/dom.js";
import { stateName, t } from "../lib/i18n.js";
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
    return say("#results-msg", t("results.no_runs"), "info");
  }
  await showRun($("#results-run").value);
};
$("#results-run").addEventListener("change", (ev) => { location.hash = `#results/${encodeURIComponent(ev.target.value)}`; });
async function showRun(id) {
  state.resultsRun = id;
  let doc;
  try { doc = await api(`/api/runs/${encodeURIComponent(id)}`); } catch (err) { return say("#results-msg", err.message); }
  say("#results-msg", doc.evaluation ? "" : t("results.no_eval_state", { run: id, state: stateName(doc.run.state) }), "info");
  $("#results-body").hidden = false;
  const ev = doc.evaluation || {}, cfg = doc.config || {}, res = doc.run.result || {};
  const test = ev.test, cal = ev.calibration;
  $("#results-summary").replaceChildren(
    ...(test ? [el("dt", { text: t("results.test_accuracy") }), el("dd", { id: "res-test-accuracy", text: t("results.test_value", { acc: fmtCI(test.accuracy, test.accuracy_interval), images: fmtInt(test.num_images), balanced: fmtPct(test.balanced_accuracy) }) })] : []),
    el("dt", { text: t(test ? "results.val_accuracy_chose" : "results.val_accuracy_optimistic") }),
    el("dd", { id: "res-accuracy", text: fmtCI(ev.accuracy, ev.accuracy_interval), title: ev.note || "" }),
    el("dt", { text: t("results.balanced_accuracy") }), el("dd", { text: fmtPct(ev.balanced_accuracy) }),
    ...(cal ? [el("dt", { text: t("results.ece", { on: cal.measured_on }) }), el("dd", { id: "res-ece", text: t("results.ece_value", { before: fmtNum(cal.ece_before, 3), after: fmtNum(cal.ece_after, 3), temperature: fmtNum(cal.temperature, 2) }), title: cal.binning })] : []),
    el("dt", { text: t("results.loss") }), el("dd", { text: fmtNum(ev.loss) }),
    el("dt", { text: t("results.images") }), el("dd", { text: fmtInt(ev.num_images) }),
    el("dt", { text: t("results.strategy") }), el("dd", { text: cfg.strategy || "–" }),
    el("dt", { text: t("results.backbone") }), el("dd", { text: cfg.model || "–" }),
    el("dt", { text: t("results.epochs") }), el("dd", { text: (doc.metrics || []).length }),
    el("dt", { text: t("results.wall_time") }), el("dd", { text: res.wall_seconds ? t("results.seconds", { s: fmtNum(res.wall_seconds, 1) }) : "–" }),
    el("dt", { text: t("results.state") }), el("dd", { class: `state ${doc.run.state}`, text: stateName(doc.run.state) }));
  const dl = $("#downloads");
  dl.replaceChildren();
  const files = { "best.safetensors": "weights", "best.json": "sidecar", "report.md": "report", "metrics.csv": "metrics",
    "evaluation.json": "evaluation", "reliability.png": "reliability", "config.json": "config" };
  for (const [name, key] of Object.entries(files)) {
    const label = t(`results.file.${key}`);
    if (doc.files.includes(name)) dl.append(el("li", {}, el("a", { href: `/api/runs/${encodeURIComponent(id)}/files/${name}?download=true`, download: `${id}-${name}`, text: `${label} — ${name}` })));
  }
  const box = $("#export-box");
  box.replaceChildren();
  const settings = await api("/api/settings");
  if (settings.lab.enabled) { // the run's settings as Python, in the Lab's editor
    box.append(el("p", {}, el("a", { href: `#lab/run:${encodeURIComponent(id)}`, id: "open-in-lab", text: t("lab.open_in_lab") })));
  }
  if (doc.exports.length) {
    box.append(el("h4", { text: t("results.export_title") }));
    for (const fmt of doc.exports) box.append(el("button", { type: "button", text: t("results.export_btn", { format: fmt }), onclick: () => startExport(id, fmt) }));
    if (doc.exported.length) {
      box.append(el("ul", { class: "link-list" }, ...doc.exported.map((f) => el("li", {}, el("a", { href: `/api/runs/${encodeURIComponent(id)}/exported/${encodeURIComponent(f)}`, download: `${id}-${f}`, text: t("results.exported_file", { file: f }) })))));
    }
  } else {
    box.append(el("p", { class: "small muted", text: t("results.no_export") }));
  }
  const rows = doc.metrics || [];
  lineChart($("#res-chart-loss"), [
    { name: t("data.train"), points: rows.map((r, i) => [i + 1, r.train_loss]) },
    { name: t("data.val"), points: rows.map((r, i) => [i + 1, r.val_loss]) }], { label: t("ui.chart_loss"), xLabel: t("ui.epoch") });
  lineChart($("#res-chart-acc"), [
    { name: t("data.train"), points: rows.map((r, i) => [i + 1, r.train_acc]) },
    { name: t("data.val"), points: rows.map((r, i) => [i + 1, r.val_acc]) }], { label: t("ui.chart_acc"), xLabel: t("ui.epoch"), yMin: 0, yMax: 1 });
  renderConfusion(ev);
  bars($("#per-class-acc"), Object.entries(ev.per_class_accuracy || {}).map(([c, a]) => ({ label: c, value: a ?? 0, text: fmtPct(a) })), { max: 1 });
  const worst = $("#worst");
  worst.replaceChildren();
  const errors = ev.worst_errors || [];
  if (!errors.length) worst.append(el("p", { class: "muted", text: ev.accuracy === undefined ? t("results.no_evaluation") : t("results.no_errors") }));
  for (const e of errors) {
    worst.append(el("figure", {},
      e.image ? el("img", { src: thumbUrl(e.image, 200), alt: t("results.error_alt", { name: e.name, truth: e.true, pred: e.pred }) }) : el("div", { class: "muted", text: t("results.outside_root") }),
      el("figcaption", {}, el("strong", { text: t("results.true_class", { cls: e.true }) }), el("br"), t("results.predicted_class", { cls: e.pred, conf: fmtPct(e.confidence) }))));
  }
}
function renderConfusion(ev) {
  const table = $("#confusion");
  table.replaceChildren();
  if (!ev.confusion) return;
  const max = Math.max(1, ...ev.confusion.flat());
  table.append(el("caption", { class: "small muted", text: t("results.n_classes", { n: fmtInt(ev.classes.length) }) }));
  table.append(el("thead", {}, el("tr", {}, el("th", { scope: "col", text: t("results.true_predicted") }), ...ev.classes.map((c) => el("th", { scope: "col", text: c })))));
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
    say("#results-msg", t("results.export_queued", { job: job.id }), "info");
    const wait = async () => {
      const j = await api(`/api/jobs/${job.id}`);
      if (!TERMINAL.includes(j.state)) return setTimeout(wait, 1500);
      if (j.state === "done") { say("#results-msg", t("results.exported", { format: fmt }), "ok"); showRun(id); } else say("#results-msg", t("results.export_failed", { state: j.state, error: j.error || "" }));
    };
    setTimeout(wait, 1500);
  } catch (err) { say("#results-msg", err.message); }
}
