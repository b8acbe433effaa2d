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
  sel: { top: 2, groups: null }, // finetune / two-phase: head + top K, or exactly these groups
  autoResolved: null, // what strategy "auto" chose for the dataset
  strategies: [],
  strategy: "feature-extraction",
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
