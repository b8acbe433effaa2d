// Train page: strategy, options, the learning-rate table and the plan; starts a job.
import { api } from "../lib/api.js";
import { lineChart } from "../lib/charts.js";
import { $, $$, el, say } from "../lib/dom.js";
import { loaders } from "../lib/router.js";
import { state } from "../lib/state.js";
import { follow, refreshJobs, renderLive } from "./live.js";
import { USES_SELECTION, bodyNames, ensureModels, loadSummary, numClasses } from "./model.js";

export async function ensureStrategies() {
  if (state.strategies.length) return;
  state.strategies = await api("/api/strategies");
  const box = $("#strategy-list");
  box.replaceChildren();
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
  if (name === "finetune" && !state.sel.groups && (state.sel.top === 0 || state.sel.top >= n)) state.sel = { top: Math.min(2, n), groups: null };
  if (name === "two-phase" && !state.sel.groups && state.sel.top === 0) state.sel = { top: n, groups: null };
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
  if (USES_SELECTION.includes(state.strategy)) {
    if (state.sel.groups) opts.train_groups = state.sel.groups;
    else opts.train_top = state.sel.top;
  }
  if (state.strategy === "two-phase") opts.probe_epochs = num("#probe-epochs");
  if (state.lrEdited) opts.lrs = { ...state.lrs };
  const m = state.models.find((x) => x.name === state.model);
  if (m && !m.offline) opts.weights = "random";
  return opts;
}
function syncTrainForm() {
  for (const r of $$("#strategy-list input")) r.checked = r.value === state.strategy;
  const uses = USES_SELECTION.includes(state.strategy);
  const kInput = $("#train-top");
  kInput.disabled = !uses || !!state.sel.groups;
  kInput.value = uses && !state.sel.groups ? state.sel.top : "";
  kInput.placeholder = !uses ? "by strategy" : state.sel.groups ? "custom" : "";
  $("#train-top-note").textContent = uses && state.sel.groups
    ? `Trains exactly ${state.sel.groups.join(", ") || "no body group"} plus the head (chosen on the Model page).`
    : uses ? "The head plus the top K groups train; click groups on the Model page for any other set." : "";
  $("#probe-wrap").hidden = state.strategy !== "two-phase";
}
async function refreshPlan() {
  try {
    const opts = trainOptions();
    delete opts.lrs;
    const dataset = state.dataset ? state.dataset.path : ".";
    state.plan = await api("/api/train/plan", { json: { ...opts, dataset, num_classes: numClasses() } });
    state.autoResolved = state.plan.resolved;
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
    const input = el("input", { type: "number", id, min: "0", step: "any", value: state.lrs[name], "aria-label": `learning rate of ${name}` });
    input.addEventListener("change", () => {
      const v = Number(input.value);
      if (!(v >= 0)) { say("#train-msg", `The learning rate of ${name} must be a number ≥ 0.`); return; }
      state.lrs[name] = v;
      state.lrEdited = true;
      $("#plan-note").textContent = "Custom learning rates: used for every phase (the two-phase probe keeps its own).";
    });
    const st = states[name] === undefined ? "" : states[name] ? "trainable" : "frozen";
    tbody.append(el("tr", {}, el("th", { scope: "row" }, el("label", { for: id, text: name })),
      el("td", { class: st === "frozen" ? "muted" : "", text: st }), el("td", {}, input)));
  }
  const phases = state.plan.phases.map((p) => `${p.name}: ${p.epochs} epochs${p.cached_features ? " on cached features" : ""}${p.unfreeze_every ? `, one more group every ${p.unfreeze_every}` : ""}, augment ${p.augment}`);
  const auto = state.plan.resolved ? ` Auto chose ${state.plan.resolved.strategy}: ${state.plan.resolved.notes.join(" ")}` : "";
  if (!state.lrEdited) $("#plan-note").textContent = `Plan — ${phases.join("; ")}.${auto}`;
}
function emptyCharts() {
  for (const id of ["#chart-loss", "#chart-acc", "#chart-lr"]) lineChart($(id), [], { label: "no run yet" });
}
loaders.train = async () => {
  if (!state.live) emptyCharts();
  await ensureModels();
  await ensureStrategies();
  syncTrainForm();
  await refreshPlan();
  await refreshJobs();
  if (!state.dataset) say("#train-msg", "Choose a dataset on the Data page first.", "info");
};
$("#train-top").addEventListener("change", (ev) => {
  const n = bodyNames().length || 99;
  const v = Math.min(n, Math.max(0, parseInt(ev.target.value, 10) || 0));
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
  if (!state.dataset) return say("#train-msg", "Choose a dataset on the Data page first.");
  try {
    const job = await api("/api/jobs/train", { json: { dataset: state.dataset.path, ...trainOptions() } });
    say("#train-msg", job.state === "queued" ? `Queued (position ${job.position}).` : "Started.", "ok");
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
