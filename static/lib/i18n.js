// The pages' language: one catalog per language (static/i18n/<tag>.js, flat dotted
// keys), chosen from the browser's languages unless the viewer picked one on the page
// (kept in localStorage), and switchable at runtime without a reload.
//
// - Markup carries keys, never text: `data-i18n` sets an element's textContent,
//   `data-i18n-placeholder`, `data-i18n-title` and `data-i18n-aria-label` set those
//   attributes. `applyTo(document)` fills them in; it runs again on every switch. A
//   child marked `data-i18n-slot="name"` (a <code>) stands where `{name}` is.
// - Code asks `t(key, params)`; `{name}` in a message is replaced by `params.name`.
//   Code that renders text keeps working across a switch by re-rendering on
//   `onLocaleChange`, or by setting status text with `localize(node, () => t(...))`.
//   Server enums go through `tValue(prefix, value)` (the value itself when unknown).
// - A key missing from a catalog falls back to English, then to the key itself, and is
//   reported once on the console; tests/e2e/i18n-keys.test.mjs keeps both catalogs
//   complete and every key used by the pages defined.
//
// SECURITY: messages reach the DOM through textContent and attributes only.

import en from '../i18n/en.js';
import zhCN from '../i18n/zh-CN.js';

/** The catalogs by BCP 47 tag, with the name each language has in itself. */
export const CATALOGS = Object.freeze({ en, 'zh-CN': zhCN });
export const LANGUAGE_NAMES = Object.freeze({ en: 'English', 'zh-CN': '简体中文' });
const STORAGE_KEY = 'danmaku.locale';

let current = pick();
const listeners = new Set();
const reported = new Set();

/** The locale for these preferences: a stored choice, else the first supported browser language. */
export function pick(languages = navigatorLanguages(), stored = storedChoice()) {
  if (stored && CATALOGS[stored]) return stored;
  for (const tag of languages) {
    const lower = String(tag).toLowerCase();
    // Simplified Chinese covers zh, zh-CN, zh-SG and zh-Hans-*; no Traditional catalog yet.
    if (lower === 'zh' || lower.startsWith('zh-cn') || lower.startsWith('zh-sg') || lower.startsWith('zh-hans')) return 'zh-CN';
    if (lower === 'en' || lower.startsWith('en-')) return 'en';
  }
  return 'en';
}

function navigatorLanguages() {
  if (typeof navigator === 'undefined') return [];
  return navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || 'en'];
}

function storedChoice() {
  try {
    return typeof localStorage === 'undefined' ? null : localStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

/** The active locale's tag. */
export function locale() {
  return current;
}

/** The message for `key` in the active locale, with `{name}` placeholders filled in. */
export function t(key, params) {
  let msg = CATALOGS[current][key];
  if (msg === undefined) {
    msg = en[key];
    if (!reported.has(key)) {
      reported.add(key);
      console.warn(`i18n: no "${key}" in ${msg === undefined ? 'any catalog' : current}`);
    }
    if (msg === undefined) return key;
  }
  if (!params) return msg;
  return msg.replace(/\{(\w+)\}/g, (all, name) => (name in params ? String(params[name]) : all));
}

/**
 * The message for `prefix + value` when the English catalog has one, else `value` as it
 * came: for server enums (roles, tiers, audiences) that a newer server may extend.
 */
export function tValue(prefix, value) {
  return Object.hasOwn(en, prefix + value) ? t(prefix + value) : String(value);
}

/** Formats a number in the active locale (counts, 1,234 / 1,234). */
export function formatNumber(n) {
  return new Intl.NumberFormat(current).format(n);
}

/** `root` and the elements under it that match `selector`. */
function within(root, selector) {
  const nodes = [...root.querySelectorAll(selector)];
  if (root.matches && root.matches(selector)) nodes.unshift(root);
  return nodes;
}

/**
 * Sets a keyed element's text. A `{name}` in the message that names a child element
 * marked `data-i18n-slot="name"` puts that child there (a <code> inside a sentence),
 * so translators can move it; the child itself is kept, not rebuilt.
 */
function fill(node) {
  const msg = t(node.dataset.i18n);
  const slots = new Map();
  for (const child of node.children) {
    if (child.dataset.i18nSlot) slots.set(child.dataset.i18nSlot, child);
  }
  if (!slots.size) {
    node.textContent = msg;
    return;
  }
  const parts = [];
  let last = 0;
  for (const m of msg.matchAll(/\{(\w+)\}/g)) {
    const slot = slots.get(m[1]);
    if (!slot) continue;
    parts.push(msg.slice(last, m.index), slot);
    last = m.index + m[0].length;
  }
  parts.push(msg.slice(last));
  node.replaceChildren(...parts.filter((p) => p !== ''));
}

/** Fills in every keyed element and attribute under `root` (and `root` itself). */
export function applyTo(root = document) {
  for (const node of within(root, '[data-i18n]')) fill(node);
  for (const [attr, data] of [
    ['placeholder', 'i18nPlaceholder'],
    ['title', 'i18nTitle'],
    ['aria-label', 'i18nAriaLabel'],
  ]) {
    for (const node of within(root, `[data-i18n-${attr}]`)) node.setAttribute(attr, t(node.dataset[data]));
  }
  if (root === document) document.documentElement.lang = current;
}

/** Nodes whose text `localize` keeps in the active language, with how to render it. */
const localized = new Map();

/**
 * Sets `node.textContent` to `render()` now and again after every switch: for status
 * lines and badges that code writes, so they follow the language without a reload.
 * A later call for the same node replaces its renderer; `render` null clears the node.
 */
export function localize(node, render) {
  if (!render) {
    localized.delete(node);
    node.textContent = '';
    return;
  }
  localized.set(node, render);
  node.textContent = render();
}

/** Switches the language, remembers the choice, re-applies the markup and tells listeners. */
export function setLocale(tag) {
  if (!CATALOGS[tag] || tag === current) return;
  current = tag;
  try {
    localStorage.setItem(STORAGE_KEY, tag);
  } catch {
    // Storage may be off (private mode); the switch still holds for this page.
  }
  applyTo(document);
  for (const [node, render] of localized) {
    if (node.isConnected) node.textContent = render();
    else localized.delete(node); // rebuilt or removed since: let it go
  }
  for (const fn of listeners) fn(tag);
}

/** Calls `fn(tag)` after every switch; returns the unsubscribe function. */
export function onLocaleChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Wires a <select> to switch the language: options from CATALOGS, current one selected. */
export function wireLocaleSelect(select) {
  if (!select) return;
  select.replaceChildren();
  for (const tag of Object.keys(CATALOGS)) {
    const option = document.createElement('option');
    option.value = tag;
    option.textContent = LANGUAGE_NAMES[tag];
    option.lang = tag;
    select.append(option);
  }
  select.value = current;
  select.addEventListener('change', () => setLocale(select.value));
  onLocaleChange((tag) => {
    select.value = tag;
  });
}
