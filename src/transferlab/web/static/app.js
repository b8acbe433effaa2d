// transferlab playground: vanilla JS, no build step, no CDN. Talks to /api (see docs/WEB.md).
"use strict";
(() => {
  // ---------------------------------------------------------------------------- helpers
  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  const SVG = "http://www.w3.org/2000/svg";
  const TERMINAL = ["done", "failed", "stopped", "interrupted"];

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }
  function svg(tag, attrs = {}, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  const fmtInt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));
  const fmtPct = (x) => (x === null || x === undefined || Number.isNaN(x) ? "–" : (100 * x).toFixed(1) + "%");
  const fmtNum = (x, d = 4) => (x === null || x === undefined ? "–" : Number(x).toFixed(d));
  const fmtLr = (x) => (x === null || x === undefined ? "–" : Number(x).toExponential(1));
  const fmtShape = (s) => (s ? s.join(" × ") : "–");
  const thumbUrl = (rel, size = 160) => `/api/datasets/thumb?size=${size}&path=${encodeURIComponent(rel)}`;

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }
  function detailText(body) {
    if (!body) return "";
    if (typeof body === "string") return body;
    const d = body.detail;
    if (Array.isArray(d)) return d.map((e) => `${(e.loc || []).slice(1).join(".") || "request"}: ${e.msg}`).join("; ");
    return d || JSON.stringify(body);
  }
  async function api(path, opts = {}) {
    const init = { credentials: "same-origin", ...opts };
    if (opts.json !== undefined) {
      init.method = init.method || "POST";
      init.headers = { "Content-Type": "application/json", ...(opts.headers || {}) };
      init.body = JSON.stringify(opts.json);
      delete init.json;
    }
    const res = await fetch(path, init);
    const type = res.headers.get("content-type") || "";
    const body = type.includes("json") ? await res.json() : await res.text();
    if (!res.ok) throw new ApiError(res.status, detailText(body) || `HTTP ${res.status}`);
    return body;
  }
  function say(target, text, kind = "error") {
    const node = typeof target === "string" ? $(target) : target;
    if (!node) return;
    node.textContent = text || "";
    node.className = "msg" + (kind === "error" ? "" : " " + kind);
    node.setAttribute("role", kind === "error" ? "alert" : "status");
  }
  const store = {
    get: (k, d = null) => { try { const v = localStorage.getItem("tlab." + k); return v === null ? d : JSON.parse(v); } catch { return d; } },
    set: (k, v) => { try { localStorage.setItem("tlab." + k, JSON.stringify(v)); } catch { /* private mode */ } },
  };

  // ---------------------------------------------------------------------------- state
  const state = {
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

  // ---------------------------------------------------------------------------- charts
  // lineChart(node, [{name, points: [[x, y], ...]}], {log, yMin, yMax, xLabel})
  function lineChart(node, series, opts = {}) {
    const W = 360, H = 210, L = 46, R = 10, T = 10, B = 44;
    node.replaceChildren();
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": opts.label || "chart" });
    root.append(svg("title", {}, opts.label || "chart"));
    const pts = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p[1]) && (!opts.log || p[1] > 0));
    if (!pts.length) {
      root.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" }, opts.empty || "no data yet"));
      node.append(root);
      return;
    }
    const tf = opts.log ? (v) => Math.log10(v) : (v) => v;
    let x0 = Math.min(...pts.map((p) => p[0])), x1 = Math.max(...pts.map((p) => p[0]));
    let y0 = opts.yMin ?? Math.min(...pts.map((p) => tf(p[1]))), y1 = opts.yMax ?? Math.max(...pts.map((p) => tf(p[1])));
    if (x1 === x0) { x0 -= 1; x1 += 1; }
    if (y1 === y0) { y0 -= opts.log ? 0.5 : Math.abs(y0) * 0.1 || 1; y1 += opts.log ? 0.5 : Math.abs(y1) * 0.1 || 1; }
    const sx = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
    const sy = (y) => T + (1 - (tf(y) - y0) / (y1 - y0)) * (H - T - B);
    for (let i = 0; i <= 4; i++) {
      const v = y0 + ((y1 - y0) * i) / 4;
      const y = T + (1 - i / 4) * (H - T - B);
      root.append(svg("line", { x1: L, x2: W - R, y1: y, y2: y, class: "grid-line" }));
      const label = opts.log ? Number((10 ** v).toPrecision(2)).toExponential(1) : Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2);
      root.append(svg("text", { x: L - 4, y: y + 3, "text-anchor": "end" }, label));
    }
    const integral = pts.every((p) => Number.isInteger(p[0]));
    const step = integral ? Math.max(1, Math.ceil((x1 - x0) / 6)) : (x1 - x0) / 6;
    for (let v = integral ? Math.ceil(x0) : x0; v <= x1 + 1e-9; v += step) {
      root.append(svg("text", { x: sx(v), y: H - B + 14, "text-anchor": "middle" }, integral ? v : v.toFixed(1)));
    }
    root.append(svg("line", { x1: L, x2: L, y1: T, y2: H - B, class: "axis" }));
    root.append(svg("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, class: "axis" }));
    if (opts.xLabel) root.append(svg("text", { x: (L + W - R) / 2, y: H - B + 27, "text-anchor": "middle" }, opts.xLabel));
    let lx = L;
    series.forEach((s, i) => {
      const cls = "s" + (s.color ?? i) % 10;
      const good = s.points.filter((p) => Number.isFinite(p[1]) && (!opts.log || p[1] > 0));
      if (good.length > 1) {
        root.append(svg("polyline", { class: "line " + cls, points: good.map((p) => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(" ") }));
      }
      if (good.length <= 40) good.forEach((p) => root.append(svg("circle", { class: "dot " + cls, cx: sx(p[0]), cy: sy(p[1]), r: 2.5 })));
      const ly = H - 6;
      root.append(svg("rect", { x: lx, y: ly - 7, width: 10, height: 4, class: cls }));
      const t = svg("text", { x: lx + 13, y: ly - 3, class: "legend-text" }, s.name);
      root.append(t);
      lx += 18 + s.name.length * 5.6;
    });
    node.append(root);
  }

  function bars(node, rows, opts = {}) {
    // rows: [{label, value, max?, text?, frozen?}]
    node.replaceChildren();
    const max = opts.max ?? Math.max(1e-12, ...rows.map((r) => r.value || 0));
    for (const r of rows) {
      const fill = el("div", { class: "bar-fill" + (r.frozen ? " frozen" : "") });
      fill.style.width = `${Math.max(0, Math.min(100, (100 * (r.value || 0)) / max))}%`;
      node.append(el("div", { class: "bar-row" },
        el("span", { class: "label", title: r.label, text: r.label }),
        el("div", { class: "bar-track", role: "presentation" }, fill),
        el("span", { class: "value", text: r.text ?? fmtNum(r.value, 3) })));
    }
  }

  // ---------------------------------------------------------------------------- routing
  const loaders = {};
  function currentPage() {
    const [page, arg] = location.hash.replace(/^#/, "").split("/");
    return { page: loaders[page] ? page : "data", arg: arg ? decodeURIComponent(arg) : null };
  }
  async function route(focus = true) {
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
  function renderChips() {
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

  // ---------------------------------------------------------------------------- data page
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
  async function chooseDataset(path) {
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

  // ---------------------------------------------------------------------------- model page
  async function ensureModels() {
    if (state.models.length) return;
    state.models = await api("/api/models");
    const sel = $("#backbone");
    sel.replaceChildren(...state.models.map((m) => el("option", { value: m.name, text: `${m.name} — ${m.offline ? "weights offline ✓" : "architecture only (no offline weights)"}` })));
    if (!state.models.some((m) => m.name === state.model)) state.model = state.models.find((m) => m.default)?.name || state.models[0].name;
    sel.value = state.model;
  }
  loaders.model = async () => {
    await ensureModels();
    await loadSummary();
  };
  function numClasses() {
    return state.dataset ? state.dataset.classes.length : 4;
  }
  const USES_SELECTION = ["finetune", "two-phase"];
  function bodyNames() {
    return state.summary ? state.summary.groups.slice(0, -1).map((g) => g.name) : [];
  }
  // What trains in the main phase of the chosen strategy: the diagram shows exactly this.
  function effective() {
    const s = state.strategy;
    if (s === "feature-extraction" || s === "gradual") return { train_top: 0 };
    if (s === "full") return { train_top: null };
    if (s === "auto") return { train_top: state.autoResolved ? state.autoResolved.train_top : 0 };
    return state.sel.groups ? { train_groups: state.sel.groups } : { train_top: state.sel.top };
  }
  async function loadSummary(force = false) {
    const body = { model: state.model, num_classes: numClasses(), ...effective() };
    const key = JSON.stringify(body);
    if (!force && state.summary && key === state.summaryKey) return;
    try {
      state.summary = await api("/api/models/summary", { json: body });
      state.summaryKey = key;
      say("#model-msg", "");
      renderSummary();
    } catch (err) {
      say("#model-msg", err.message);
    }
  }
  function renderSummary() {
    const s = state.summary;
    const m = state.models.find((x) => x.name === state.model);
    $("#backbone-note").textContent = s.architecture_only
      ? "No pretrained weights on this machine: the diagram shows the architecture (random weights). Training it needs weights 'random' (from scratch)."
      : `Pretrained weights available offline (${s.weights.source}: ${s.weights.detail}).`;
    $("#backbone-note").className = "small" + (s.architecture_only ? " msg" : "");
    if (m && m.hint && s.architecture_only) $("#backbone-note").textContent += ` Install: ${m.hint}`;
    $("#totals").replaceChildren(
      el("dt", { text: "total" }), el("dd", { text: fmtInt(s.counts.total), id: "total-params" }),
      el("dt", { text: "trainable" }), el("dd", { text: fmtInt(s.counts.trainable), id: "trainable-params" }),
      el("dt", { text: "frozen" }), el("dd", { text: fmtInt(s.counts.frozen), id: "frozen-params" }),
      el("dt", { text: "head in → out" }), el("dd", { text: `${s.head_in_features} → ${s.head_out_features}` }),
      el("dt", { text: "input" }), el("dd", { text: fmtShape(s.input_size) }));
    $("#head-repr").textContent = s.head_repr;
    $("#weights-label").textContent = s.architecture_only ? "Weights: random (architecture only)" : `Weights: ${s.weights.source} — ${s.weights.detail}`;
    const trainableBody = s.groups.slice(0, -1).filter((g) => g.trainable_params > 0).map((g) => g.name);
    $("#k-label").textContent = trainableBody.length ? trainableBody.join(", ") : "none (feature extraction)";
    $("#strategy-line").textContent = `Strategy: ${state.strategy}` + (state.strategy === "gradual" ? " — starts with the head only and unfreezes groups from the top while training" : "");
    const list = $("#groups");
    list.replaceChildren();
    s.groups.forEach((g, i) => {
      const isHead = i === s.groups.length - 1;
      const trainable = g.trainable_params > 0;
      const types = Object.entries(g.layer_types).slice(0, 3).map(([t, n]) => `${n}× ${t}`).join(", ");
      const action = isHead ? "the new head always trains" : trainable ? "press to freeze this group" : "press to unfreeze this group";
      const btn = el("button", {
        type: "button", class: `group-btn ${trainable ? "trainable" : "frozen"}${isHead ? " head" : ""}`,
        "aria-pressed": trainable ? "false" : "true", "aria-disabled": isHead ? "true" : null,
        "aria-label": `${g.name}: ${trainable ? "trainable" : "frozen"}, ${fmtInt(g.params)} parameters, output ${fmtShape(g.output_shape)}; ${action}`,
        dataset: { group: g.name, index: i }, title: action,
        onclick: () => toggleGroup(i),
      },
      el("span", { class: "gname", text: g.name }),
      el("span", { class: "gstate", text: trainable ? "trainable" : "frozen" }),
      el("span", { text: `${fmtInt(g.params)} params` }),
      el("span", { text: `out ${fmtShape(g.output_shape)}` }),
      el("span", { class: "muted", text: types }));
      list.append(el("li", {}, btn));
    });
  }
  function toggleGroup(index) {
    const s = state.summary;
    const names = bodyNames();
    const n = names.length;
    if (index >= n) {
      say("#model-msg", "The new head is always trained: it starts from random weights.", "info");
      return;
    }
    const trainable = new Set(s.groups.slice(0, -1).filter((g) => g.trainable_params > 0).map((g) => g.name));
    const name = names[index];
    const wasTrainable = trainable.has(name);
    if (wasTrainable) trainable.delete(name); else trainable.add(name);
    // A top block is "train_top K"; any other set is trained exactly (train_groups).
    const k = trainable.size;
    const contiguous = names.slice(n - k).every((x) => trainable.has(x));
    state.sel = contiguous ? { top: k, groups: null } : { top: k, groups: names.filter((x) => trainable.has(x)) };
    // The diagram decides what trains: switch to the preset that honours it.
    if (!USES_SELECTION.includes(state.strategy)) state.strategy = k === 0 ? "feature-extraction" : "finetune";
    else if (state.strategy === "finetune" && k === 0) state.strategy = "feature-extraction";
    state.lrEdited = false;
    say("#model-msg", `${wasTrainable ? "Froze" : "Unfroze"} ${name}. Strategy: ${state.strategy}.`, "info");
    loadSummary().then(() => $(`#groups [data-index="${index}"]`)?.focus());
  }
  $("#backbone").addEventListener("change", async (ev) => {
    state.model = ev.target.value;
    store.set("model", state.model);
    state.lrEdited = false;
    await loadSummary();
  });

  // ---------------------------------------------------------------------------- train page
  async function ensureStrategies() {
    if (state.strategies.length) return;
    state.strategies = await api("/api/strategies");
    const box = $("#strategy-list");
    box.replaceChildren();
    for (const s of state.strategies) {
      const id = `strategy-${s.name}`;
      box.append(el("label", { for: id },
        el("input", { type: "radio", name: "strategy", id, value: s.name, onchange: () => chooseStrategy(s.name) }),
        el("span", {}, el("strong", { text: s.name }), el("span", { class: "desc", text: s.description }))));
    }
  }
  function chooseStrategy(name) {
    state.strategy = name;
    const n = bodyNames().length || 2;
    if (name === "finetune" && !state.sel.groups && (state.sel.top === 0 || state.sel.top >= n)) state.sel = { top: Math.min(2, n), groups: null };
    if (name === "two-phase" && !state.sel.groups && state.sel.top === 0) state.sel = { top: n, groups: null };
    state.lrEdited = false;
    syncTrainForm();
    refreshPlan();
  }
  function trainOptions() {
    const num = (id) => { const v = $(id).value.trim(); return v === "" ? null : Number(v); };
    const opts = {
      model: state.model, strategy: state.strategy, epochs: num("#epochs"),
      patience: num("#patience") ?? 5, batch_size: num("#batch-size") ?? 32,
      per_class: num("#per-class"), augment: $("#augment").value,
      bn_policy: $("#bn-policy").value, class_weighting: $("#class-weighting").value,
    };
    if (USES_SELECTION.includes(state.strategy)) {
      if (state.sel.groups) opts.train_groups = state.sel.groups;
      else opts.train_top = state.sel.top;
    }
    if (state.strategy === "two-phase") opts.probe_epochs = num("#probe-epochs");
    if (state.lrEdited) opts.lrs = { ...state.lrs };
    const m = state.models.find((x) => x.name === state.model);
    if (m && !m.offline) opts.weights = "random";
    return opts;
  }
  function syncTrainForm() {
    for (const r of $$("#strategy-list input")) r.checked = r.value === state.strategy;
    const uses = USES_SELECTION.includes(state.strategy);
    const kInput = $("#train-top");
    kInput.disabled = !uses || !!state.sel.groups;
    kInput.value = uses && !state.sel.groups ? state.sel.top : "";
    kInput.placeholder = !uses ? "by strategy" : state.sel.groups ? "custom" : "";
    $("#train-top-note").textContent = uses && state.sel.groups
      ? `Trains exactly ${state.sel.groups.join(", ") || "no body group"} plus the head (chosen on the Model page).`
      : uses ? "The head plus the top K groups train; click groups on the Model page for any other set." : "";
    $("#probe-wrap").hidden = state.strategy !== "two-phase";
  }
  async function refreshPlan() {
    try {
      const opts = trainOptions();
      delete opts.lrs;
      const dataset = state.dataset ? state.dataset.path : ".";
      state.plan = await api("/api/train/plan", { json: { ...opts, dataset, num_classes: numClasses() } });
      state.autoResolved = state.plan.resolved;
      if (!state.lrEdited) {
        const main = state.plan.phases[state.plan.phases.length - 1];
        state.lrs = { ...main.lrs };
      }
      await loadSummary();
      renderLrTable();
      say("#train-msg", "");
    } catch (err) {
      say("#train-msg", err.message);
    }
  }
  function renderLrTable() {
    const tbody = $("#lr-table tbody");
    tbody.replaceChildren();
    const states = {};
    if (state.summary) for (const g of state.summary.groups) states[g.name] = g.trainable_params > 0;
    for (const name of state.plan.groups) {
      const id = `lr-${name}`;
      const input = el("input", { type: "number", id, min: "0", step: "any", value: state.lrs[name], "aria-label": `learning rate of ${name}` });
      input.addEventListener("change", () => {
        const v = Number(input.value);
        if (!(v >= 0)) { say("#train-msg", `The learning rate of ${name} must be a number ≥ 0.`); return; }
        state.lrs[name] = v;
        state.lrEdited = true;
        $("#plan-note").textContent = "Custom learning rates: used for every phase (the two-phase probe keeps its own).";
      });
      const st = states[name] === undefined ? "" : states[name] ? "trainable" : "frozen";
      tbody.append(el("tr", {}, el("th", { scope: "row" }, el("label", { for: id, text: name })),
        el("td", { class: st === "frozen" ? "muted" : "", text: st }), el("td", {}, input)));
    }
    const phases = state.plan.phases.map((p) => `${p.name}: ${p.epochs} epochs${p.cached_features ? " on cached features" : ""}${p.unfreeze_every ? `, one more group every ${p.unfreeze_every}` : ""}, augment ${p.augment}`);
    const auto = state.plan.resolved ? ` Auto chose ${state.plan.resolved.strategy}: ${state.plan.resolved.notes.join(" ")}` : "";
    if (!state.lrEdited) $("#plan-note").textContent = `Plan — ${phases.join("; ")}.${auto}`;
  }
  function emptyCharts() {
    for (const id of ["#chart-loss", "#chart-acc", "#chart-lr"]) lineChart($(id), [], { label: "no run yet" });
  }
  loaders.train = async () => {
    if (!state.live) emptyCharts();
    await ensureModels();
    await ensureStrategies();
    syncTrainForm();
    await refreshPlan();
    await refreshJobs();
    if (!state.dataset) say("#train-msg", "Choose a dataset on the Data page first.", "info");
  };
  $("#train-top").addEventListener("change", (ev) => {
    const n = bodyNames().length || 99;
    const v = Math.min(n, Math.max(0, parseInt(ev.target.value, 10) || 0));
    state.sel = { top: v, groups: null };
    state.lrEdited = false;
    refreshPlan();
  });
  $("#epochs").addEventListener("change", () => refreshPlan());
  $("#probe-epochs").addEventListener("change", () => refreshPlan());
  $("#augment").addEventListener("change", () => refreshPlan());
  $("#lr-reset").addEventListener("click", () => { state.lrEdited = false; refreshPlan(); });
  $("#train-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!state.dataset) return say("#train-msg", "Choose a dataset on the Data page first.");
    try {
      const job = await api("/api/jobs/train", { json: { dataset: state.dataset.path, ...trainOptions() } });
      say("#train-msg", job.state === "queued" ? `Queued (position ${job.position}).` : "Started.", "ok");
      follow(job);
      refreshJobs();
    } catch (err) {
      say("#train-msg", err.message);
    }
  });
  $("#stop-btn").addEventListener("click", async () => {
    if (!state.job) return;
    try {
      state.job = await api(`/api/jobs/${state.job.id}/stop`, { method: "POST" });
      renderLive();
    } catch (err) {
      say("#train-msg", err.message);
    }
  });

  // live progress from the job's server-sent events
  function newLive() {
    return { rows: [], epoch: 0, epochs: 0, phase: "", batch: 0, batches: 0, es: null, grad: [], fitEnd: "" };
  }
  function follow(job) {
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
  function renderLive() {
    const job = state.job, l = state.live;
    renderChips();
    if (!job || !l) return;
    const running = !TERMINAL.includes(job.state);
    $("#stop-btn").disabled = !running || job.stop_requested;
    $("#start-btn").disabled = false;
    let text = `${job.label || job.id}: ${job.state}`;
    if (job.state === "queued") text += ` — waiting, position ${job.position} in the queue`;
    else if (job.state === "running") text += ` — ${job.detail}`;
    if (job.error && job.state !== "done") text += ` — ${job.error}`;
    if (job.state === "done" && job.result && job.result.accuracy !== undefined) text += ` — validation accuracy ${fmtPct(job.result.accuracy)}`;
    if (l.sweep) text += ` — ${l.sweep.done} / ${l.sweep.total} trials done (last: ${l.sweep.row.key}, ${fmtPct(l.sweep.row.accuracy)})`;
    else if (l.log && job.kind === "sweep") text += ` — ${l.log}`;
    $("#live-state").textContent = text;
    $("#epoch-label").textContent = l.epochs ? `Epoch ${l.epoch} / ${l.epochs}` : "Epoch –";
    $("#phase-label").textContent = l.phase ? `phase: ${l.phase}` : "";
    const prog = $("#batch-progress");
    prog.max = Math.max(1, l.batches);
    prog.value = l.batch;
    const es = l.es;
    $("#es-label").textContent = es ? `Early stopping: ${es.wait} / ${es.patience} epochs without improvement · best val loss ${fmtNum(es.best)} at epoch ${es.best_epoch}` + (l.fitEnd ? ` · ${l.fitEnd}` : "") : "";
    const xs = l.rows.map((_, i) => i + 1);
    lineChart($("#chart-loss"), [
      { name: "train", points: l.rows.map((r, i) => [xs[i], r.train_loss]) },
      { name: "val", points: l.rows.map((r, i) => [xs[i], r.val_loss]) }], { label: "loss per epoch", xLabel: "epoch (all phases)" });
    lineChart($("#chart-acc"), [
      { name: "train", points: l.rows.map((r, i) => [xs[i], r.train_acc]) },
      { name: "val", points: l.rows.map((r, i) => [xs[i], r.val_acc]) }], { label: "accuracy per epoch", xLabel: "epoch (all phases)", yMin: 0, yMax: 1 });
    const groups = l.rows.length ? Object.keys(l.rows[l.rows.length - 1].lrs) : [];
    lineChart($("#chart-lr"), groups.map((g, gi) => ({ name: g, color: gi, points: l.rows.map((r, i) => [xs[i], r.lrs[g]]) })),
      { label: "learning rate per group", xLabel: "epoch", log: true });
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
  async function refreshJobs() {
    let jobs;
    try { jobs = await api("/api/jobs"); } catch { return; }
    const tbody = $("#job-table tbody");
    tbody.replaceChildren();
    if (!jobs.length) tbody.append(el("tr", {}, el("td", { colspan: 4, class: "muted", text: "No jobs since the server started." })));
    for (const j of jobs) {
      const stop = TERMINAL.includes(j.state) ? "" : el("button", { type: "button", class: "secondary", text: j.state === "queued" ? "Cancel" : "Stop",
        "aria-label": `${j.state === "queued" ? "Cancel" : "Stop"} ${j.label || j.id}`,
        onclick: async () => { try { await api(`/api/jobs/${j.id}/stop`, { method: "POST" }); } catch (err) { say("#train-msg", err.message); } refreshJobs(); } });
      const watch = el("button", { type: "button", class: "secondary", text: "Watch", "aria-label": `Watch ${j.label || j.id}`, onclick: () => follow(j) });
      tbody.append(el("tr", {}, el("td", {}, el("span", { text: j.label || j.id }), el("br"), el("small", { class: "muted", text: j.id })),
        el("td", { class: `state ${j.state}`, text: j.state }), el("td", { text: j.position ? `#${j.position}` : "" }), el("td", {}, watch, stop)));
    }
    if (!state.job) {
      const active = jobs.find((j) => j.state === "running") || jobs.find((j) => j.state === "queued");
      if (active) follow(active);
    }
    clearTimeout(state.jobTimer);  // one polling loop, however often this is called
    if (jobs.some((j) => !TERMINAL.includes(j.state))) state.jobTimer = setTimeout(refreshJobs, 2000);
  }

  // ---------------------------------------------------------------------------- runs helpers
  async function loadRuns(force = false) {
    if (force || !state.runs.length) state.runs = await api("/api/runs");
    return state.runs;
  }
  function runLabel(r) {
    const acc = r.result && r.result.accuracy !== undefined && r.result.accuracy !== null ? ` — ${fmtPct(r.result.accuracy)}` : "";
    return `${r.id} (${r.state}${acc})`;
  }
  function fillRunSelect(sel, runs, chosen, extra = []) {
    sel.replaceChildren(...extra, ...runs.map((r) => el("option", { value: r.id, text: runLabel(r) })));
    if (chosen && [...sel.options].some((o) => o.value === chosen)) sel.value = chosen;
  }

  // ---------------------------------------------------------------------------- results page
  loaders.results = async (arg) => {
    const runs = await loadRuns(true);
    const done = runs.filter((r) => r.state === "done");
    const chosen = arg || state.resultsRun || (done[0] && done[0].id) || (runs[0] && runs[0].id);
    fillRunSelect($("#results-run"), runs, chosen);
    if (!runs.length) {
      $("#results-body").hidden = true;
      return say("#results-msg", "No runs yet: start one on the Train page.", "info");
    }
    await showRun($("#results-run").value);
  };
  $("#results-run").addEventListener("change", (ev) => { location.hash = `#results/${encodeURIComponent(ev.target.value)}`; });
  async function showRun(id) {
    state.resultsRun = id;
    let doc;
    try { doc = await api(`/api/runs/${encodeURIComponent(id)}`); } catch (err) { return say("#results-msg", err.message); }
    say("#results-msg", doc.evaluation ? "" : `Run ${id} is ${doc.run.state}: no evaluation yet.`, "info");
    $("#results-body").hidden = false;
    const ev = doc.evaluation || {}, cfg = doc.config || {}, res = doc.run.result || {};
    $("#results-summary").replaceChildren(
      el("dt", { text: "validation accuracy" }), el("dd", { id: "res-accuracy", text: fmtPct(ev.accuracy) }),
      el("dt", { text: "balanced accuracy" }), el("dd", { text: fmtPct(ev.balanced_accuracy) }),
      el("dt", { text: "loss" }), el("dd", { text: fmtNum(ev.loss) }),
      el("dt", { text: "images" }), el("dd", { text: fmtInt(ev.num_images) }),
      el("dt", { text: "strategy" }), el("dd", { text: cfg.strategy || "–" }),
      el("dt", { text: "backbone" }), el("dd", { text: cfg.model || "–" }),
      el("dt", { text: "epochs" }), el("dd", { text: (doc.metrics || []).length }),
      el("dt", { text: "wall time" }), el("dd", { text: res.wall_seconds ? `${res.wall_seconds.toFixed(1)} s` : "–" }),
      el("dt", { text: "state" }), el("dd", { class: `state ${doc.run.state}`, text: doc.run.state }));
    const dl = $("#downloads");
    dl.replaceChildren();
    const files = { "best.safetensors": "checkpoint weights (safetensors)", "best.json": "checkpoint sidecar (architecture, classes, preprocessing)",
      "report.md": "report", "metrics.csv": "metrics per epoch (CSV)", "evaluation.json": "evaluation (JSON)", "config.json": "resolved config" };
    for (const [name, label] of Object.entries(files)) {
      if (doc.files.includes(name)) dl.append(el("li", {}, el("a", { href: `/api/runs/${encodeURIComponent(id)}/files/${name}?download=true`, download: `${id}-${name}`, text: `${label} — ${name}` })));
    }
    const box = $("#export-box");
    box.replaceChildren();
    if (doc.exports.length) {
      box.append(el("h4", { text: "Export the model" }));
      for (const fmt of doc.exports) box.append(el("button", { type: "button", text: `Export ${fmt}`, onclick: () => startExport(id, fmt) }));
      if (doc.exported.length) {
        box.append(el("ul", { class: "link-list" }, ...doc.exported.map((f) => el("li", {}, el("a", { href: `/api/runs/${encodeURIComponent(id)}/exported/${encodeURIComponent(f)}`, download: `${id}-${f}`, text: `exported: ${f}` })))));
      }
    } else {
      box.append(el("p", { class: "small muted", text: "Exported models (ONNX, TorchScript) are not available in this installation yet: download the checkpoint above." }));
    }
    const rows = doc.metrics || [];
    lineChart($("#res-chart-loss"), [
      { name: "train", points: rows.map((r, i) => [i + 1, r.train_loss]) },
      { name: "val", points: rows.map((r, i) => [i + 1, r.val_loss]) }], { label: "loss per epoch", xLabel: "epoch" });
    lineChart($("#res-chart-acc"), [
      { name: "train", points: rows.map((r, i) => [i + 1, r.train_acc]) },
      { name: "val", points: rows.map((r, i) => [i + 1, r.val_acc]) }], { label: "accuracy per epoch", xLabel: "epoch", yMin: 0, yMax: 1 });
    renderConfusion(ev);
    bars($("#per-class-acc"), Object.entries(ev.per_class_accuracy || {}).map(([c, a]) => ({ label: c, value: a ?? 0, text: fmtPct(a) })), { max: 1 });
    const worst = $("#worst");
    worst.replaceChildren();
    const errors = ev.worst_errors || [];
    if (!errors.length) worst.append(el("p", { class: "muted", text: ev.accuracy === undefined ? "No evaluation yet." : "No errors on the validation set." }));
    for (const e of errors) {
      worst.append(el("figure", {},
        e.image ? el("img", { src: thumbUrl(e.image, 200), alt: `${e.name}: true ${e.true}, predicted ${e.pred}` }) : el("div", { class: "muted", text: "(image outside the data root)" }),
        el("figcaption", {}, el("strong", { text: `true ${e.true}` }), el("br"), `predicted ${e.pred} (${fmtPct(e.confidence)})`)));
    }
  }
  function renderConfusion(ev) {
    const table = $("#confusion");
    table.replaceChildren();
    if (!ev.confusion) return;
    const max = Math.max(1, ...ev.confusion.flat());
    table.append(el("caption", { class: "small muted", text: `${ev.classes.length} classes` }));
    table.append(el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "true \\ predicted" }), ...ev.classes.map((c) => el("th", { scope: "col", text: c })))));
    const tbody = el("tbody");
    ev.confusion.forEach((row, i) => {
      tbody.append(el("tr", {}, el("th", { scope: "row", text: ev.classes[i] }), ...row.map((v, j) => {
        const td = el("td", { class: i === j ? "diag" : "", text: v });
        const a = v / max;
        td.style.background = i === j ? `rgba(46,133,64,${0.12 + 0.75 * a})` : v ? `rgba(179,38,30,${0.12 + 0.75 * a})` : "#f7f8fa";
        if (a > 0.55) td.style.color = "#fff";
        return td;
      })));
    });
    table.append(tbody);
  }
  async function startExport(id, fmt) {
    try {
      const job = await api(`/api/runs/${encodeURIComponent(id)}/export`, { json: { format: fmt } });
      say("#results-msg", `Export queued as job ${job.id}; the files appear here when it is done.`, "info");
      const wait = async () => {
        const j = await api(`/api/jobs/${job.id}`);
        if (!TERMINAL.includes(j.state)) return setTimeout(wait, 1500);
        if (j.state === "done") { say("#results-msg", `Exported ${fmt}.`, "ok"); showRun(id); } else say("#results-msg", `Export ${j.state}: ${j.error || ""}`);
      };
      setTimeout(wait, 1500);
    } catch (err) { say("#results-msg", err.message); }
  }

  // ---------------------------------------------------------------------------- experiments page
  loaders.experiments = async () => {
    await ensureStrategies();
    const doc = await api("/api/experiments");
    const box = $("#sweep-kinds");
    box.replaceChildren();
    const help = {
      "data-size": ["Data size", "How accuracy grows with the number of training images per class; optionally against training from scratch.", "5, 10, 20"],
      "freeze-depth": ["Freeze depth", "Fine-tune the head plus the top K groups, for several K (two-phase or finetune from the Train page).", "0, 1, 2"],
      "strategy": ["Strategy comparison", "The presets side by side on the same data, splits and seeds.", "feature-extraction, two-phase"],
    };
    for (const k of doc.kinds) {
      const [title, text, example] = help[k.kind] || [k.kind, "", ""];
      const card = el("div", { class: "card", dataset: { kind: k.kind } }, el("h3", { text: title }), el("p", { class: "small", text }));
      if (k.available) {
        const id = `sweep-values-${k.kind}`;
        const input = el("input", { type: "text", id, value: example });
        const seeds = el("input", { type: "number", id: `${id}-seeds`, min: "1", max: "10", value: "1" });
        card.append(el("label", { for: id, text: `Values (${k.values_meaning})` }), input,
          el("label", { for: `${id}-seeds`, text: "Seeds per setting (more: honest intervals, slower)" }), seeds);
        let scratch = null;
        if (k.kind === "data-size") {
          scratch = el("input", { type: "checkbox", id: `${id}-scratch` });
          card.append(el("label", { for: `${id}-scratch` }, scratch, " also train from scratch (slow on a CPU)"));
        }
        card.append(el("button", { type: "button", class: "primary", text: "Run sweep",
          onclick: () => startSweep(k.kind, input.value, Number(seeds.value) || 1, scratch ? scratch.checked : false) }));
      } else {
        card.append(el("p", { class: "msg info sweep-unavailable", text: k.reason || "not available yet" }));
      }
      box.append(card);
    }
    const tbody = $("#sweep-table tbody");
    tbody.replaceChildren();
    if (!doc.sweeps.length) tbody.append(el("tr", {}, el("td", { colspan: 4, class: "muted", text: "No sweeps yet." })));
    for (const sw of doc.sweeps) {
      const summary = sw.result && sw.result.trials ? `${sw.result.trials} trials` : "";
      tbody.append(el("tr", {}, el("td", {}, el("button", { type: "button", class: "secondary", text: sw.id, "aria-label": `show sweep ${sw.id}`, onclick: () => showSweep(sw.id) })),
        el("td", { text: sw.kind }), el("td", { class: `state ${sw.state}`, text: sw.state }), el("td", { text: sw.error || summary })));
    }
  };
  async function showSweep(id) {
    const box = $("#sweep-detail");
    let sw;
    try { sw = await api(`/api/experiments/${encodeURIComponent(id)}`); } catch (err) { return say("#exp-msg", err.message); }
    box.replaceChildren(el("h4", { text: `${sw.kind} sweep ${sw.id} — ${sw.state}` }));
    const res = sw.result || {};
    const table = res.table || [];
    if (!table.length) { box.append(el("p", { class: "muted", text: sw.error || "No results yet: trials appear here when the sweep finishes." })); return; }
    const metric = res.metric || "accuracy";
    const cols = ["arm", "size", "depth", "group", "strategy", "n"].filter((c) => table.some((r) => r[c] !== null && r[c] !== undefined));
    const head = [...cols, `${metric} (95% interval)`, "s / epoch", "trainable params"];
    box.append(el("div", { class: "table-wrap" }, el("table", { class: "data-table compact" },
      el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, ...table.map((r) => el("tr", {}, ...cols.map((c) => el("td", { text: r[c] ?? "" })),
        el("td", { class: "num", text: `${fmtPct(r[`${metric}_mean`])} [${fmtPct(r[`${metric}_ci_low`])}, ${fmtPct(r[`${metric}_ci_high`])}]` }),
        el("td", { class: "num", text: fmtNum(r.seconds_per_epoch_mean, 2) }),
        el("td", { class: "num", text: fmtInt(r.trainable_params_mean && Math.round(r.trainable_params_mean)) })))))));
    const xKey = sw.kind === "data-size" ? "size" : sw.kind === "freeze-depth" ? "depth" : null;
    const fig = el("div", { class: "chart" });
    box.append(el("figure", {}, fig, el("figcaption", { text: `${metric} by ${xKey || "strategy"} (mean over seeds)` })));
    if (xKey) {
      const arms = [...new Set(table.map((r) => r.arm))];
      lineChart(fig, arms.map((a, i) => ({ name: a, color: i, points: table.filter((r) => r.arm === a).map((r) => [r[xKey], r[`${metric}_mean`]]) })),
        { label: `${metric} by ${xKey}`, xLabel: xKey, yMin: 0, yMax: 1 });
    } else {
      bars(fig, table.map((r) => ({ label: r.arm, value: r[`${metric}_mean`] || 0, text: fmtPct(r[`${metric}_mean`]) })), { max: 1 });
    }
    for (const c of res.comparisons || []) box.append(el("p", { class: "small", text: `${c.what}: ${c.verdict || c.summary || JSON.stringify(c)}` }));
    for (const n of res.notes || []) box.append(el("p", { class: "small muted", text: `note: ${n}` }));
    if (sw.files.includes("plot")) box.append(el("img", { src: `/api/experiments/${encodeURIComponent(id)}/files/plot`, alt: `${sw.kind} sweep plot`, class: "sweep-plot" }));
    const links = el("ul", { class: "link-list" });
    for (const f of sw.files.filter((x) => x !== "plot")) links.append(el("li", {}, el("a", { href: `/api/experiments/${encodeURIComponent(id)}/files/${f}`, text: f })));
    box.append(links);
  }
  async function startSweep(kind, text, seeds, scratch) {
    if (!state.dataset) return say("#exp-msg", "Choose a dataset on the Data page first.");
    const values = text.split(",").map((v) => v.trim()).filter(Boolean).map((v) => (/^\d+$/.test(v) ? Number(v) : v));
    try {
      const opts = trainOptions();
      delete opts.lrs;
      delete opts.train_groups;
      const job = await api("/api/experiments", { json: { kind, values: values.length ? values : null, seeds, scratch, train: { dataset: state.dataset.path, ...opts } } });
      say("#exp-msg", `Sweep queued as job ${job.id}: follow it in the Train page's job queue.`, "ok");
      refreshJobs();
      loaders.experiments();
    } catch (err) { say("#exp-msg", err.message); }
  }

  // ---------------------------------------------------------------------------- image pickers
  function renderPicks(container, key) {
    container.replaceChildren();
    if (!state.dataset) { container.append(el("p", { class: "small muted", text: "Choose a dataset to pick its images, or upload one." })); return; }
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
  function imageForm(fileInput, key) {
    const body = new FormData();
    const file = fileInput.files[0];
    if (file) body.append("file", file);
    else if (state[key]) body.append("path", state[key]);
    else return null;
    return body;
  }

  // ---------------------------------------------------------------------------- inspector page
  loaders.inspector = async () => {
    const runs = (await loadRuns(true)).filter((r) => r.state === "done");
    const sel = $("#inspect-source");
    const prev = sel.value;
    fillRunSelect(sel, runs, prev, [el("option", { value: "", text: `pretrained ${state.model} (ImageNet features)` }),
      ...(state.job ? [el("option", { value: "live", text: `live job ${state.job.id} (gradient norms)` })] : [])]);
    renderPicks($("#inspect-picks"), "inspectPick");
    await showGrad();
  };
  $("#inspect-source").addEventListener("change", showGrad);
  async function showGrad() {
    const v = $("#inspect-source").value;
    if (v === "live") return renderGrad(state.live ? state.live.grad : []);
    if (!v) return renderGrad([], "Choose a run (or a live job) to see its gradient norms.");
    try { renderGrad(await api(`/api/runs/${encodeURIComponent(v)}/grad-norms`)); } catch (err) { say("#inspect-msg", err.message); }
  }
  function renderGrad(events, note) {
    const last = events[events.length - 1];
    const barBox = $("#grad-bars");
    if (!last) {
      barBox.replaceChildren(el("p", { class: "small muted", text: note || "No gradient norms recorded." }));
      lineChart($("#chart-grad"), [], { label: "gradient norms" });
      return;
    }
    const names = Object.keys(last.norms);
    bars(barBox, names.map((n) => ({ label: n, value: last.norms[n], frozen: last.norms[n] === 0, text: last.norms[n] === 0 ? "frozen" : fmtNum(last.norms[n], 3) })));
    const series = names.filter((n) => events.some((e) => e.norms[n] > 0)).map((n, i) => ({ name: n, color: i, points: events.map((e, j) => [j + 1, e.norms[n]]) }));
    lineChart($("#chart-grad"), series, { label: "gradient norm per group", xLabel: "logged step", log: true, empty: "all groups frozen" });
  }
  $("#inspect-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = imageForm($("#inspect-file"), "inspectPick");
    if (!body) return say("#inspect-msg", "Pick an image or upload one.");
    const src = $("#inspect-source").value;
    if (src && src !== "live") body.append("run_id", src);
    else body.append("model", state.model);
    say("#inspect-msg", "Running the image through the network…", "info");
    try {
      const doc = await api("/api/inspect", { method: "POST", body });
      say("#inspect-msg", "");
      $("#inspect-source-label").textContent = `Activations of ${doc.source}, one card per layer group (input → output).`;
      const grid = $("#activations");
      grid.replaceChildren();
      for (const g of doc.groups) {
        const stats = [["shape", fmtShape(g.shape)], ["zeros", fmtPct(g.zero_fraction)], ["mean", fmtNum(g.mean, 3)], ["std", fmtNum(g.std, 3)], ["min", fmtNum(g.min, 3)], ["max", fmtNum(g.max, 3)]];
        grid.append(el("article", { class: "card act-card", "aria-label": `activations of ${g.name}` }, el("h4", { text: g.name }),
          el("dl", {}, ...stats.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })])),
          g.grid_png ? el("img", { src: g.grid_png, alt: `first ${g.feature_maps} feature maps of ${g.name}` }) : el("p", { class: "small muted", text: "no spatial maps (a vector)" })));
      }
    } catch (err) { say("#inspect-msg", err.message); }
  });

  // ---------------------------------------------------------------------------- predict page
  loaders.predict = async () => {
    const runs = (await loadRuns(true)).filter((r) => r.state === "done");
    fillRunSelect($("#predict-run"), runs, state.resultsRun);
    if (!runs.length) say("#predict-msg", "No finished run yet: train one first.", "info");
    else say("#predict-msg", "");
    renderPicks($("#predict-picks"), "predictPick");
  };
  $("#predict-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const run = $("#predict-run").value;
    if (!run) return say("#predict-msg", "No finished run to predict with.");
    const body = imageForm($("#predict-file"), "predictPick");
    if (!body) return say("#predict-msg", "Pick an image or upload one.");
    body.append("topk", $("#topk").value || "3");
    const file = $("#predict-file").files[0];
    const preview = $("#predict-preview");
    preview.src = file ? URL.createObjectURL(file) : thumbUrl(state.predictPick, 256);
    preview.alt = file ? `uploaded image ${file.name}` : `image ${state.predictPick}`;
    preview.hidden = false;
    say("#predict-msg", "Predicting…", "info");
    try {
      const doc = await api(`/api/runs/${encodeURIComponent(run)}/predict`, { method: "POST", body });
      say("#predict-msg", "");
      bars($("#predict-bars"), doc.top.map((t) => ({ label: t.class, value: t.prob, text: fmtPct(t.prob) })), { max: 1 });
    } catch (err) { say("#predict-msg", err.message); }
  });

  // ---------------------------------------------------------------------------- learn page
  const quizScore = {};
  loaders.learn = async () => {
    const box = $("#quiz");
    if (box.children.length) return;
    const questions = await api("/api/learn/quiz");
    questions.forEach((q, qi) => {
      const id = `q-${q.id}`;
      const verdict = el("p", { class: "verdict", "aria-live": "polite" });
      let getAnswer;
      const row = el("div", { class: "answer-row" });
      if (q.kind === "choice") {
        const fs = el("fieldset", {}, el("legend", { class: "small", text: "Choose one" }));
        q.options.forEach((o, i) => fs.append(el("label", { for: `${id}-${i}` }, el("input", { type: "radio", name: id, id: `${id}-${i}`, value: o }), o)));
        row.append(fs);
        getAnswer = () => ($(`input[name="${id}"]:checked`) || {}).value;
      } else {
        const input = el("input", { type: "text", id, inputmode: q.kind === "number" ? "decimal" : "text", autocomplete: "off" });
        row.append(el("label", { for: id, class: "sr-label", text: "Your answer" }), input);
        getAnswer = () => input.value;
      }
      const btn = el("button", { type: "button", text: "Check", "aria-describedby": `${id}-text`, onclick: async () => {
        const answer = getAnswer();
        if (answer === undefined || answer === "") { verdict.textContent = "Give an answer first."; verdict.className = "verdict"; return; }
        try {
          const r = await api("/api/learn/check", { json: { id: q.id, answer: String(answer) } });
          quizScore[q.id] = r.correct;
          verdict.className = "verdict " + (r.correct ? "correct" : "wrong");
          verdict.textContent = (r.correct ? "Correct. " : `Not quite: the answer is ${r.expected}. `) + r.explanation;
          const right = Object.values(quizScore).filter(Boolean).length;
          $("#quiz-score").textContent = `${right} of ${questions.length} correct`;
        } catch (err) { verdict.textContent = err.message; }
      } });
      row.append(btn);
      box.append(el("div", { class: "question", dataset: { qid: q.id } }, el("p", { id: `${id}-text` }, el("strong", { text: `Q${qi + 1}. ` }), q.question), row, verdict));
    });
  };

  // ---------------------------------------------------------------------------- runs page
  loaders.runs = async () => {
    const runs = await loadRuns(true);
    const tbody = $("#runs-table tbody");
    tbody.replaceChildren();
    if (!runs.length) tbody.append(el("tr", {}, el("td", { colspan: 9, class: "muted", text: "No runs yet." })));
    for (const r of runs) {
      const box = el("input", { type: "checkbox", value: r.id, "aria-label": `compare ${r.id}`, onchange: updateCompare });
      tbody.append(el("tr", {}, el("td", {}, box), el("td", { text: r.id }), el("td", { class: `state ${r.state}`, text: r.state }),
        el("td", { text: r.dataset || "" }), el("td", { text: r.model || "" }), el("td", { text: r.strategy || "" }),
        el("td", { class: "num", text: fmtPct(r.result && r.result.accuracy) }), el("td", { class: "num", text: (r.result && r.result.epochs) ?? "–" }),
        el("td", {}, el("a", { href: `#results/${encodeURIComponent(r.id)}`, text: "results", "aria-label": `results of ${r.id}` }))));
    }
    updateCompare();
  };
  function updateCompare() {
    const ticked = $$("#runs-table input:checked");
    $("#compare-btn").disabled = ticked.length !== 2;
  }
  $("#compare-btn").addEventListener("click", async () => {
    const [a, b] = $$("#runs-table input:checked").map((x) => x.value);
    try {
      const doc = await api(`/api/runs/compare?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`);
      $("#compare-out").hidden = false;
      const m = $("#compare-metrics");
      const fmtMetric = (k, v) => (v === null || v === undefined ? "–" : k.includes("acc") ? fmtPct(v) : Number.isInteger(v) ? fmtInt(v) : fmtNum(v, 3));
      m.replaceChildren(el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "metric" }), el("th", { scope: "col", text: `A: ${a}` }), el("th", { scope: "col", text: `B: ${b}` }), el("th", { scope: "col", text: "B − A" }))),
        el("tbody", {}, ...Object.entries(doc.metrics).map(([k, v]) => el("tr", {}, el("th", { scope: "row", text: k }), el("td", { class: "num", text: fmtMetric(k, v.a) }), el("td", { class: "num", text: fmtMetric(k, v.b) }), el("td", { class: "num", text: v.delta === null ? "" : fmtMetric(k, v.delta) })))));
      const c = $("#compare-config");
      const diffs = Object.entries(doc.config_diff).filter(([k]) => !["name", "out"].includes(k));
      c.replaceChildren(el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "setting" }), el("th", { scope: "col", text: "A" }), el("th", { scope: "col", text: "B" }))),
        el("tbody", {}, ...(diffs.length ? diffs.map(([k, [va, vb]]) => el("tr", {}, el("th", { scope: "row", text: k }), el("td", { text: JSON.stringify(va) }), el("td", { text: JSON.stringify(vb) })))
          : [el("tr", {}, el("td", { colspan: 3, class: "muted", text: "Same settings." }))])));
      lineChart($("#compare-chart"), [
        { name: "A", points: doc.history_a.map((r, i) => [i + 1, r.val_acc]) },
        { name: "B", points: doc.history_b.map((r, i) => [i + 1, r.val_acc]) }], { label: "validation accuracy per epoch", xLabel: "epoch", yMin: 0, yMax: 1 });
      const pc = $("#compare-classes");
      pc.replaceChildren(el("caption", { text: "Accuracy per class" }), el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "class" }), el("th", { scope: "col", text: "A" }), el("th", { scope: "col", text: "B" }))),
        el("tbody", {}, ...Object.entries(doc.per_class_accuracy).map(([k, v]) => el("tr", {}, el("th", { scope: "row", text: k }), el("td", { class: "num", text: fmtPct(v.a) }), el("td", { class: "num", text: fmtPct(v.b) })))));
      say("#runs-msg", "");
      $("#compare-out").scrollIntoView({ block: "start" });
    } catch (err) { say("#runs-msg", err.message); }
  });

  // ---------------------------------------------------------------------------- start
  window.addEventListener("hashchange", () => route(true));
  async function start() {
    const saved = store.get("dataset");
    if (saved) {
      try { state.dataset = await api(`/api/datasets/info?path=${encodeURIComponent(saved)}`); } catch { store.set("dataset", null); }
    }
    renderChips();
    await route(false);
    refreshJobs();
  }
  start();
})();
