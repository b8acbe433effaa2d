// Small SVG charts (no library, no CDN): line charts and horizontal bars.
import { el, fmtNum, svg } from "./dom.js";
import { t } from "./i18n.js";

// lineChart(node, [{name, points: [[x, y], ...]}], {log, yMin, yMax, xLabel})
export function lineChart(node, series, opts = {}) {
  const W = 360, H = 210, L = 46, R = 10, T = 10, B = 44;
  node.replaceChildren();
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": opts.label || "chart" });
  root.append(svg("title", {}, opts.label || "chart"));
  const pts = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p[1]) && (!opts.log || p[1] > 0));
  if (!pts.length) {
    root.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" }, opts.empty || t("ui.chart_no_data")));
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

export function bars(node, rows, opts = {}) {
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
