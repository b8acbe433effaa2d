// The page's shared state: one object every page reads and writes.
import { store } from "./dom.js";

export const TERMINAL = ["done", "failed", "stopped", "interrupted"];
export const state = {
  settings: null,
  datasets: [],
  dataset: null, // info of the chosen dataset
  models: [],
  model: store.get("model", "tf_efficientnet_lite0"),
  summary: null,
  summaryKey: "",
  sel: { top: null, groups: null }, // finetune / two-phase: head + top K (null: the strategy's default), or exactly these groups
  strategies: [],
  strategy: null, // the library's default strategy once /api/strategies has answered
  plan: null,
  lrs: {}, // group -> learning rate shown in the table
  lrEdited: false,
  job: null,
  source: null, // EventSource of the followed job
  live: null,
  runs: [],
  inspectPick: null,
  predictPick: null,
};
