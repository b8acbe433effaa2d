// Runs page: every run in the registry; compare two.
import { api } from "../lib/api.js";
import { lineChart } from "../lib/charts.js";
import { $, $$, el, fmtCI, fmtInt, fmtNum, fmtPct, say } from "../lib/dom.js";
import { stateName, t } from "../lib/i18n.js";
import { loaders } from "../lib/router.js";
import { loadRuns } from "../lib/runs.js";

loaders.runs = async () => {
  const runs = await loadRuns(true);
  const tbody = $("#runs-table tbody");
  tbody.replaceChildren();
  if (!runs.length) tbody.append(el("tr", {}, el("td", { colspan: 9, class: "muted", text: t("runs.none") })));
  for (const r of runs) {
    const box = el("input", { type: "checkbox", value: r.id, "aria-label": t("runs.compare_label", { run: r.id }), onchange: updateCompare });
    tbody.append(el("tr", {}, el("td", {}, box), el("td", { text: r.id }), el("td", { class: `state ${r.state}`, text: stateName(r.state) }),
      el("td", { text: r.dataset || "" }), el("td", { text: r.model || "" }), el("td", { text: r.strategy || "" }),
      el("td", { class: "num", text: runAccuracy(r.result || {}) }), el("td", { class: "num", text: (r.result && r.result.epochs) ?? "–" }),
      el("td", {}, el("a", { href: `#results/${encodeURIComponent(r.id)}`, text: t("runs.results_link"), "aria-label": t("runs.results_of", { run: r.id }) }))));
  }
  updateCompare();
};
// validation accuracy with its interval; the untouched test figure beside it when there is one
function runAccuracy(res) {
  const val = fmtCI(res.accuracy, res.accuracy_interval);
  return res.test_accuracy === undefined || res.test_accuracy === null ? val : t("runs.acc_test_val", { test: fmtCI(res.test_accuracy, res.test_accuracy_interval), val });
}
function updateCompare() {
  const ticked = $$("#runs-table input:checked");
  $("#compare-btn").disabled = ticked.length !== 2;
}
$("#compare-btn").addEventListener("click", async () => {
  const [a, b] = $$("#runs-table input:checked").map((x) => x.value);
  try {
    const doc = await api(`/api/runs/compare?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`);
    $("#compare-out").hidden = false;
    const m = $("#compare-metrics");
    const fmtMetric = (k, v) => (v === null || v === undefined ? "–" : k.includes("acc") ? fmtPct(v) : Number.isInteger(v) ? fmtInt(v) : fmtNum(v, 3));
    m.replaceChildren(el("thead", {}, el("tr", {}, el("th", { scope: "col", text: t("runs.metric") }), el("th", { scope: "col", text: `A: ${a}` }), el("th", { scope: "col", text: `B: ${b}` }), el("th", { scope: "col", text: "B − A" }))),
      el("tbody", {}, ...Object.entries(doc.metrics).map(([k, v]) => el("tr", {}, el("th", { scope: "row", text: k }), el("td", { class: "num", text: fmtMetric(k, v.a) }), el("td", { class: "num", text: fmtMetric(k, v.b) }), el("td", { class: "num", text: v.delta === null ? "" : fmtMetric(k, v.delta) })))));
    let paired = $("#compare-paired");
    if (!paired) { paired = el("p", { id: "compare-paired", class: "small" }); m.closest(".table-wrap").before(paired); }
    const p = doc.paired;
    paired.textContent = p ? t("runs.paired", { images: fmtInt(p.images), split: p.split, test: p.test, a_only: fmtInt(p.a_only), b_only: fmtInt(p.b_only),
      p: fmtNum(p.p_value, 3), verdict: p.verdict, note: p.note ? ` ${p.note}.` : "" })
      : t("runs.no_paired");
    const c = $("#compare-config");
    const diffs = Object.entries(doc.config_diff).filter(([k]) => !["name", "out"].includes(k));
    c.replaceChildren(el("thead", {}, el("tr", {}, el("th", { scope: "col", text: t("runs.setting") }), el("th", { scope: "col", text: "A" }), el("th", { scope: "col", text: "B" }))),
      el("tbody", {}, ...(diffs.length ? diffs.map(([k, [va, vb]]) => el("tr", {}, el("th", { scope: "row", text: k }), el("td", { text: JSON.stringify(va) }), el("td", { text: JSON.stringify(vb) })))
        : [el("tr", {}, el("td", { colspan: 3, class: "muted", text: t("runs.same_settings") }))])));
    lineChart($("#compare-chart"), [
      { name: "A", points: doc.history_a.map((r, i) => [i + 1, r.val_acc]) },
      { name: "B", points: doc.history_b.map((r, i) => [i + 1, r.val_acc]) }], { label: t("runs.chart_val_acc"), xLabel: t("ui.epoch"), yMin: 0, yMax: 1 });
    const pc = $("#compare-classes");
    pc.replaceChildren(el("caption", { text: t("results.accuracy_per_class") }), el("thead", {}, el("tr", {}, el("th", { scope: "col", text: t("data.class") }), el("th", { scope: "col", text: "A" }), el("th", { scope: "col", text: "B" }))),
      el("tbody", {}, ...Object.entries(doc.per_class_accuracy).map(([k, v]) => el("tr", {}, el("th", { scope: "row", text: k }), el("td", { class: "num", text: fmtPct(v.a) }), el("td", { class: "num", text: fmtPct(v.b) })))));
    say("#runs-msg", "");
    $("#compare-out").scrollIntoView({ block: "start" });
  } catch (err) { say("#runs-msg", err.message); }
});
