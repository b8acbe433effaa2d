// transferlab playground: vanilla JS modules, no build step, no CDN. Talks to /api (see docs/WEB.md).
// Each page module registers its loader; this entry point loads them all and starts the router.
import { api } from "./lib/api.js";
import { store } from "./lib/dom.js";
import { initI18n } from "./lib/i18n.js";
import { renderChips, route } from "./lib/router.js";
import { state } from "./lib/state.js";
import { refreshJobs } from "./pages/live.js";
import "./pages/data.js";
import "./pages/model.js";
import "./pages/train.js";
import "./pages/results.js";
import "./pages/experiments.js";
import "./pages/inspector.js";
import "./pages/predict.js";
import "./pages/learn.js";
import "./pages/runs.js";
import "./pages/lab.js";

window.addEventListener("hashchange", () => route(true));
async function start() {
  await initI18n();
  const saved = store.get("dataset");
  if (saved) {
    try { state.dataset = await api(`/api/datasets/info?path=${encodeURIComponent(saved)}`); } catch { store.set("dataset", null); }
  }
  renderChips();
  await route(false);
  refreshJobs();
}
start();
