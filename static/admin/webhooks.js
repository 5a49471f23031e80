// Admin console: the Webhooks panel (admins only; hidden for room moderators and other
// tokens). Owns the list of webhooks with their delivery stats (GET /api/webhooks:
// delivered, failed, pending, the last attempt's status or error), the create form
// (POST /api/webhooks {url, events, secret, description?}: the secret signs deliveries
// and is never shown again, nor returned by the server) and deleting one
// (DELETE /api/webhooks/{id}). A refusal (422 invalid_url, invalid_events,
// invalid_secret) shows the server's message.
//
// SECURITY: text reaches the DOM through `el` (textContent, createElement) only; the
// secret stays in its password field until sent and is cleared after a create.

import { $, el, dateTime } from '../lib/util.js';
import { formatNumber, localize, onLocaleChange, t } from '../lib/i18n.js';
import { call, state } from './state.js';

const enc = encodeURIComponent;

/** The webhooks on show (null: not loaded, or the server has none of this API). */
let hooks = null;

function isAdmin() {
  return !!state.me && state.me.role === 'admin';
}

function say(node, tone, render) {
  node.dataset.tone = tone;
  localize(node, render);
}

function codeMessage(e) {
  return `${e.code}: ${e.message}`;
}

/** Shows the panel to admins only; loads the list for them. */
export async function loadWebhooks(keepStatus = false) {
  const panel = $('webhooks-panel');
  const admin = isAdmin();
  panel.hidden = !admin;
  if (!admin) {
    hooks = null;
    renderWebhooks();
    return;
  }
  const status = $('webhooks-status');
  try {
    const list = await call('/api/webhooks');
    hooks = Array.isArray(list) ? list : [];
    if (!keepStatus) localize(status, null);
  } catch (e) {
    hooks = null;
    if (e.status === 404) say(status, 'warn', () => t('admin.webhooks.unavailable'));
    else say(status, 'error', () => t('admin.webhooks.load_failed', { error: codeMessage(e) }));
  }
  renderWebhooks();
}

/** The last attempt in words: HTTP status, or the error, and when; "never" before any. */
function lastAttempt(h) {
  if (!Number.isFinite(h.last_attempt_at)) return t('admin.webhooks.never');
  const when = dateTime(h.last_attempt_at);
  if (typeof h.last_error === 'string' && h.last_error) {
    return Number.isSafeInteger(h.last_status)
      ? t('admin.webhooks.last_error_status', { status: h.last_status, error: h.last_error, when })
      : t('admin.webhooks.last_error', { error: h.last_error, when });
  }
  return t('admin.webhooks.last_status', { status: Number.isSafeInteger(h.last_status) ? h.last_status : '–', when });
}

function renderWebhooks() {
  const tbody = $('webhook-table').tBodies[0];
  if (!hooks) {
    tbody.replaceChildren();
    return;
  }
  tbody.replaceChildren(...hooks.map((h) => {
    const events = Array.isArray(h.events) ? h.events : [];
    const failing = typeof h.last_error === 'string' && h.last_error;
    return el('tr', { dataset: { id: String(h.id), url: String(h.url ?? '') } },
      el('td', { class: 'mono hook-url', text: String(h.url ?? '') }),
      el('td', { class: 'hook-events' }, ...events.map((name) => el('code', { text: String(name) }))),
      el('td', { class: 'comment-text', text: typeof h.description === 'string' && h.description ? h.description : '–' }),
      el('td', { text: t('admin.webhooks.created', { by: String(h.created_by ?? ''), at: dateTime(h.created_at) }) }),
      el('td', { class: 'mono', dataset: { stat: 'delivered' }, text: formatNumber(Number(h.delivered) || 0) }),
      el('td', { class: 'mono', dataset: { stat: 'failed' }, text: formatNumber(Number(h.failed) || 0) }),
      el('td', { class: 'mono', dataset: { stat: 'pending' }, text: formatNumber(Number(h.pending) || 0) }),
      el('td', { class: failing ? 'hook-last error' : 'hook-last', text: lastAttempt(h) }),
      el('td', { class: 'actions' },
        el('button', { type: 'button', class: 'btn btn-small danger', text: t('common.delete'), onclick: () => removeWebhook(h) })));
  }));
  if (!hooks.length) {
    tbody.replaceChildren(el('tr', { class: 'empty' }, el('td', { colspan: '9', class: 'muted', text: t('admin.webhooks.none') })));
  }
}

async function createWebhook(ev) {
  ev.preventDefault();
  const result = $('webhook-result');
  const url = $('webhook-url').value.trim();
  const events = [...document.querySelectorAll('#webhook-events input[type="checkbox"]:checked')].map((c) => c.value);
  const secret = $('webhook-secret').value;
  const description = $('webhook-description').value.trim();
  const body = { url, events, secret };
  if (description) body.description = description;
  let made;
  try {
    made = await call('/api/webhooks', { method: 'POST', body });
  } catch (e) {
    // 422 invalid_url / invalid_events / invalid_secret: the server's message says which.
    say(result, 'error', () => t('admin.webhooks.create_failed', { error: codeMessage(e) }));
    return;
  }
  $('webhook-secret').value = '';
  $('webhook-description').value = '';
  await loadWebhooks(true);
  say(result, 'ok', () => t('admin.webhooks.created_ok', { id: String(made && made.id), url: String(made && made.url) }));
}

async function removeWebhook(h) {
  const result = $('webhook-result');
  try {
    await call(`/api/webhooks/${enc(h.id)}`, { method: 'DELETE' });
  } catch (e) {
    say(result, 'error', () => t('admin.webhooks.delete_failed', { id: String(h.id), error: codeMessage(e) }));
    return;
  }
  await loadWebhooks(true);
  say(result, 'ok', () => t('admin.webhooks.deleted', { id: String(h.id), url: String(h.url ?? '') }));
}

/** Wires the create form, Reload, and the redraw after a language switch. */
export function wireWebhooks() {
  $('webhook-form').addEventListener('submit', createWebhook);
  $('webhooks-reload').addEventListener('click', () => loadWebhooks());
  onLocaleChange(renderWebhooks);
}
