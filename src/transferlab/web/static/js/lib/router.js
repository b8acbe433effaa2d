// Hash routing (#page/arg): each page module registers its loader in `loaders`.
import { stateName, t } from "./i18n.js";
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
  document.title = t("ui.title", { page: t(page === "lab" ? "nav.lab" : `ui.${page}`) });
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
  d.textContent = state.dataset ? t("ui.chip_dataset", { path: state.dataset.path, n: state.dataset.classes.length }) : t("ui.no_dataset_chosen");
  const j = $("#chip-job");
  const job = state.job;
  j.className = "chip" + (job ? " " + job.state : "");
  if (!job) j.textContent = t("ui.no_job_running");
  else {
    const l = state.live;
    const epoch = l && l.epoch ? ` · ${t("ui.chip_epoch", { epoch: l.epoch, epochs: l.epochs })}` : "";
    j.textContent = t("ui.chip_job", { state: stateName(job.state) }) + (job.state === "running" ? epoch : "");
  }
}
