// Data page: datasets under the data root, uploads, the chosen dataset's classes and samples.
import { api } from "../lib/api.js";
import { $, el, fmtInt, fmtPct, say, store, thumbUrl } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { loaders, renderChips } from "../lib/router.js";
import { state } from "../lib/state.js";
import { renderDoctorPanel } from "./doctor.js";

loaders.data = async () => {
  if (!state.settings) state.settings = await api("/api/settings");
  $("#data-root-line").textContent = t("data.root_line", { root: state.settings.data_root });
  $("#upload-limit").textContent = t("data.upload_limit", { mib: fmtInt(state.settings.max_upload_mib) });
  state.datasets = await api("/api/datasets");
  renderDatasetList();
  if (state.dataset) renderDataset();
};
function renderDatasetList() {
  const list = $("#dataset-list");
  list.replaceChildren();
  if (!state.datasets.length) list.append(el("li", { class: "muted", text: t("data.no_datasets") }));
  for (const d of state.datasets) {
    const chosen = state.dataset && state.dataset.path === d.path;
    list.append(el("li", {}, el("button", {
      type: "button", class: "dataset", "aria-pressed": chosen ? "true" : "false", dataset: { path: d.path },
      onclick: () => chooseDataset(d.path),
    }, d.path, el("small", { text: d.layout + (d.uploaded ? ` · ${t("data.uploaded")}` : "") }))));
  }
}
export async function chooseDataset(path) {
  say("#data-msg", t("data.checking"), "info");
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
  $("#dataset-title").textContent = t("data.dataset_title", { path: d.path });
  $("#dataset-summary").textContent = t("data.summary", {
    classes: fmtInt(d.classes.length), train: fmtInt(d.totals.train), val: fmtInt(d.totals.val), layout: d.layout,
    test: d.totals.test ? t("data.summary_test", { test: fmtInt(d.totals.test) }) : "",
    skipped: d.bad_file_count ? t("data.summary_skipped", { n: fmtInt(d.bad_file_count) }) : "",
  });
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
  if (!file) return say("#upload-msg", t("data.choose_zip"));
  const body = new FormData();
  body.append("file", file);
  body.append("name", $("#upload-name").value.trim());
  say("#upload-msg", t("data.uploading", { name: file.name }), "info");
  try {
    const info = await api("/api/datasets/upload", { method: "POST", body });
    say("#upload-msg", t("data.unpacked", { path: info.path, classes: fmtInt(info.classes.length) }), "ok");
    state.datasets = await api("/api/datasets");
    await chooseDataset(info.path);
  } catch (err) {
    say("#upload-msg", err.message);
  }
});
