// Image pickers: a few dataset images to click, or an uploaded file.
import { t } from "./i18n.js";
import { $$, el, thumbUrl } from "./dom.js";
import { state } from "./state.js";

export function renderPicks(container, key) {
  container.replaceChildren();
  if (!state.dataset) { container.append(el("p", { class: "small muted", text: t("ui.choose_dataset_for_images") })); return; }
  const picks = [];
  for (const cls of state.dataset.classes) for (const rel of (state.dataset.samples[cls] || []).slice(0, 2)) picks.push([cls, rel]);
  if (!state[key] && picks.length) state[key] = picks[0][1];
  for (const [cls, rel] of picks) {
    const btn = el("button", { type: "button", "aria-pressed": state[key] === rel ? "true" : "false", "aria-label": `${cls}: ${rel.split("/").pop()}`, dataset: { path: rel },
      onclick: () => { state[key] = rel; for (const b of $$("button", container)) b.setAttribute("aria-pressed", b.dataset.path === rel ? "true" : "false"); } },
    el("img", { src: thumbUrl(rel, 96), alt: "", width: 64, height: 64 }));
    container.append(btn);
  }
}
export function imageForm(fileInput, key) {
  const body = new FormData();
  const file = fileInput.files[0];
  if (file) body.append("file", file);
  else if (state[key]) body.append("path", state[key]);
  else return null;
  return body;
}
