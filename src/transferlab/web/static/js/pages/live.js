// Live progress of the followed job (server-sent events) and the job queue.
import { stateName, t } from "../lib/i18n.js";
import { api } from "../lib/api.js";
import { lineChart } from "../lib/charts.js";
import { $, el, fmtInt, fmtNum, fmtCI, fmtPct, say } from "../lib/dom.js";
import { currentPage, renderChips } from "../lib/router.js";
import { TERMINAL, state } from "../lib/state.js";
import { renderGrad } from "./inspector.js";

function newLive() {
  return { rows: [], epoch: 0, epochs: 0, phase: "", batch: 0, batches: 0, es: null, grad: [], fitEnd: "" };
}
export function follow(job) {
  if (state.source) state.source.close();
  state.job = job;
  state.live = newLive();
  renderLive();
  const source = new EventSource(`/api/jobs/${encodeURIComponent(job.id)}/events`);
  state.source = source;
  let pending = false;
  const redraw = () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; renderLive(); });
  };
  source.onmessage = (msg) => {
    const doc = JSON.parse(msg.data);
    const l = state.live;
    switch (doc.event) {
      case "job":
        if (state.job && state.job.state !== doc.job.state) say("#train-msg", "");
        state.job = doc.job;
        if (TERMINAL.includes(doc.job.state)) { refreshJobs(); state.runs = []; }
        break;
      case "epoch_start":
        Object.assign(l, { epoch: doc.epoch, epochs: doc.epochs, phase: doc.phase, batch: 0 });
        break;
      case "batch_end":
        Object.assign(l, { batch: doc.batch, batches: doc.batches, epoch: doc.epoch, phase: doc.phase });
        break;
      case "epoch_end":
        l.rows.push(doc);
        Object.assign(l, { epoch: doc.epoch, epochs: doc.epochs, phase: doc.phase, es: doc.early_stopping });
        break;
      case "grad_norms":
        l.grad.push(doc);
        if (l.grad.length > 2000) l.grad.splice(0, l.grad.length - 2000);
        break;
      case "fit_end":
        l.fitEnd = doc.reason || "";
        break;
      case "sweep_row":
        l.sweep = doc;
        break;
      case "log":
        l.log = doc.message;
        break;
      case "end":
        source.close();
        break;
      default:
        break;
    }
    redraw();
  };
  source.onerror = () => {
    if (state.job && TERMINAL.includes(state.job.state)) source.close();
  };
}
export function renderLive() {
  const job = state.job, l = state.live;
  renderChips();
  if (!job || !l) return;
  const running = !TERMINAL.includes(job.state);
  $("#stop-btn").disabled = !running || job.stop_requested;
  $("#start-btn").disabled = false;
  let text = `${job.label || job.id}: ${stateName(job.state)}`;
  if (job.state === "queued") text += ` — ${t("live.waiting", { position: fmtInt(job.position) })}`;
  else if (job.state === "running") text += ` — ${job.detail}`;
  if (job.error && job.state !== "done") text += ` — ${job.error}`;
  if (job.state === "done" && job.result && job.result.accuracy !== undefined) {
    const res = job.result;
    text += ` — ${t("live.val_acc", { acc: fmtCI(res.accuracy, res.accuracy_interval) })}`;
    if (res.test_accuracy !== undefined && res.test_accuracy !== null) text += `, ${t("live.test_acc", { acc: fmtCI(res.test_accuracy, res.test_accuracy_interval), images: fmtInt(res.test_num_images) })}`;
  }
  if (l.sweep) text += ` — ${t("live.sweep_progress", { done: fmtInt(l.sweep.done), total: fmtInt(l.sweep.total), key: l.sweep.row.key, acc: fmtPct(l.sweep.row.accuracy) })}`;
  else if (l.log && job.kind === "sweep") text += ` — ${l.log}`;
  $("#live-state").textContent = text;
  $("#epoch-label").textContent = l.epochs ? t("live.epoch_of", { epoch: l.epoch, epochs: l.epochs }) : t("train.epoch");
  $("#phase-label").textContent = l.phase ? t("live.phase", { phase: l.phase }) : "";
  const prog = $("#batch-progress");
  prog.max = Math.max(1, l.batches);
  prog.value = l.batch;
  const es = l.es;
  $("#es-label").textContent = es ? t("live.early_stopping", { wait: es.wait, patience: es.patience, best: fmtNum(es.best), epoch: es.best_epoch }) + (l.fitEnd ? ` · ${l.fitEnd}` : "") : "";
  const xs = l.rows.map((_, i) => i + 1);
  lineChart($("#chart-loss"), [
    { name: "train", points: l.rows.map((r, i) => [xs[i], r.train_loss]) },
    { name: "val", points: l.rows.map((r, i) => [xs[i], r.val_loss]) }], { label: t("ui.chart_loss"), xLabel: t("live.epoch_all_phases") });
  lineChart($("#chart-acc"), [
    { name: "train", points: l.rows.map((r, i) => [xs[i], r.train_acc]) },
    { name: "val", points: l.rows.map((r, i) => [xs[i], r.val_acc]) }], { label: t("ui.chart_acc"), xLabel: t("live.epoch_all_phases"), yMin: 0, yMax: 1 });
  const groups = l.rows.length ? Object.keys(l.rows[l.rows.length - 1].lrs) : [];
  lineChart($("#chart-lr"), groups.map((g, gi) => ({ name: g, color: gi, points: l.rows.map((r, i) => [xs[i], r.lrs[g]]) })),
    { label: t("live.chart_lr"), xLabel: t("ui.epoch"), log: true });
  const tbody = $("#epoch-table tbody");
  if (tbody.children.length !== l.rows.length) {
    tbody.replaceChildren(...l.rows.map((r) => el("tr", {}, el("td", { text: r.phase }), el("td", { class: "num", text: r.epoch }),
      el("td", { class: "num", text: fmtNum(r.train_loss) }), el("td", { class: "num", text: fmtNum(r.val_loss) }),
      el("td", { class: "num", text: fmtPct(r.val_acc) }), el("td", { class: "num", text: fmtInt(Math.round(r.images_per_s)) }))));
  }
  const done = job.state === "done" && job.kind === "train";
  $("#live-done").hidden = !done;
  if (done) $("#open-results").href = `#results/${encodeURIComponent(job.id)}`;
  if (currentPage().page === "inspector" && $("#inspect-source").value === "live") renderGrad(l.grad);
}
export async function refreshJobs() {
  let jobs;
  try { jobs = await api("/api/jobs"); } catch { return; }
  const tbody = $("#job-table tbody");
  tbody.replaceChildren();
  if (!jobs.length) tbody.append(el("tr", {}, el("td", { colspan: 4, class: "muted", text: t("live.no_jobs") })));
  for (const j of jobs) {
    const stop = TERMINAL.includes(j.state) ? "" : el("button", { type: "button", class: "secondary", text: j.state === "queued" ? t("live.cancel") : t("train.stop"),
      "aria-label": t(j.state === "queued" ? "live.cancel_job" : "live.stop_job", { job: j.label || j.id }),
      onclick: async () => { try { await api(`/api/jobs/${j.id}/stop`, { method: "POST" }); } catch (err) { say("#train-msg", err.message); } refreshJobs(); } });
    const watch = el("button", { type: "button", class: "secondary", text: t("live.watch"), "aria-label": t("live.watch_job", { job: j.label || j.id }), onclick: () => follow(j) });
    tbody.append(el("tr", {}, el("td", {}, el("span", { text: j.label || j.id }), el("br"), el("small", { class: "muted", text: j.id })),
      el("td", { class: `state ${j.state}`, text: stateName(j.state) }), el("td", { text: j.position ? `#${j.position}` : "" }), el("td", {}, watch, stop)));
  }
  if (!state.job) {
    const active = jobs.find((j) => j.state === "running") || jobs.find((j) => j.state === "queued");
    if (active) follow(active);
  }
  clearTimeout(state.jobTimer);  // one polling loop, however often this is called
  if (jobs.some((j) => !TERMINAL.includes(j.state))) state.jobTimer = setTimeout(refreshJobs, 2000);
}
