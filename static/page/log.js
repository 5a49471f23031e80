// Video page: what the viewer is told. Owns the event log (#event-log, newest first,
// capped), the toasts for pushes and the order-alert cards in #notifications.
//
// SECURITY: server text reaches the DOM only through `el` (textContent, createElement);
// this file never parses HTML.

import { $, el, clockTime, isObject, showToast, summarize } from '../lib/util.js';
import { state } from './state.js';
import { formatNumber, t } from '../lib/i18n.js';

const LOG_CAP = 200;
const NOTIFICATION_CAP = 50;

/** Adds one entry on top of the event log: every frame and connection step lands here. */
export function logEntry({ kind, type, channel, seq, ts, body }) {
  const log = $('event-log');
  const head = el('div', { class: 'log-head' },
    el('time', { class: 'log-time', text: clockTime(ts || Date.now()) }),
    channel ? el('span', { class: 'log-channel', text: String(channel) }) : null,
    seq != null ? el('span', { class: 'log-seq', text: `#${seq}` }) : null,
    el('span', { class: 'log-type', text: type }));
  const entry = el('li', { class: 'log-entry', dataset: { kind } },
    head,
    body ? el('pre', { class: 'log-body', text: body }) : null);
  log.prepend(entry);
  while (log.childElementCount > LOG_CAP) log.lastElementChild.remove();
  renderLogCount();
}

/** "N entries" over the log (again after a language switch). */
export function renderLogCount() {
  const count = $('event-log').childElementCount;
  const n = formatNumber(count);
  $('log-count').textContent = count === 1 ? t('log.entry', { n }) : t('log.entries', { n });
}

/** A log entry written by the page itself (not a frame). */
export function logSystem(type, body) {
  logEntry({ kind: 'system', type, body });
}

/** Wires the log's Clear button. */
export function wireLog() {
  $('log-clear').addEventListener('click', (ev) => {
    ev.preventDefault();
    $('event-log').replaceChildren();
    renderLogCount();
  });
  renderLogCount();
}

/** Shows a push (data = {payload}) that is not a comment: an order card, else a toast. */
export function showPush(f) {
  const data = f.data;
  const payload = data.payload;
  if (isOrderAlert(payload)) {
    addOrderCard(f, payload);
    return;
  }
  const schedule = isObject(data.schedule) && typeof data.schedule.name === 'string' ? data.schedule : null;
  let origin;
  if (f.channel === 'broadcast') origin = t('log.announcement');
  else if (state.user && f.channel === `user:${state.user.sub}`) origin = t('log.for_you');
  else origin = f.channel;
  showToast({
    title: schedule ? t('log.push_scheduled', { type: f.type, origin, name: schedule.name }) : `${f.type} · ${origin}`,
    body: summarize(payload),
    dataset: { channel: f.channel, event: String(f.type) },
  });
}

function isOrderAlert(p) {
  return isObject(p) && 'type' in p && 'content' in p
    && (typeof p.orderId === 'string' || typeof p.orderId === 'number');
}

function addOrderCard(f, p) {
  const list = $('notifications');
  const content = typeof p.content === 'string' ? p.content : JSON.stringify(p.content);
  const when = Number(f.ts) || Date.now();
  const card = el('li', { class: 'notification', dataset: { orderId: String(p.orderId), channel: f.channel } },
    el('div', { class: 'notification-icon', 'aria-hidden': 'true', text: '¥' }),
    el('div', { class: 'notification-body' },
      el('p', { class: 'notification-title', text: t('log.order', { id: p.orderId }) }),
      el('p', { class: 'notification-content', text: content }),
      el('p', { class: 'notification-meta', text: t('log.order_meta', { type: String(p.type), channel: f.channel, at: clockTime(when) }) })),
    el('button', {
      type: 'button',
      class: 'icon-button',
      'aria-label': t('common.dismiss'),
      text: '×',
      onclick: () => card.remove(),
    }));
  list.prepend(card);
  while (list.childElementCount > NOTIFICATION_CAP) list.lastElementChild.remove();
}
