// The registry's runs, shared by the results, inspector, predict and runs pages.
import { api } from "./api.js";
import { el, fmtPct } from "./dom.js";
import { state } from "./state.js";

export async function loadRuns(force = false) {
  if (force || !state.runs.length) state.runs = await api("/api/runs");
  return state.runs;
}
export function runLabel(r) {
  const acc = r.result && r.result.accuracy !== undefined && r.result.accuracy !== null ? ` — ${fmtPct(r.result.accuracy)}` : "";
  return `${r.id} (${r.state}${acc})`;
}
export function fillRunSelect(sel, runs, chosen, extra = []) {
  sel.replaceChildren(...extra, ...runs.map((r) => el("option", { value: r.id, text: runLabel(r) })));
  if (chosen && [...sel.options].some((o) => o.value === chosen)) sel.value = chosen;
}
