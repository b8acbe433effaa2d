// Experiments page: sweep kinds, starting a sweep, and a sweep's table and chart.
import { api } from "../lib/api.js";
import { bars, lineChart } from "../lib/charts.js";
import { $, el, fmtInt, fmtNum, fmtPct, say } from "../lib/dom.js";
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
    "data-size": ["Data size", "How accuracy grows with the number of training images per class; optionally against training from scratch.", "5, 10, 20"],
    "freeze-depth": ["Freeze depth", "Fine-tune the head plus the top K groups, for several K (two-phase or finetune from the Train page).", "0, 1, 2"],
    "compare": ["Strategy comparison", "The presets side by side on the same data, splits and seeds.", "feature-extraction, two-phase"],
  };
  for (const k of doc.kinds) {
    const [title, text, example] = help[k.kind] || [k.kind, "", ""];
    const card = el("div", { class: "card", dataset: { kind: k.kind } }, el("h3", { text: title }), el("p", { class: "small", text }));
    if (k.available) {
      const id = `sweep-values-${k.kind}`;
      const input = el("input", { type: "text", id, value: example });
      const seeds = el("input", { type: "number", id: `${id}-seeds`, min: "1", max: "10", value: String(k.default_seeds) });
      card.append(el("label", { for: id, text: `Values (${k.values_meaning})` }), input,
        el("label", { for: `${id}-seeds`, text: "Seeds per setting (more: honest intervals, slower)" }), seeds);
      let scratch = null;
      if (k.kind === "data-size") {
        scratch = el("input", { type: "checkbox", id: `${id}-scratch` });
        card.append(el("label", { for: `${id}-scratch` }, scratch, " also train from scratch (slow on a CPU)"));
      }
      card.append(el("button", { type: "button", class: "primary", text: "Run sweep",
        onclick: () => startSweep(k.kind, input.value, Number(seeds.value) || k.default_seeds, scratch ? scratch.checked : false) }));
    } else {
      card.append(el("p", { class: "msg info sweep-unavailable", text: k.reason || "not available yet" }));
    }
    box.append(card);
  }
  const tbody = $("#sweep-table tbody");
  tbody.replaceChildren();
  if (!doc.sweeps.length) tbody.append(el("tr", {}, el("td", { colspan: 4, class: "muted", text: "No sweeps yet." })));
  for (const sw of doc.sweeps) {
    const summary = sw.result && sw.result.trials ? `${sw.result.trials} trials` : "";
    tbody.append(el("tr", {}, el("td", {}, el("button", { type: "button", class: "secondary", text: sw.id, "aria-label": `show sweep ${sw.id}`, onclick: () => showSweep(sw.id) })),
      el("td", { text: sw.kind }), el("td", { class: `state ${sw.state}`, text: sw.state }), el("td", { text: sw.error || summary })));
  }
};
async function showSweep(id) {
  const box = $("#sweep-detail");
  let sw;
  try { sw = await api(`/api/experiments/${encodeURIComponent(id)}`); } catch (err) { return say("#exp-msg", err.message); }
  box.replaceChildren(el("h4", { text: `${sw.kind} sweep ${sw.id} — ${sw.state}` }));
  const res = sw.result || {};
  const table = res.table || [];
  if (!table.length) { box.append(el("p", { class: "muted", text: sw.error || "No results yet: trials appear here when the sweep finishes." })); return; }
  const metric = res.metric || "accuracy";
  const cols = ["arm", "size", "depth", "group", "strategy", "n"].filter((c) => table.some((r) => r[c] !== null && r[c] !== undefined));
  const head = [...cols, `${metric} (95% interval)`, "s / epoch", "trainable params"];
  box.append(el("div", { class: "table-wrap" }, el("table", { class: "data-table compact" },
    el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, ...table.map((r) => el("tr", {}, ...cols.map((c) => el("td", { text: r[c] ?? "" })),
      el("td", { class: "num", text: `${fmtPct(r[`${metric}_mean`])} [${fmtPct(r[`${metric}_ci_low`])}, ${fmtPct(r[`${metric}_ci_high`])}]` }),
      el("td", { class: "num", text: fmtNum(r.seconds_per_epoch_mean, 2) }),
      el("td", { class: "num", text: fmtInt(r.trainable_params_mean && Math.round(r.trainable_params_mean)) })))))));
  const xKey = sw.kind === "data-size" ? "size" : sw.kind === "freeze-depth" ? "depth" : null;
  const fig = el("div", { class: "chart" });
  box.append(el("figure", {}, fig, el("figcaption", { text: `${metric} by ${xKey || "strategy"} (mean over seeds)` })));
  if (xKey) {
    const arms = [...new Set(table.map((r) => r.arm))];
    lineChart(fig, arms.map((a, i) => ({ name: a, color: i, points: table.filter((r) => r.arm === a).map((r) => [r[xKey], r[`${metric}_mean`]]) })),
      { label: `${metric} by ${xKey}`, xLabel: xKey, yMin: 0, yMax: 1 });
  } else {
    bars(fig, table.map((r) => ({ label: r.arm, value: r[`${metric}_mean`] || 0, text: fmtPct(r[`${metric}_mean`]) })), { max: 1 });
  }
  for (const c of res.comparisons || []) box.append(el("p", { class: "small", text: `${c.what}: ${c.verdict || c.summary || JSON.stringify(c)}` }));
  for (const n of res.notes || []) box.append(el("p", { class: "small muted", text: `note: ${n}` }));
  if (sw.files.includes("plot")) box.append(el("img", { src: `/api/experiments/${encodeURIComponent(id)}/files/plot`, alt: `${sw.kind} sweep plot`, class: "sweep-plot" }));
  const links = el("ul", { class: "link-list" });
  for (const f of sw.files.filter((x) => x !== "plot")) links.append(el("li", {}, el("a", { href: `/api/experiments/${encodeURIComponent(id)}/files/${f}`, text: f })));
  box.append(links);
}
async function startSweep(kind, text, seeds, scratch) {
  if (!state.dataset) return say("#exp-msg", "Choose a dataset on the Data page first.");
  const values = text.split(",").map((v) => v.trim()).filter(Boolean).map((v) => (/^\d+$/.test(v) ? Number(v) : v));
  try {
    const opts = trainOptions();
    delete opts.lrs;
    delete opts.train_groups;
    const job = await api("/api/experiments", { json: { kind, values: values.length ? values : null, seeds, scratch, train: { data: state.dataset.path, ...opts } } });
    say("#exp-msg", `Sweep queued as job ${job.id}: follow it in the Train page's job queue.`, "ok");
    refreshJobs();
    loaders.experiments();
  } catch (err) { say("#exp-msg", err.message); }
}
