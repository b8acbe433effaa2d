// "Check data" panel on the Data page: runs the data doctor as a job, shows each finding with its
// image(s) and writes relabel / remove / keep into the dataset's action list, which the next
// training run on that dataset applies (the files themselves are never changed).
import { api } from "../lib/api.js";
import { $, el, fmtInt, fmtNum, say, thumbUrl } from "../lib/dom.js";
import { stateName, t } from "../lib/i18n.js";

// the server's action names (relabel / remove / keep) in the reader's language
const actionName = (a) => (["relabel", "remove", "keep"].includes(a) ? t(`doctor.action.${a}`) : a);
import { state } from "../lib/state.js";

const KINDS = ["label", "leak", "duplicate", "outlier", "other-class"];
const title = (kind) => t(`doctor.kind.${kind}`);
const SHOWN = 30; // findings per kind on the page (doctor.json has them all)
let current = null; // {dataset, report, actions, job}
let polling = null;

export async function renderDoctorPanel() {
  const panel = $("#doctor-panel");
  if (!panel) return;
  const d = state.dataset;
  panel.hidden = !d;
  if (!d) return;
  panel.replaceChildren(
    el("h3", { id: "h-doctor", text: t("doctor.title") }),
    el("p", { class: "muted small", text: t("doctor.intro") }),
    el("p", {}, el("button", { type: "button", id: "doctor-run", onclick: startCheck }, t("doctor.title")), " ",
      el("span", { id: "doctor-status", class: "muted small" })),
    el("div", { id: "doctor-msg", class: "msg", role: "alert" }),
    el("p", { id: "doctor-actions-line", class: "small" }),
    el("div", { id: "doctor-findings" }),
  );
  await refresh();
}

async function refresh() {
  const d = state.dataset;
  if (!d) return;
  try {
    current = await api(`/api/doctor?dataset=${encodeURIComponent(d.path)}`);
  } catch (err) {
    return say("#doctor-msg", err.message);
  }
  if (current.dataset !== state.dataset.path) return;
  const job = current.job;
  const running = job && !["done", "failed", "stopped", "interrupted", "cancelled"].includes(job.state);
  $("#doctor-run").disabled = Boolean(running);
  $("#doctor-status").textContent = running ? t("doctor.checking", { detail: job.detail || stateName(job.state) }) :
    current.report ? t("doctor.last_check", { seconds: fmtNum(current.report.seconds.total, 1) }) : t("doctor.not_checked");
  if (job && job.state === "failed") say("#doctor-msg", job.error || t("doctor.failed"));
  renderActionsLine();
  renderFindings();
  clearTimeout(polling);
  if (running) polling = setTimeout(refresh, 1500);
}

async function startCheck() {
  say("#doctor-msg", "");
  try {
    await api("/api/doctor", { json: { dataset: state.dataset.path } });
  } catch (err) {
    return say("#doctor-msg", err.message);
  }
  await refresh();
}

function actionOf(path) {
  return (current.actions || []).find((a) => a.path === path);
}

function renderActionsLine() {
  const acts = current.actions || [];
  const count = (k) => acts.filter((a) => a.action === k).length;
  $("#doctor-actions-line").textContent = acts.length
    ? t("doctor.actions_line", { relabel: fmtInt(count("relabel")), remove: fmtInt(count("remove")), keep: fmtInt(count("keep")) })
    : "";
}

async function setAction(path, action, label) {
  try {
    current = { ...current, ...(await api("/api/doctor/actions", { json: { dataset: state.dataset.path, path, action, label } })) };
    say("#doctor-msg", "");
  } catch (err) {
    return say("#doctor-msg", err.message);
  }
  renderActionsLine();
  renderFindings();
}

function controls(finding, path, i) {
  const suggested = (finding.actions || []).find((a) => a.path === path);
  const chosen = actionOf(path);
  const classes = current.report.classes;
  const pick = el("select", { "aria-label": t("doctor.new_label_for", { path }) },
    ...classes.map((c) => el("option", { value: c, text: c, selected: c === (chosen?.label || finding.suggested_label || finding.labels[i]) })));
  const pressed = (a) => (chosen && chosen.action === a ? "true" : "false");
  return el("div", { class: "doctor-controls" },
    el("span", { class: "small", text: `${finding.splits[i]} · ${finding.labels[i]}` + (suggested ? ` · ${t("doctor.suggested", { action: actionName(suggested.action) })}${suggested.label ? " → " + suggested.label : ""}` : "") }),
    el("div", { class: "doctor-buttons" },
      pick,
      el("button", { type: "button", class: "secondary", "aria-pressed": pressed("relabel"), onclick: () => setAction(path, "relabel", pick.value) }, t("doctor.relabel")),
      el("button", { type: "button", class: "secondary", "aria-pressed": pressed("remove"), onclick: () => setAction(path, "remove") }, t("doctor.remove")),
      el("button", { type: "button", class: "secondary", "aria-pressed": pressed("keep"), onclick: () => setAction(path, "keep") }, t("doctor.keep")),
      chosen ? el("button", { type: "button", class: "secondary", onclick: () => setAction(path, "clear") }, t("doctor.undo")) : null),
    chosen ? el("strong", { class: "small", text: `→ ${actionName(chosen.action)}${chosen.label ? " " + chosen.label : ""}` }) : null);
}

function renderFindings() {
  const box = $("#doctor-findings");
  box.replaceChildren();
  const r = current.report;
  if (!r) return;
  const counts = r.counts;
  box.append(el("p", { text: KINDS.map((k) => `${title(k)}: ${fmtInt(counts[k])}`).join(" · ") }));
  if (r.balance && r.balance.suggestion) box.append(el("p", { class: "msg info", text: r.balance.suggestion }));
  for (const kind of KINDS) {
    const found = r.findings.filter((f) => f.kind === kind);
    if (!found.length) continue;
    const list = el("ol", { class: "doctor-list" });
    for (const f of found.slice(0, SHOWN)) {
      const item = el("li", { class: "doctor-finding", dataset: { kind, path: f.paths[0] } },
        el("p", { class: "small", text: t("doctor.score", { detail: f.detail, score: fmtNum(f.score, 3) }) }));
      f.paths.slice(0, 4).forEach((p, i) => {
        const rel = `${state.dataset.path}/${p}`;
        item.append(el("div", { class: "doctor-image" },
          el("img", { src: thumbUrl(rel, 128), alt: p, loading: "lazy", width: 96, height: 96 }),
          el("div", {}, el("code", { class: "small", text: p }), controls(f, p, i))));
      });
      list.append(item);
    }
    box.append(el("h4", { text: `${title(kind)} (${fmtInt(found.length)})` }), list);
    if (found.length > SHOWN) box.append(el("p", { class: "muted small", text: t("doctor.more", { n: fmtInt(found.length - SHOWN) }) }));
  }
}
