// The library's strategy registry (/api/strategies): names, descriptions, the options each
// uses and the default. The page keeps no strategy rules of its own.
import { api } from "./api.js";
import { state } from "./state.js";

export async function loadStrategies() {
  if (state.strategies.length) return state.strategies;
  state.strategies = await api("/api/strategies");
  if (!state.strategy) state.strategy = (state.strategies.find((s) => s.default) || state.strategies[0]).name;
  return state.strategies;
}

// Does strategy `name` use training option `option` (the registry's list)?
export function usesOption(name, option) {
  const s = state.strategies.find((x) => x.name === name);
  return !!s && s.uses.includes(option);
}

// Does strategy `name` train the groups chosen on the Model page (train_top / train_groups)?
export function usesSelection(name) {
  return usesOption(name, "train_top");
}
