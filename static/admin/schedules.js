// Admin console: the Schedules panel. Owns the form (cron or every N seconds, a target,
// a payload), the table with next and last runs, pause / resume / delete, and the
// notice shown when this server has no scheduler (GET /api/schedules answers 404).
//
// SECURITY: text reaches the DOM through `el` (textContent, createElement) only.

import { $, el, dateTime, isObject, showToast, summarize } from '../lib/util.js';
import { call, state } from './state.js';
import { parseEditor, splitUsers, syncTargetFields } from './forms.js';

function scheduleTarget() {
  const kind = $('sched-kind').value;
  const v = $('sched-target').value.trim();
  switch (kind) {
    case 'broadcast': return { kind };
    case 'role': return { kind, role: v };
    case 'user': return { kind, user: v };
    case 'users': return { kind, users: splitUsers(v) };
    case 'channel': return { kind, channel: v };
    default: return { kind };
  }
}

function describeTarget(t) {
  if (!isObject(t)) return '?';
  switch (t.kind) {
    case 'broadcast': return 'everyone';
    case 'role': return `role ${t.role}`;
    case 'user': return `user ${t.user}`;
    case 'users': return `users ${(t.users || []).join(', ')}`;
    case 'channel': return `channel ${t.channel}`;
    default: return String(t.kind);
  }
}

function relative(ms) {
  if (!Number.isFinite(ms)) return '';
  const d = Math.round((ms - Date.now()) / 1000);
  if (Math.abs(d) < 1) return 'now';
  const abs = Math.abs(d);
  const text = abs < 90 ? `${abs} s` : abs < 5400 ? `${Math.round(abs / 60)} min` : `${Math.round(abs / 3600)} h`;
  return d > 0 ? `in ${text}` : `${text} ago`;
}

function schedulesUnavailable(e) {
  state.schedulesAvailable = false;
  const status = $('schedules-status');
  status.hidden = false;
  status.dataset.tone = 'warn';
  status.textContent = e.status === 404
    ? 'Schedules are not available on this server: GET /api/schedules answered 404 (this build has no scheduler). Pushes above work without them.'
    : `Could not load schedules: ${e.status || ''} ${e.code}: ${e.message}`;
  for (const node of $('schedule-form').elements) node.disabled = e.status === 404;
  $('schedule-table').hidden = e.status === 404;
}

/** Loads the schedules (or says the server has none) and draws the table. */
export async function loadSchedules() {
  if (!state.token) return;
  try {
    const list = await call('/api/schedules');
    state.schedulesAvailable = true;
    state.schedules = Array.isArray(list) ? list : [];
    $('schedules-status').hidden = true;
    for (const node of $('schedule-form').elements) node.disabled = false;
    $('schedule-table').hidden = false;
    syncScheduleForm();
    renderSchedules();
  } catch (e) {
    schedulesUnavailable(e);
  }
}

function renderSchedules() {
  const tbody = $('schedule-table').tBodies[0];
  const rows = state.schedules.map(scheduleRow);
  if (!rows.length) rows.push(el('tr', {}, el('td', { colspan: '9', class: 'muted', text: 'No schedules yet.' })));
  tbody.replaceChildren(...rows);
}

function scheduleRow(s) {
  const when = s.cron ? `cron ${s.cron}${s.tz && s.tz !== 'UTC' ? ` (${s.tz})` : ''}` : `every ${s.every_s} s`;
  const next = s.paused ? 'paused' : Number.isFinite(s.next_run) ? `${dateTime(s.next_run)} (${relative(s.next_run)})` : '–';
  const last = Number.isFinite(s.last_run)
    ? `${relative(s.last_run)}${Number.isFinite(s.last_delivered) ? ` · ${s.last_delivered} socket(s)` : ''}`
    : 'never';
  return el('tr', { dataset: { id: String(s.id), paused: String(Boolean(s.paused)) } },
    el('td', { text: s.name, title: s.id }),
    el('td', { class: 'mono', text: when }),
    el('td', { text: describeTarget(s.target) }),
    el('td', { text: s.event, title: summarize(s.payload) }),
    el('td', { class: 'next-run', text: next }),
    el('td', { text: last }),
    el('td', { text: String(s.runs ?? 0) }),
    el('td', {}, el('span', { class: 'tag', dataset: { state: s.paused ? 'paused' : 'active' }, text: s.paused ? 'paused' : 'active' })),
    el('td', { class: 'actions' },
      el('button', {
        type: 'button', class: 'btn btn-small', text: s.paused ? 'Resume' : 'Pause',
        onclick: () => patchSchedule(s.id, !s.paused),
      }),
      el('button', { type: 'button', class: 'btn btn-small danger', text: 'Delete', onclick: () => deleteSchedule(s) })));
}

function syncScheduleForm() {
  const how = $('sched-how').value;
  $('sched-cron-label').hidden = how !== 'cron';
  $('sched-every-label').hidden = how !== 'every';
  syncTargetFields($('sched-kind').value, $('sched-target-label'), $('sched-target'), null);
}

async function createSchedule(ev) {
  ev.preventDefault();
  const result = $('sched-result');
  result.dataset.tone = 'error';
  const p = parseEditor($('sched-payload'), $('sched-payload-status'));
  if (!p.ok) {
    result.textContent = 'Fix the payload first: it must be JSON.';
    return;
  }
  const body = {
    name: $('sched-name').value.trim(),
    target: scheduleTarget(),
    event: $('sched-event').value.trim() || 'push',
    payload: p.value,
    audience: $('sched-audience').value,
    tz: $('sched-tz').value.trim() || 'UTC',
  };
  if ($('sched-how').value === 'cron') body.cron = $('sched-cron').value.trim();
  else body.every_s = Number($('sched-every').value);
  try {
    const s = await call('/api/schedules', { method: 'POST', body });
    result.dataset.tone = 'ok';
    result.textContent = `Created “${s.name}”${Number.isFinite(s.next_run) ? `; first run ${relative(s.next_run)}` : ''}.`;
    loadSchedules();
  } catch (e) {
    if (e.status === 404) schedulesUnavailable(e);
    result.textContent = `${e.status || ''} ${e.code}: ${e.message}`;
  }
}

async function patchSchedule(id, paused) {
  try {
    await call(`/api/schedules/${encodeURIComponent(id)}`, { method: 'PATCH', body: { paused } });
    loadSchedules();
  } catch (e) {
    showToast({ title: 'Schedule not changed', body: `${e.code}: ${e.message}`, tone: 'warn' });
  }
}

async function deleteSchedule(s) {
  if (!window.confirm(`Delete the schedule “${s.name}”?`)) return;
  try {
    await call(`/api/schedules/${encodeURIComponent(s.id)}`, { method: 'DELETE' });
    loadSchedules();
  } catch (e) {
    showToast({ title: 'Schedule not deleted', body: `${e.code}: ${e.message}`, tone: 'warn' });
  }
}

/** Wires the form's fields, Create and Reload. */
export function wireSchedules() {
  $('sched-how').addEventListener('change', syncScheduleForm);
  $('sched-kind').addEventListener('change', syncScheduleForm);
  syncScheduleForm();
  $('schedule-form').addEventListener('submit', createSchedule);
  $('schedules-reload').addEventListener('click', loadSchedules);
}
