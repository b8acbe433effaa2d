// Model page: backbone choice, parameter totals and the clickable layer-group diagram.
import { api } from "../lib/api.js";
import { $, el, fmtInt, fmtShape, say, store } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { loaders } from "../lib/router.js";
import { state } from "../lib/state.js";
import { loadStrategies, usesSelection } from "../lib/strategies.js";

export async function ensureModels() {
  if (state.models.length) return;
  state.models = await api("/api/models");
  const sel = $("#backbone");
  sel.replaceChildren(...state.models.map((m) => el("option", { value: m.name, text: `${m.name} — ${t(m.offline ? "model.opt_offline" : "model.opt_arch")}` })));
  if (!state.models.some((m) => m.name === state.model)) state.model = state.models.find((m) => m.default)?.name || state.models[0].name;
  sel.value = state.model;
}
loaders.model = async () => {
  await Promise.all([ensureModels(), loadStrategies()]);
  await loadSummary();
};
export function numClasses() {
  return state.dataset ? state.dataset.classes.length : 4;
}
export function bodyNames() {
  return state.summary ? state.summary.groups.slice(0, -1).map((g) => g.name) : [];
}
// What trains in the main phase of the plan the library made (/api/train/plan): the diagram
// shows exactly this. Before a plan exists, the groups chosen on this page.
function effective() {
  if (state.plan) {
    const main = state.plan.phases[state.plan.phases.length - 1];
    return main.train_groups ? { train_groups: main.train_groups } : { train_top: main.train_top };
  }
  return state.sel.groups ? { train_groups: state.sel.groups } : { train_top: state.sel.top ?? 0 };
}
export async function loadSummary(force = false) {
  const body = { model: state.model, num_classes: numClasses(), ...effective() };
  const key = JSON.stringify(body);
  if (!force && state.summary && key === state.summaryKey) return;
  try {
    state.summary = await api("/api/models/summary", { json: body });
    state.summaryKey = key;
    say("#model-msg", "");
    renderSummary();
  } catch (err) {
    say("#model-msg", err.message);
  }
}
function renderSummary() {
  const s = state.summary;
  const m = state.models.find((x) => x.name === state.model);
  $("#backbone-note").textContent = s.architecture_only
    ? t("model.no_weights")
    : t("model.weights_available", { source: s.weights.source, detail: s.weights.detail });
  $("#backbone-note").className = "small" + (s.architecture_only ? " msg" : "");
  if (m && m.hint && s.architecture_only) $("#backbone-note").textContent += ` ${t("model.install", { hint: m.hint })}`;
  $("#totals").replaceChildren(
    el("dt", { text: t("model.total") }), el("dd", { text: fmtInt(s.counts.total), id: "total-params" }),
    el("dt", { text: t("ui.trainable") }), el("dd", { text: fmtInt(s.counts.trainable), id: "trainable-params" }),
    el("dt", { text: t("ui.frozen") }), el("dd", { text: fmtInt(s.counts.frozen), id: "frozen-params" }),
    el("dt", { text: t("model.head_in_out") }), el("dd", { text: `${s.head_in_features} → ${s.head_out_features}` }),
    el("dt", { text: t("model.input") }), el("dd", { text: fmtShape(s.input_size) }));
  $("#head-repr").textContent = s.head_repr;
  $("#weights-label").textContent = s.architecture_only ? t("model.weights_random") : t("model.weights_line", { source: s.weights.source, detail: s.weights.detail });
  const trainableBody = s.groups.slice(0, -1).filter((g) => g.trainable_params > 0).map((g) => g.name);
  $("#k-label").textContent = trainableBody.length ? trainableBody.join(", ") : t("model.none_fe");
  $("#strategy-line").textContent = t("model.strategy_line", { strategy: state.strategy }) + (state.strategy === "gradual" ? ` — ${t("model.gradual_note")}` : "");
  const list = $("#groups");
  list.replaceChildren();
  s.groups.forEach((g, i) => {
    const isHead = i === s.groups.length - 1;
    const trainable = g.trainable_params > 0;
    const types = Object.entries(g.layer_types).slice(0, 3).map(([type, n]) => `${n}× ${type}`).join(", ");
    const action = t(isHead ? "model.head_always" : trainable ? "model.press_freeze" : "model.press_unfreeze");
    const stateText = t(trainable ? "ui.trainable" : "ui.frozen");
    const btn = el("button", {
      type: "button", class: `group-btn ${trainable ? "trainable" : "frozen"}${isHead ? " head" : ""}`,
      "aria-pressed": trainable ? "false" : "true", "aria-disabled": isHead ? "true" : null,
      "aria-label": t("model.group_label", { group: g.name, state: stateText, params: fmtInt(g.params), shape: fmtShape(g.output_shape), action }),
      dataset: { group: g.name, index: i }, title: action,
      onclick: () => toggleGroup(i),
    },
    el("span", { class: "gname", text: g.name }),
    el("span", { class: "gstate", text: stateText }),
    el("span", { text: t("model.params", { params: fmtInt(g.params) }) }),
    el("span", { text: t("model.out", { shape: fmtShape(g.output_shape) }) }),
    el("span", { class: "muted", text: types }));
    list.append(el("li", {}, btn));
  });
}
function toggleGroup(index) {
  const s = state.summary;
  const names = bodyNames();
  const n = names.length;
  if (index >= n) {
    say("#model-msg", t("model.head_always_msg"), "info");
    return;
  }
  const trainable = new Set(s.groups.slice(0, -1).filter((g) => g.trainable_params > 0).map((g) => g.name));
  const name = names[index];
  const wasTrainable = trainable.has(name);
  if (wasTrainable) trainable.delete(name); else trainable.add(name);
  // A top block is "train_top K"; any other set is trained exactly (train_groups).
  const k = trainable.size;
  const contiguous = names.slice(n - k).every((x) => trainable.has(x));
  state.sel = contiguous ? { top: k, groups: null } : { top: k, groups: names.filter((x) => trainable.has(x)) };
  // The diagram decides what trains: switch to the preset that honours it.
  // Head only is feature extraction; a trained body needs a strategy that trains the chosen
  // groups (finetune, two-phase: the registry's `uses`), else finetune.
  if (k === 0 && !state.sel.groups) state.strategy = "feature-extraction";
  else if (!usesSelection(state.strategy)) state.strategy = "finetune";
  state.lrEdited = false;
  state.plan = null; // the Train page asks the library for the new plan
  say("#model-msg", t(wasTrainable ? "model.froze" : "model.unfroze", { group: name, strategy: state.strategy }), "info");
  loadSummary().then(() => $(`#groups [data-index="${index}"]`)?.focus());
}
$("#backbone").addEventListener("change", async (ev) => {
  state.model = ev.target.value;
  store.set("model", state.model);
  state.lrEdited = false;
  state.plan = null;
  await loadSummary();
});
