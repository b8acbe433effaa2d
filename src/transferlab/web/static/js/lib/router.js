// Hash routing (#page/arg): each page module registers its loader in `loaders`.
import { $, $$, say } from "./dom.js";
import { state } from "./state.js";

export const loaders = {};
export function currentPage() {
  const [page, arg] = location.hash.replace(/^#/, "").split("/");
  return { page: loaders[page] ? page : "data", arg: arg ? decodeURIComponent(arg) : null };
}
export async function route(focus = true) {
  const { page, arg } = currentPage();
  for (const section of $$(".page")) section.hidden = section.dataset.page !== page;
  for (const a of $$("[data-nav]")) {
    if (a.dataset.nav === page) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.title = `${page[0].toUpperCase() + page.slice(1)} · transferlab playground`;
  if (focus) $(`#h-${page}`)?.focus();
  try {
    await loaders[page](arg);
  } catch (err) {
    say(`#${page === "data" ? "data" : page}-msg`, err.message);
  }
}

// ---------------------------------------------------------------------------- status chips
export function renderChips() {
  const d = $("#chip-dataset");
  d.textContent = state.dataset ? `dataset: ${state.dataset.path} (${state.dataset.classes.length} classes)` : "no dataset chosen";
  const j = $("#chip-job");
  const job = state.job;
  j.className = "chip" + (job ? " " + job.state : "");
  if (!job) j.textContent = "no job running";
  else {
    const l = state.live;
    const epoch = l && l.epoch ? ` · epoch ${l.epoch}/${l.epochs}` : "";
    j.textContent = `job ${job.state}${job.state === "running" ? epoch : ""}`;
  }
}
