// Experiments page: sweep kinds, starting a sweep, and a sweep's table and chart.
import { api } from "../lib/api.js";
import { bars, lineChart } from "../lib/charts.js";
import { $, el, fmtInt, fmtNum, fmtPct, say } from "../lib/dom.js";
import { stateName, t } from "../lib/i18n.js";
import { loaders } from "../lib/router.js";
import { state } from "../lib/state.js";
import { refreshJobs } from "./live.js";
import { ensureStrategies, trainOptions } from "./train.js";

loaders.experiments = async () => {
  await ensureStrategies();
  const doc = await api("/api/experiments");
  const box = $("#sweep-kinds");
  box.replaceChildren();
  const help = {
    "data-size": [t("experiments.data_size"), t("experiments.data_size_help"), "5, 10, 20"],
    "freeze-depth": [t("experiments.freeze_depth"), t("experiments.freeze_depth_help"), "0, 1, 2"],
    "compare": [t("experiments.compare"), t("experiments.compare_help"), "feature-extraction, two-phase"],
  };
  for (const k of doc.kinds) {
    const [title, text, example] = help[k.kind] || [k.kind, "", ""];
    const card = el("div", { class: "card", dataset: { kind: k.kind } }, el("h3", { text: title }), el("p", { class: "small", text }));
    if (k.available) {
      const id = `sweep-values-${k.kind}`;
      const input = el("input", { type: "text", id, value: example });
      const seeds = el("input", { type: "number", id: `${id}-seeds`, min: "1", max: "10", value: String(k.default_seeds) });
      card.append(el("label", { for: id, text: t("experiments.values", { meaning: k.values_meaning }) }), input,
        el("label", { for: `${id}-seeds`, text: t("experiments.seeds") }), seeds);
      let scratch = null;
      if (k.kind === "data-size") {
        scratch = el("input", { type: "checkbox", id: `${id}-scratch` });
        card.append(el("label", { for: `${id}-scratch` }, scratch, ` ${t("experiments.scratch")}`));
      }
      card.append(el("button", { type: "button", class: "primary", text: t("experiments.run_sweep"),
        onclick: () => startSweep(k.kind, input.value, Number(seeds.value) || k.default_seeds, scratch ? scratch.checked : false) }));
    } else {
      card.append(el("p", { class: "msg info sweep-unavailable", text: k.reason || t("experiments.unavailable") }));
    }
    box.append(card);
  }
  const tbody = $("#sweep-table tbody");
  tbody.replaceChildren();
  if (!doc.sweeps.length) tbody.append(el("tr", {}, el("td", { colspan: 4, class: "muted", text: t("experiments.no_sweeps") })));
  for (const sw of doc.sweeps) {
    const summary = sw.result && sw.result.trials ? t("experiments.trials", { n: fmtInt(sw.result.trials) }) : "";
    tbody.append(el("tr", {}, el("td", {}, el("button", { type: "button", class: "secondary", text: sw.id, "aria-label": t("experiments.show_sweep", { sweep: sw.id }), onclick: () => showSweep(sw.id) })),
      el("td", { text: sw.kind }), el("td", { class: `state ${sw.state}`, text: stateName(sw.state) }), el("td", { text: sw.error || summary })));
  }
};
async function showSweep(id) {
  const box = $("#sweep-detail");
  let sw;
  try { sw = await api(`/api/experiments/${encodeURIComponent(id)}`); } catch (err) { return say("#exp-msg", err.message); }
  box.replaceChildren(el("h4", { text: t("experiments.sweep_title", { kind: sw.kind, sweep: sw.id, state: stateName(sw.state) }) }));
  const res = sw.result || {};
  const table = res.table || [];
  if (!table.length) { box.append(el("p", { class: "muted", text: sw.error || t("experiments.no_results") })); return; }
  const metric = res.metric || "accuracy";
  const cols = ["arm", "size", "depth", "group", "strategy", "n"].filter((c) => table.some((r) => r[c] !== null && r[c] !== undefined));
  const colName = (c) => (c === "n" ? "n" : t(`experiments.col.${c}`));
  const head = [...cols.map(colName), t("experiments.interval", { metric }), t("experiments.s_per_epoch"), t("experiments.trainable_params")];
  box.append(el("div", { class: "table-wrap" }, el("table", { class: "data-table compact" },
    el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, ...table.map((r) => el("tr", {}, ...cols.map((c) => el("td", { text: r[c] ?? "" })),
      el("td", { class: "num", text: `${fmtPct(r[metric + "_mean"])} [${fmtPct(r[metric + "_ci_low"])}, ${fmtPct(r[metric + "_ci_high"])}]` }),
      el("td", { class: "num", text: fmtNum(r.seconds_per_epoch_mean, 2) }),
      el("td", { class: "num", text: fmtInt(r.trainable_params_mean && Math.round(r.trainable_params_mean)) })))))));
  const xKey = sw.kind === "data-size" ? "size" : sw.kind === "freeze-depth" ? "depth" : null;
  const fig = el("div", { class: "chart" });
  box.append(el("figure", {}, fig, el("figcaption", { text: t("experiments.by_caption", { metric, x: colName(xKey || "strategy") }) })));
  if (xKey) {
    const arms = [...new Set(table.map((r) => r.arm))];
    lineChart(fig, arms.map((a, i) => ({ name: a, color: i, points: table.filter((r) => r.arm === a).map((r) => [r[xKey], r[`${metric}_mean`]]) })),
      { label: t("experiments.by", { metric, x: colName(xKey) }), xLabel: colName(xKey), yMin: 0, yMax: 1 });
  } else {
    bars(fig, table.map((r) => ({ label: r.arm, value: r[`${metric}_mean`] || 0, text: fmtPct(r[`${metric}_mean`]) })), { max: 1 });
  }
  for (const c of res.comparisons || []) box.append(el("p", { class: "small", text: `${c.what}: ${c.verdict || c.summary || JSON.stringify(c)}` }));
  for (const n of res.notes || []) box.append(el("p", { class: "small muted", text: t("experiments.note", { note: n }) }));
  if (sw.files.includes("plot")) box.append(el("img", { src: `/api/experiments/${encodeURIComponent(id)}/files/plot`, alt: t("experiments.plot_alt", { kind: sw.kind }), class: "sweep-plot" }));
  const links = el("ul", { class: "link-list" });
  for (const f of sw.files.filter((x) => x !== "plot")) links.append(el("li", {}, el("a", { href: `/api/experiments/${encodeURIComponent(id)}/files/${f}`, text: f })));
  box.append(links);
}
async function startSweep(kind, text, seeds, scratch) {
  if (!state.dataset) return say("#exp-msg", t("ui.choose_dataset_first"));
  const values = text.split(",").map((v) => v.trim()).filter(Boolean).map((v) => (/^\d+$/.test(v) ? Number(v) : v));
  try {
    const opts = trainOptions();
    delete opts.lrs;
    delete opts.train_groups;
    const job = await api("/api/experiments", { json: { kind, values: values.length ? values : null, seeds, scratch, train: { data: state.dataset.path, ...opts } } });
    say("#exp-msg", t("experiments.queued", { job: job.id }), "ok");
    refreshJobs();
    loaders.experiments();
  } catch (err) { say("#exp-msg", err.message); }
}
