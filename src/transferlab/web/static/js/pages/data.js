// Data page: datasets under the data root, uploads, the chosen dataset's classes and samples.
import { api } from "../lib/api.js";
import { $, el, fmtInt, fmtPct, say, store, thumbUrl } from "../lib/dom.js";
import { loaders, renderChips } from "../lib/router.js";
import { state } from "../lib/state.js";
import { renderDoctorPanel } from "./doctor.js";

loaders.data = async () => {
  if (!state.settings) state.settings = await api("/api/settings");
  $("#data-root-line").textContent = `Data root: ${state.settings.data_root}`;
  $("#upload-limit").textContent = `At most ${state.settings.max_upload_mib} MiB; unpacked safely into uploads/ under the data root.`;
  state.datasets = await api("/api/datasets");
  renderDatasetList();
  if (state.dataset) renderDataset();
};
function renderDatasetList() {
  const list = $("#dataset-list");
  list.replaceChildren();
  if (!state.datasets.length) list.append(el("li", { class: "muted", text: "No dataset folders found under the data root. Upload a zip." }));
  for (const d of state.datasets) {
    const chosen = state.dataset && state.dataset.path === d.path;
    list.append(el("li", {}, el("button", {
      type: "button", class: "dataset", "aria-pressed": chosen ? "true" : "false", dataset: { path: d.path },
      onclick: () => chooseDataset(d.path),
    }, d.path, el("small", { text: d.layout + (d.uploaded ? " · uploaded" : "") }))));
  }
}
export async function chooseDataset(path) {
  say("#data-msg", "Checking every image…", "info");
  try {
    state.dataset = await api(`/api/datasets/info?path=${encodeURIComponent(path)}`);
    store.set("dataset", path);
    say("#data-msg", "");
    state.summary = null;
    state.inspectPick = state.predictPick = null;
    renderDatasetList();
    renderDataset();
    renderChips();
  } catch (err) {
    say("#data-msg", err.message);
  }
}
function renderDataset() {
  const d = state.dataset;
  $("#dataset-info").hidden = false;
  $("#dataset-title").textContent = `Dataset ${d.path}`;
  $("#dataset-summary").textContent = `${d.classes.length} classes · ${fmtInt(d.totals.train)} train, ${fmtInt(d.totals.val)} val` +
    (d.totals.test ? `, ${fmtInt(d.totals.test)} test` : "") + ` images · layout: ${d.layout}` +
    (d.bad_file_count ? ` · ${d.bad_file_count} file(s) skipped` : "");
  $("#dataset-notes").replaceChildren(...d.notes.map((n) => el("li", { text: n })));
  const maxTrain = Math.max(1, ...Object.values(d.counts).map((c) => c.train));
  const tbody = $("#class-table tbody");
  tbody.replaceChildren();
  for (const cls of d.classes) {
    const c = d.counts[cls];
    const share = el("span", { class: "share" });
    share.style.width = `${(100 * c.train) / maxTrain}px`;
    tbody.append(el("tr", {}, el("th", { scope: "row", text: cls }), el("td", { class: "num", text: c.train }),
      el("td", { class: "num", text: c.val }), el("td", { class: "num", text: c.test }),
      el("td", {}, share, " ", fmtPct(c.train / Math.max(1, d.totals.train)))));
  }
  const thumbs = $("#thumbs");
  thumbs.replaceChildren();
  for (const cls of d.classes) {
    const row = el("div", { class: "thumbs" });
    for (const rel of d.samples[cls] || []) {
      row.append(el("img", { src: thumbUrl(rel, 128), alt: `${cls}: ${rel.split("/").pop()}`, loading: "lazy", width: 88, height: 88 }));
    }
    thumbs.append(el("div", { class: "class-row" }, el("h5", { text: cls }), row));
  }
  const bad = $("#bad-files");
  bad.hidden = !d.bad_files.length;
  $("tbody", bad).replaceChildren(...d.bad_files.map((b) => el("tr", {}, el("td", { text: b.path }), el("td", { text: b.reason }))));
  renderDoctorPanel();
}
$("#upload-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const file = $("#upload-file").files[0];
  if (!file) return say("#upload-msg", "Choose a zip file first.");
  const body = new FormData();
  body.append("file", file);
  body.append("name", $("#upload-name").value.trim());
  say("#upload-msg", `Uploading ${file.name}…`, "info");
  try {
    const info = await api("/api/datasets/upload", { method: "POST", body });
    say("#upload-msg", `Unpacked into ${info.path}: ${info.classes.length} classes.`, "ok");
    state.datasets = await api("/api/datasets");
    await chooseDataset(info.path);
  } catch (err) {
    say("#upload-msg", err.message);
  }
});
