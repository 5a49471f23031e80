// Admin console: the Push form. Owns the target (everyone, a role, a user, users, a
// channel) and its REST path under /api/push, the presets, sending, and the table of
// the last pushes with how many sockets each reached.
//
// SECURITY: text reaches the DOM through `el` (textContent, createElement) only.

import { $, el, CHANNEL_RE, SUB_RE, clockTime, pretty } from '../lib/util.js';
import { call } from './state.js';
import { parseEditor, splitUsers, syncTargetFields } from './forms.js';

const PRESETS = {
  notice: { event: 'notice', payload: { message: 'Maintenance at 02:00 UTC' } },
  order: { event: 'order', payload: { type: 1, orderId: 7, content: 'order 7 paid' } },
  drop: { event: 'drop', audience: 'members', payload: { title: 'Members-only drop', text: 'New episode early for members' } },
};

function pushPath() {
  const kind = $('push-kind').value;
  const target = $('push-target').value.trim();
  switch (kind) {
    case 'broadcast':
      return { path: '/api/push/broadcast', label: 'everyone' };
    case 'role':
      return { path: `/api/push/roles/${$('push-role').value}`, label: `role ${$('push-role').value}` };
    case 'user':
      if (!SUB_RE.test(target)) return { error: 'Enter a user id (letters, digits, _ - . @).' };
      return { path: `/api/push/users/${encodeURIComponent(target)}`, label: `user ${target}` };
    case 'users': {
      const users = splitUsers(target);
      if (!users.length || !users.every((u) => SUB_RE.test(u))) return { error: 'Enter user ids separated by commas.' };
      return { path: '/api/push/users', label: `users ${users.join(', ')}`, users };
    }
    case 'channel':
      if (!CHANNEL_RE.test(target)) return { error: 'Enter a channel name, e.g. video:demo.' };
      return { path: `/api/push/channels/${encodeURIComponent(target)}`, label: `channel ${target}` };
    default:
      return { error: 'Pick a target.' };
  }
}

async function sendPush(ev) {
  ev.preventDefault();
  const result = $('push-result');
  result.dataset.tone = 'error';
  const p = parseEditor($('push-payload'), $('push-payload-status'));
  if (!p.ok) {
    result.textContent = 'Fix the payload first: it must be JSON.';
    return;
  }
  const t = pushPath();
  if (t.error) {
    result.textContent = t.error;
    return;
  }
  const body = {
    event: $('push-event').value.trim() || 'push',
    payload: p.value,
    audience: $('push-audience').value,
  };
  if (t.users) body.users = t.users;
  result.dataset.tone = 'info';
  result.textContent = 'Sending…';
  try {
    const reply = await call(t.path, { method: 'POST', body });
    result.dataset.tone = 'ok';
    result.textContent = `Sent to ${t.label}: delivered to ${reply.delivered} socket(s)${reply.seq != null ? `, seq ${reply.seq}` : ''} (id ${reply.id}).`;
    result.dataset.delivered = String(reply.delivered);
    addPushRow(t.label, body, reply);
  } catch (e) {
    result.dataset.tone = 'error';
    result.textContent = `${e.status || ''} ${e.code}: ${e.message}`;
  }
}

function addPushRow(label, body, reply) {
  const table = $('push-history');
  table.hidden = false;
  const tbody = table.tBodies[0];
  tbody.prepend(el('tr', {},
    el('td', { text: clockTime(Date.now()).slice(0, 8) }),
    el('td', { text: label }),
    el('td', { text: body.event }),
    el('td', { text: body.audience }),
    el('td', { text: String(reply.delivered) }),
    el('td', { text: reply.seq != null ? String(reply.seq) : '–' })));
  while (tbody.rows.length > 10) tbody.lastElementChild.remove();
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
}
