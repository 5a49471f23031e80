// Shared helpers of the video page and the admin console.
//
// SECURITY: text from the server or the user reaches the DOM only through `textContent`,
// text nodes and `createElement`. Nothing here (or in the pages) parses HTML.

import { DanmakuError, request } from './danmaku-client.js';
import { locale, t, tValue } from './i18n.js';

export const CHANNEL_RE = /^[A-Za-z0-9\-_.:@]{1,128}$/;
export const SUB_RE = /^[A-Za-z0-9\-_.@]{1,64}$/;
export const VIDEO_RE = /^[A-Za-z0-9\-_.]{1,64}$/;
export const JWT_RE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** The demo logins offered as buttons (`POST /api/demo/token`). Guests have no token. */
export const DEMO_USERS = {
  alice: { sub: 'alice', role: 'member', name: 'alice' },
  bob: { sub: 'bob', role: 'free', name: 'bob' },
  admin: { sub: 'admin', role: 'admin', name: 'admin' },
};

export const $ = (id) => document.getElementById(id);

/** Builds an element. `text` sets textContent; strings among children become text nodes. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key === 'text') node.textContent = String(value);
    else if (key === 'class') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'value') node.value = String(value);
    else if (key === 'style') {
      // Through the CSSOM: a style attribute would be blocked by the page's CSP.
      for (const decl of String(value).split(';')) {
        const at = decl.indexOf(':');
        if (at > 0) node.style.setProperty(decl.slice(0, at).trim(), decl.slice(at + 1).trim());
      }
    }
    else if (key.startsWith('on') && typeof value === 'function') {
      node.addEventListener(key.slice(2), value);
    } else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child != null && child !== false) node.append(child);
  }
  return node;
}

export function readJson(text) {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

export function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Pretty JSON for display; never throws. */
export function pretty(value) {
  if (value === undefined) return '';
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

export function clip(text, max) {
  const s = String(text);
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

export function clockTime(ms) {
  const d = new Date(ms);
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** Video time as m:ss.s */
export function videoTime(s) {
  const t = Math.max(0, Number(s) || 0);
  const m = Math.floor(t / 60);
  const sec = t - m * 60;
  return `${m}:${sec.toFixed(1).padStart(4, '0')}`;
}

/** A date and time for tables (local time). */
export function dateTime(ms) {
  if (!Number.isFinite(ms)) return '–';
  const d = new Date(ms);
  return `${d.toLocaleDateString(locale())} ${clockTime(ms).slice(0, 8)}`;
}

/** Reads a JWT's claims for display only (the server verifies; we never trust this). */
export function decodeJwt(token) {
  try {
    const part = token.split('.')[1];
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return isObject(claims) ? claims : null;
  } catch {
    return null;
  }
}

/**
 * A failed HTTP call, with the server's `{code, message}` when it sent one. A DanmakuError
 * (so `retryAfter` works too) that keeps the page's older names: `status` is 0 when the
 * server could not be reached, `retryAfterS` is the Retry-After in seconds or null.
 */
export class ApiError extends DanmakuError {
  constructor(status, code, message, retryAfterS = null) {
    super(code, message, { status, retryAfter: retryAfterS ?? undefined });
    this.name = 'ApiError';
    this.retryAfterS = retryAfterS;
  }
}

/**
 * Calls the REST API with relative URLs; throws ApiError on failure. One implementation
 * of REST for both pages: the embeddable client's `request` (static/lib/danmaku-client.js).
 */
export async function api(path, { method = 'GET', body, token } = {}) {
  try {
    return await request(method, path, body, { token });
  } catch (e) {
    if (!(e instanceof DanmakuError)) throw e;
    throw new ApiError(e.status ?? 0, e.code, e.message, e.retryAfter ?? null);
  }
}

/** Mints a demo token; throws ApiError (`demo_disabled` when the server is not in demo mode). */
export async function mintDemoToken(profile) {
  const reply = await api('/api/demo/token', {
    method: 'POST',
    body: { sub: profile.sub, role: profile.role, name: profile.name },
  });
  if (!isObject(reply) || typeof reply.token !== 'string') {
    throw new ApiError(500, 'bad_reply', t('common.no_token_reply'));
  }
  return { token: reply.token, expiresAt: Number(reply.expires_at) || null };
}

/** Whether a role may join a tier (mirrors Tier::admits in src/access.rs). */
export function tierAdmits(tier, role) {
  if (tier === 'member') return role === 'member' || role === 'admin';
  if (tier === 'admin') return role === 'admin';
  return true;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** A padlock drawn in SVG (no emoji font needed), with a tooltip. */
export function lockIcon(title, open = false) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 16 16');
  svg.setAttribute('width', '14');
  svg.setAttribute('height', '14');
  svg.setAttribute('aria-hidden', 'true');
  const shackle = document.createElementNS(SVG_NS, 'path');
  shackle.setAttribute('d', open ? 'M5 7V5a3 3 0 0 1 5.8-1' : 'M5 7V5a3 3 0 0 1 6 0v2');
  shackle.setAttribute('fill', 'none');
  shackle.setAttribute('stroke', 'currentColor');
  shackle.setAttribute('stroke-width', '1.6');
  const body = document.createElementNS(SVG_NS, 'rect');
  body.setAttribute('x', '3');
  body.setAttribute('y', '7');
  body.setAttribute('width', '10');
  body.setAttribute('height', '7');
  body.setAttribute('rx', '1.5');
  body.setAttribute('fill', 'currentColor');
  svg.append(shackle, body);
  return el('span', {
    class: open ? 'lock open' : 'lock',
    title,
    role: 'img',
    'aria-label': open ? t('common.unlocked') : t('common.locked'),
  }, svg);
}

export function tierTag(tier) {
  return tier ? el('span', { class: 'tag', dataset: { tier }, text: tValue('common.tier.', tier) }) : null;
}

/** A small toast in the `#toasts` box; returns the element. */
export function showToast({ title, body, tone = 'info', ms = 8000, dataset = {} }) {
  const box = $('toasts');
  const toast = el('div', { class: 'toast', dataset: { tone, ...dataset } },
    el('p', { class: 'toast-title', text: title }),
    body ? el('p', { class: 'toast-body', text: body }) : null);
  box.append(toast);
  while (box.childElementCount > 5) box.firstElementChild.remove();
  setTimeout(() => {
    toast.classList.add('leaving');
    setTimeout(() => toast.remove(), 400);
  }, ms);
  return toast;
}

/** One-line summary of a push payload for toasts and tables. */
export function summarize(payload) {
  if (payload == null) return t('common.empty_payload');
  if (typeof payload !== 'object') return clip(String(payload), 300);
  for (const key of ['message', 'content', 'text', 'title', 'body', 'headline']) {
    if (typeof payload[key] === 'string') return clip(payload[key], 300);
  }
  try {
    return clip(JSON.stringify(payload), 300);
  } catch {
    return t('common.unprintable_payload');
  }
}
