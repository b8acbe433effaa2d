// Train page: strategy, options, the learning-rate table and the plan; starts a job.
import { api } from "../lib/api.js";
import { lineChart } from "../lib/charts.js";
import { $, $$, el, fmtInt, say } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { loaders } from "../lib/router.js";
import { state } from "../lib/state.js";
import { loadStrategies, usesOption, usesSelection } from "../lib/strategies.js";
import { follow, refreshJobs, renderLive } from "./live.js";
import { bodyNames, ensureModels, loadSummary, numClasses } from "./model.js";

// The strategy radios, from the library's registry (rendered once).
export async function ensureStrategies() {
  await loadStrategies();
  const box = $("#strategy-list");
  if (box.children.length) return;
  for (const s of state.strategies) {
    const id = `strategy-${s.name}`;
    box.append(el("label", { for: id },
      el("input", { type: "radio", name: "strategy", id, value: s.name, onchange: () => chooseStrategy(s.name) }),
      el("span", {}, el("strong", { text: s.name }), el("span", { class: "desc", text: s.description }))));
  }
}
function chooseStrategy(name) {
  state.strategy = name;
  const n = bodyNames().length || 2;
  if (name === "finetune" && !state.sel.groups && (state.sel.top === 0 || state.sel.top >= n)) state.sel = { top: null, groups: null };
  if (name === "two-phase" && !state.sel.groups && state.sel.top === 0) state.sel = { top: null, groups: null };
  state.lrEdited = false;
  syncTrainForm();
  refreshPlan();
}
export function trainOptions() {
  const num = (id) => { const v = $(id).value.trim(); return v === "" ? null : Number(v); };
  const opts = {
    model: state.model, strategy: state.strategy, epochs: num("#epochs"),
    patience: num("#patience") ?? 5, batch_size: num("#batch-size") ?? 32,
    per_class: num("#per-class"), augment: $("#augment").value,
    bn_policy: $("#bn-policy").value, class_weighting: $("#class-weighting").value,
  };
  if (usesSelection(state.strategy)) {
    if (state.sel.groups) opts.train_groups = state.sel.groups;
    else if (state.sel.top !== null) opts.train_top = state.sel.top;
  }
  if (usesOption(state.strategy, "probe_epochs")) opts.probe_epochs = num("#probe-epochs");
  // the table as the library takes it: one rate per group, input to head
  if (state.lrEdited && state.plan) opts.lrs = state.plan.groups.map((g) => state.lrs[g]);
  const m = state.models.find((x) => x.name === state.model);
  if (m && !m.offline) opts.weights = "random";
  return opts;
}
function syncTrainForm() {
  for (const r of $$("#strategy-list input")) r.checked = r.value === state.strategy;
  const uses = usesSelection(state.strategy);
  const kInput = $("#train-top");
  kInput.disabled = !uses || !!state.sel.groups;
  kInput.value = uses && !state.sel.groups && state.sel.top !== null ? state.sel.top : "";
  kInput.placeholder = !uses ? t("train.by_strategy") : state.sel.groups ? t("train.custom") : t("train.strategy_default");
  $("#train-top-note").textContent = uses && state.sel.groups
    ? t("train.top_note_groups", { groups: state.sel.groups.join(", ") || t("train.no_body_group") })
    : uses ? t("train.top_note") : "";
  $("#probe-wrap").hidden = !usesOption(state.strategy, "probe_epochs");
}
async function refreshPlan() {
  try {
    const opts = trainOptions();
    delete opts.lrs;
    const data = state.dataset ? state.dataset.path : ".";
    state.plan = await api("/api/train/plan", { json: { ...opts, data, num_classes: numClasses() } });
    if (!state.lrEdited) {
      const main = state.plan.phases[state.plan.phases.length - 1];
      state.lrs = { ...main.lrs };
    }
    await loadSummary();
    renderLrTable();
    say("#train-msg", "");
  } catch (err) {
    say("#train-msg", err.message);
  }
}
function renderLrTable() {
  const tbody = $("#lr-table tbody");
  tbody.replaceChildren();
  const states = {};
  if (state.summary) for (const g of state.summary.groups) states[g.name] = g.trainable_params > 0;
  for (const name of state.plan.groups) {
    const id = `lr-${name}`;
    const input = el("input", { type: "number", id, min: "0", step: "any", value: state.lrs[name], "aria-label": t("train.lr_of", { group: name }) });
    input.addEventListener("change", () => {
      // kept as typed (blank: null): a bad rate is refused when training starts, never
      // replaced by a default or sent as 0
      const raw = input.value.trim();
      state.lrs[name] = raw === "" ? null : Number(raw);
      state.lrEdited = true;
      const bad = badLearningRate();
      say("#train-msg", bad || "");
      $("#plan-note").textContent = t("train.custom_lrs");
    });
    const st = states[name] === undefined ? "" : states[name] ? "trainable" : "frozen";
    tbody.append(el("tr", {}, el("th", { scope: "row" }, el("label", { for: id, text: name })),
      el("td", { class: st === "frozen" ? "muted" : "", text: st && t(`ui.${st}`) }), el("td", {}, input)));
  }
  const phases = state.plan.phases.map((p) => t("train.plan_phase", {
    name: p.name, epochs: fmtInt(p.epochs), augment: p.augment,
    cached: p.cached_features ? t("train.plan_cached") : "",
    unfreeze: p.unfreeze_every ? t("train.plan_unfreeze", { n: fmtInt(p.unfreeze_every) }) : "",
  }));
  const auto = state.plan.resolved ? " " + t("train.plan_auto", { strategy: state.plan.resolved.strategy, notes: state.plan.resolved.notes.join(" ") }) : "";
  if (!state.lrEdited) $("#plan-note").textContent = t("train.plan", { phases: phases.join("; "), auto });
}
// The first group whose learning rate is blank, not a number, zero or negative, as a message.
function badLearningRate() {
  if (!state.lrEdited || !state.plan) return "";
  for (const g of state.plan.groups) {
    const v = state.lrs[g];
    if (typeof v !== "number" || !Number.isFinite(v) || !(v > 0)) return t("train.bad_lr", { group: g });
  }
  return "";
}
function emptyCharts() {
  for (const id of ["#chart-loss", "#chart-acc", "#chart-lr"]) lineChart($(id), [], { label: t("train.chart_empty") });
}
loaders.train = async () => {
  if (!state.live) emptyCharts();
  await ensureModels();
  await ensureStrategies();
  syncTrainForm();
  await refreshPlan();
  await refreshJobs();
  if (!state.dataset) say("#train-msg", t("ui.choose_dataset_first"), "info");
};
$("#train-top").addEventListener("change", (ev) => {
  const n = bodyNames().length || 99;
  const raw = ev.target.value.trim();
  const v = raw === "" ? null : Math.min(n, Math.max(0, parseInt(raw, 10) || 0));
  state.sel = { top: v, groups: null };
  state.lrEdited = false;
  refreshPlan();
});
$("#epochs").addEventListener("change", () => refreshPlan());
$("#probe-epochs").addEventListener("change", () => refreshPlan());
$("#augment").addEventListener("change", () => refreshPlan());
$("#lr-reset").addEventListener("click", () => { state.lrEdited = false; refreshPlan(); });
$("#train-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (!state.dataset) return say("#train-msg", t("ui.choose_dataset_first"));
  const bad = badLearningRate();
  if (bad) return say("#train-msg", bad);
  try {
    const job = await api("/api/jobs/train", { json: { data: state.dataset.path, ...trainOptions() } });
    say("#train-msg", job.state === "queued" ? t("train.queued", { position: fmtInt(job.position) }) : t("train.started"), "ok");
    follow(job);
    refreshJobs();
  } catch (err) {
    say("#train-msg", err.message);
  }
});
$("#stop-btn").addEventListener("click", async () => {
  if (!state.job) return;
  try {
    state.job = await api(`/api/jobs/${state.job.id}/stop`, { method: "POST" });
    renderLive();
  } catch (err) {
    say("#train-msg", err.message);
  }
});

// live progress from the job's server-sent events
