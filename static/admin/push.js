// Admin console: the Push form. Owns the target (everyone, a role, a user, users, a
// channel) and its REST path under /api/push, the presets, sending, and the table of
// the last pushes with how many sockets each reached.
//
// SECURITY: text reaches the DOM through `el` (textContent, createElement) only.

import { $, el, CHANNEL_RE, SUB_RE, clockTime, pretty } from '../lib/util.js';
import { formatNumber, localize, onLocaleChange, t, tValue } from '../lib/i18n.js';
import { call, errorText } from './state.js';
import { describeTarget, parseEditor, splitUsers, syncTargetFields } from './forms.js';

// Sample payloads: data sent to viewers, not console text, so they stay as they are.
const PRESETS = {
  notice: { event: 'notice', payload: { message: 'Maintenance at 02:00 UTC' } },
  order: { event: 'order', payload: { type: 1, orderId: 7, content: 'order 7 paid' } },
  drop: { event: 'drop', audience: 'members', payload: { title: 'Members-only drop', text: 'New episode early for members' } },
};

const HISTORY_ROWS = 10;
/** The last pushes, newest first: kept as data so the table can be redrawn in another language. */
const history = [];

/** The REST path of the chosen target and the target itself (for the table), or an error. */
function pushPath() {
  const kind = $('push-kind').value;
  const target = $('push-target').value.trim();
  switch (kind) {
    case 'broadcast':
      return { path: '/api/push/broadcast', target: { kind } };
    case 'role':
      return { path: `/api/push/roles/${$('push-role').value}`, target: { kind, role: $('push-role').value } };
    case 'user':
      if (!SUB_RE.test(target)) return { error: () => t('admin.push.need_user') };
      return { path: `/api/push/users/${encodeURIComponent(target)}`, target: { kind, user: target } };
    case 'users': {
      const users = splitUsers(target);
      if (!users.length || !users.every((u) => SUB_RE.test(u))) return { error: () => t('admin.push.need_users') };
      return { path: '/api/push/users', target: { kind, users }, users };
    }
    case 'channel':
      if (!CHANNEL_RE.test(target)) return { error: () => t('admin.push.need_channel') };
      return { path: `/api/push/channels/${encodeURIComponent(target)}`, target: { kind, channel: target } };
    default:
      return { error: () => t('admin.push.pick_target') };
  }
}

async function sendPush(ev) {
  ev.preventDefault();
  const result = $('push-result');
  result.dataset.tone = 'error';
  const p = parseEditor($('push-payload'), $('push-payload-status'));
  if (!p.ok) {
    localize(result, () => t('admin.json.fix_first'));
    return;
  }
  const route = pushPath();
  if (route.error) {
    localize(result, route.error);
    return;
  }
  const body = {
    event: $('push-event').value.trim() || 'push',
    payload: p.value,
    audience: $('push-audience').value,
  };
  if (route.users) body.users = route.users;
  result.dataset.tone = 'info';
  localize(result, () => t('admin.push.sending'));
  try {
    const reply = await call(route.path, { method: 'POST', body });
    result.dataset.tone = 'ok';
    localize(result, () => {
      const params = { target: describeTarget(route.target), delivered: formatNumber(reply.delivered), seq: reply.seq, id: reply.id };
      return reply.seq != null ? t('admin.push.sent_seq', params) : t('admin.push.sent', params);
    });
    result.dataset.delivered = String(reply.delivered);
    history.unshift({ at: Date.now(), target: route.target, event: body.event, audience: body.audience, reply });
    history.length = Math.min(history.length, HISTORY_ROWS);
    renderHistory();
  } catch (e) {
    result.dataset.tone = 'error';
    localize(result, () => errorText(e));
  }
}

function renderHistory() {
  const table = $('push-history');
  table.hidden = history.length === 0;
  table.tBodies[0].replaceChildren(...history.map((h) => el('tr', {},
    el('td', { text: clockTime(h.at).slice(0, 8) }),
    el('td', { text: describeTarget(h.target) }),
    el('td', { text: h.event }),
    el('td', { text: tValue('common.audience.', h.audience) }),
    el('td', { text: formatNumber(h.reply.delivered) }),
    el('td', { text: h.reply.seq != null ? String(h.reply.seq) : '–' }))));
}

function applyPreset(name) {
  const p = PRESETS[name];
  $('push-event').value = p.event;
  $('push-audience').value = p.audience || 'everyone';
  $('push-payload').value = JSON.stringify(p.payload, null, 2);
  parseEditor($('push-payload'), $('push-payload-status'));
}

/** Wires the target fields, the form, the preset buttons and Format. */
export function wirePush() {
  const syncPush = () => syncTargetFields($('push-kind').value, $('push-target-label'), $('push-target'), $('push-role-label'));
  $('push-kind').addEventListener('change', syncPush);
  syncPush();
  $('push-form').addEventListener('submit', sendPush);
  for (const b of document.querySelectorAll('[data-preset]')) {
    b.addEventListener('click', () => applyPreset(b.dataset.preset));
  }
  $('payload-format').addEventListener('click', () => {
    const p = parseEditor($('push-payload'), $('push-payload-status'));
    if (p.ok) $('push-payload').value = pretty(p.value);
  });
  onLocaleChange(() => {
    syncPush();
    renderHistory();
  });
}
