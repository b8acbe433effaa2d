// Messages and number/date formats in the reader's language: English, Spanish, Italian, Korean.
// Every user-facing sentence lives in /static/i18n/<lang>.json (one catalog per language);
// HTML marks its text with data-i18n="key" (and data-i18n-attr="attr=key;attr=key"), code calls t().
import { store } from "./dom.js";

export const LANGS = ["en", "es", "it", "ko"];
let lang = "en";
let messages = {};
let fallback = {};

async function load(code) {
  const res = await fetch(`/static/i18n/${code}.json`, { credentials: "same-origin" });
  if (!res.ok) throw new Error(`catalog ${code}: HTTP ${res.status}`);
  return res.json();
}

export function browserLang() {
  for (const l of navigator.languages || [navigator.language || "en"]) {
    const code = String(l).slice(0, 2).toLowerCase();
    if (LANGS.includes(code)) return code;
  }
  return "en";
}

export async function initI18n() {
  const saved = store.get("lang");
  lang = LANGS.includes(saved) ? saved : browserLang();
  fallback = await load("en");
  messages = lang === "en" ? fallback : await load(lang).catch(() => fallback);
  document.documentElement.lang = lang;
  applyI18n(document);
  const picker = document.getElementById("lang-picker");
  if (picker) {
    picker.value = lang;
    picker.addEventListener("change", () => setLang(picker.value));
  }
  document.documentElement.dataset.i18nReady = lang; // the page speaks `lang` from here on
}

export function setLang(code) {
  if (!LANGS.includes(code)) return;
  store.set("lang", code);
  location.reload(); // every page renders again, in the new language
}

export const currentLang = () => lang;

/** A run's or job's state (queued, running, done, ...) in the reader's language; as sent if unknown. */
export function stateName(s) {
  const key = `state.${s}`;
  const text = t(key);
  return text === key ? String(s ?? "") : text;
}

/** The message for `key`, with {name} placeholders filled from `params`. */
export function t(key, params = {}) {
  const text = messages[key] ?? fallback[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (m, k) => (params[k] === undefined ? m : String(params[k])));
}

export function applyI18n(root = document) {
  for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  // Sentences with inline markup (<code>, <em>, links): the catalogs are the package's own files.
  for (const node of root.querySelectorAll("[data-i18n-html]")) node.innerHTML = t(node.dataset.i18nHtml);
  for (const node of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of node.dataset.i18nAttr.split(";")) {
      const [attr, key] = pair.split("=");
      if (attr && key) node.setAttribute(attr.trim(), t(key.trim()));
    }
  }
}

// Numbers and dates per locale (Intl).
export const fmtLocale = {
  int: (n) => (n === null || n === undefined ? "–" : new Intl.NumberFormat(lang).format(n)),
  num: (x, digits = 4) => (x === null || x === undefined ? "–"
    : new Intl.NumberFormat(lang, { maximumSignificantDigits: digits }).format(x)),
  fixed: (x, digits = 1) => (x === null || x === undefined || Number.isNaN(x) ? "–"
    : new Intl.NumberFormat(lang, { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(x)),
  pct: (x, digits = 1) => (x === null || x === undefined || Number.isNaN(x) ? "–"
    : new Intl.NumberFormat(lang, { style: "percent", minimumFractionDigits: digits, maximumFractionDigits: digits }).format(x)),
  sci: (x) => (x === null || x === undefined ? "–"
    : new Intl.NumberFormat(lang, { notation: "scientific", maximumFractionDigits: 1 }).format(x)),
  bytes: (n) => new Intl.NumberFormat(lang, { style: "unit", unit: n >= 2 ** 30 ? "gigabyte" : n >= 2 ** 20 ? "megabyte" : "kilobyte", maximumFractionDigits: 1 })
    .format(n >= 2 ** 30 ? n / 2 ** 30 : n >= 2 ** 20 ? n / 2 ** 20 : n / 1024),
  time: (x) => new Intl.DateTimeFormat(lang, { timeStyle: "medium" }).format(new Date(x)),
  date: (x) => (x ? new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" }).format(new Date(x)) : "–"),
};
