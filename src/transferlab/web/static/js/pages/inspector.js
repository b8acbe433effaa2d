// Inspector page: activations per layer group for one image, gradient norms per group.
import { api } from "../lib/api.js";
import { bars, lineChart } from "../lib/charts.js";
import { $, el, fmtInt, fmtNum, fmtPct, fmtShape, say } from "../lib/dom.js";
import { imageForm, renderPicks } from "../lib/picks.js";
import { t } from "../lib/i18n.js";
import { loaders } from "../lib/router.js";
import { fillRunSelect, loadRuns } from "../lib/runs.js";
import { state } from "../lib/state.js";

loaders.inspector = async () => {
  const runs = (await loadRuns(true)).filter((r) => r.state === "done");
  const sel = $("#inspect-source");
  const prev = sel.value;
  fillRunSelect(sel, runs, prev, [el("option", { value: "", text: t("inspector.pretrained", { model: state.model }) }),
    ...(state.job ? [el("option", { value: "live", text: t("inspector.live_job", { job: state.job.id }) })] : [])]);
  renderPicks($("#inspect-picks"), "inspectPick");
  await showGrad();
};
$("#inspect-source").addEventListener("change", showGrad);
async function showGrad() {
  const v = $("#inspect-source").value;
  if (v === "live") return renderGrad(state.live ? state.live.grad : []);
  if (!v) return renderGrad([], t("inspector.choose_run"));
  try { renderGrad(await api(`/api/runs/${encodeURIComponent(v)}/grad-norms`)); } catch (err) { say("#inspect-msg", err.message); }
}
export function renderGrad(events, note) {
  const last = events[events.length - 1];
  const barBox = $("#grad-bars");
  if (!last) {
    barBox.replaceChildren(el("p", { class: "small muted", text: note || t("inspector.no_grad") }));
    lineChart($("#chart-grad"), [], { label: t("inspector.chart_grad") });
    return;
  }
  const names = Object.keys(last.norms);
  bars(barBox, names.map((n) => ({ label: n, value: last.norms[n], frozen: last.norms[n] === 0, text: last.norms[n] === 0 ? t("ui.frozen") : fmtNum(last.norms[n], 3) })));
  const series = names.filter((n) => events.some((e) => e.norms[n] > 0)).map((n, i) => ({ name: n, color: i, points: events.map((e, j) => [j + 1, e.norms[n]]) }));
  lineChart($("#chart-grad"), series, { label: t("inspector.chart_grad_group"), xLabel: t("inspector.logged_step"), log: true, empty: t("inspector.all_frozen") });
}
$("#inspect-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const body = imageForm($("#inspect-file"), "inspectPick");
  if (!body) return say("#inspect-msg", t("ui.pick_or_upload"));
  const src = $("#inspect-source").value;
  if (src && src !== "live") body.append("run_id", src);
  else body.append("model", state.model);
  say("#inspect-msg", t("inspector.running"), "info");
  try {
    const doc = await api("/api/inspect", { method: "POST", body });
    say("#inspect-msg", "");
    $("#inspect-source-label").textContent = t("inspector.activations_of_source", { source: doc.source });
    const grid = $("#activations");
    grid.replaceChildren();
    for (const g of doc.groups) {
      const stats = [["shape", fmtShape(g.shape)], ["zeros", fmtPct(g.zero_fraction)], ["mean", fmtNum(g.mean, 3)], ["std", fmtNum(g.std, 3)], ["min", fmtNum(g.min, 3)], ["max", fmtNum(g.max, 3)]]
        .map(([k, v]) => [t(`inspector.stat.${k}`), v]);
      grid.append(el("article", { class: "card act-card", "aria-label": t("inspector.activations_of", { group: g.name }) }, el("h4", { text: g.name }),
        el("dl", {}, ...stats.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })])),
        g.grid_png ? el("img", { src: g.grid_png, alt: t("inspector.maps_alt", { n: fmtInt(g.feature_maps), group: g.name }) }) : el("p", { class: "small muted", text: t("inspector.no_maps") })));
    }
  } catch (err) { say("#inspect-msg", err.message); }
});
