// DOM helpers, formatting and the local settings store: no state, no network.

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
export const SVG = "http://www.w3.org/2000/svg";
export function el(tag, attrs = {}, ...children) {
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
export function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}
// Numbers in the page's language (set on <html lang> by i18n.js), e.g. 5,124 / 5.124 / 5 124.
const locale = () => document.documentElement.lang || "en";
export const fmtInt = (n) => (n === null || n === undefined ? "–" : new Intl.NumberFormat(locale()).format(Number(n)));
export const fmtPct = (x) => (x === null || x === undefined || Number.isNaN(x) ? "–"
  : new Intl.NumberFormat(locale(), { style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1 }).format(x));
export const fmtNum = (x, d = 4) => (x === null || x === undefined ? "–"
  : new Intl.NumberFormat(locale(), { minimumFractionDigits: d, maximumFractionDigits: d, useGrouping: false }).format(Number(x)));
// an accuracy with its 95 % interval: "90.1% [86.8, 92.7]" (the interval only when known)
export const fmtCI = (x, ci) => fmtPct(x) + (Array.isArray(ci) && ci.length === 2 && x !== null && x !== undefined
  ? ` [${fmtNum(100 * ci[0], 1)}, ${fmtNum(100 * ci[1], 1)}]` : "");
export const fmtLr = (x) => (x === null || x === undefined ? "–" : Number(x).toExponential(1));
export const fmtShape = (s) => (s ? s.join(" × ") : "–");
export const thumbUrl = (rel, size = 160) => `/api/datasets/thumb?size=${size}&path=${encodeURIComponent(rel)}`;
export function say(target, text, kind = "error") {
  const node = typeof target === "string" ? $(target) : target;
  if (!node) return;
  node.textContent = text || "";
  node.className = "msg" + (kind === "error" ? "" : " " + kind);
  node.setAttribute("role", kind === "error" ? "alert" : "status");
}
export const store = {
  get: (k, d = null) => { try { const v = localStorage.getItem("tlab." + k); return v === null ? d : JSON.parse(v); } catch { return d; } },
  set: (k, v) => { try { localStorage.setItem("tlab." + k, JSON.stringify(v)); } catch { /* private mode */ } },
};
