// Predict page: top-k classes of one image with a finished run.
import { api } from "../lib/api.js";
import { bars } from "../lib/charts.js";
import { $, fmtPct, say, thumbUrl } from "../lib/dom.js";
import { imageForm, renderPicks } from "../lib/picks.js";
import { t } from "../lib/i18n.js";
import { loaders } from "../lib/router.js";
import { fillRunSelect, loadRuns } from "../lib/runs.js";
import { state } from "../lib/state.js";

loaders.predict = async () => {
  const runs = (await loadRuns(true)).filter((r) => r.state === "done");
  fillRunSelect($("#predict-run"), runs, state.resultsRun);
  if (!runs.length) say("#predict-msg", t("predict.no_finished"), "info");
  else say("#predict-msg", "");
  renderPicks($("#predict-picks"), "predictPick");
};
$("#predict-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const run = $("#predict-run").value;
  if (!run) return say("#predict-msg", t("predict.no_run"));
  const body = imageForm($("#predict-file"), "predictPick");
  if (!body) return say("#predict-msg", t("ui.pick_or_upload"));
  body.append("topk", $("#topk").value || "3");
  const file = $("#predict-file").files[0];
  const preview = $("#predict-preview");
  preview.src = file ? URL.createObjectURL(file) : thumbUrl(state.predictPick, 256);
  preview.alt = file ? t("predict.alt_uploaded", { name: file.name }) : t("predict.alt_image", { path: state.predictPick });
  preview.hidden = false;
  say("#predict-msg", t("predict.predicting"), "info");
  try {
    const doc = await api(`/api/runs/${encodeURIComponent(run)}/predict`, { method: "POST", body });
    say("#predict-msg", "");
    bars($("#predict-bars"), doc.top.map((t) => ({ label: t.class, value: t.prob, text: fmtPct(t.prob) })), { max: 1 });
  } catch (err) { say("#predict-msg", err.message); }
});
