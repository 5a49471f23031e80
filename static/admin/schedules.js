// Admin console: the Schedules panel. Owns the form (cron or every N seconds, a target,
// a payload), the table with next and last runs, pause / resume / delete, and the
// notice shown when this server has no scheduler (GET /api/schedules answers 404).
//
// SECURITY: text reaches the DOM through `el` (textContent, createElement) only.

import { $, el, dateTime, showToast, summarize } from '../lib/util.js';
import { formatNumber, localize, onLocaleChange, t } from '../lib/i18n.js';
import { call, errorText, state } from './state.js';
import { describeTarget, parseEditor, splitUsers, syncTargetFields } from './forms.js';

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

/** A moment relative to `now`: "in 30 s", "2 min ago". */
function relative(ms, now = Date.now()) {
  if (!Number.isFinite(ms)) return '';
  const d = Math.round((ms - now) / 1000);
  if (Math.abs(d) < 1) return t('common.time.now');
  const abs = Math.abs(d);
  const span = abs < 90 ? t('common.time.seconds', { n: abs })
    : abs < 5400 ? t('common.time.minutes', { n: Math.round(abs / 60) })
      : t('common.time.hours', { n: Math.round(abs / 3600) });
  return d > 0 ? t('common.time.in', { span }) : t('common.time.ago', { span });
}

function schedulesUnavailable(e) {
  state.schedulesAvailable = false;
  const status = $('schedules-status');
  status.hidden = false;
  status.dataset.tone = 'warn';
  localize(status, () => (e.status === 404
    ? t('admin.schedules.unavailable')
    : t('admin.schedules.load_failed', { error: errorText(e) })));
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
  if (!rows.length) rows.push(el('tr', {}, el('td', { colspan: '9', class: 'muted', text: t('admin.schedules.none') })));
  tbody.replaceChildren(...rows);
}

function scheduleRow(s) {
  const when = !s.cron ? t('admin.schedules.when_every', { n: s.every_s })
    : s.tz && s.tz !== 'UTC' ? t('admin.schedules.when_cron_tz', { cron: s.cron, tz: s.tz })
      : t('admin.schedules.when_cron', { cron: s.cron });
  const next = s.paused ? t('admin.schedules.paused')
    : Number.isFinite(s.next_run) ? `${dateTime(s.next_run)} (${relative(s.next_run)})` : '–';
  const last = !Number.isFinite(s.last_run) ? t('common.time.never')
    : Number.isFinite(s.last_delivered)
      ? t('admin.schedules.last_delivered', { when: relative(s.last_run), n: formatNumber(s.last_delivered) })
      : relative(s.last_run);
  const stateText = s.paused ? t('admin.schedules.paused') : t('admin.schedules.active');
  return el('tr', { dataset: { id: String(s.id), paused: String(Boolean(s.paused)) } },
    el('td', { text: s.name, title: s.id }),
    el('td', { class: 'mono', text: when }),
    el('td', { text: describeTarget(s.target) }),
    el('td', { text: s.event, title: summarize(s.payload) }),
    el('td', { class: 'next-run', text: next }),
    el('td', { text: last }),
    el('td', { text: String(s.runs ?? 0) }),
    el('td', {}, el('span', { class: 'tag', dataset: { state: s.paused ? 'paused' : 'active' }, text: stateText })),
    el('td', { class: 'actions' },
      el('button', {
        type: 'button', class: 'btn btn-small', text: s.paused ? t('admin.schedules.resume') : t('admin.schedules.pause'),
        onclick: () => patchSchedule(s.id, !s.paused),
      }),
      el('button', { type: 'button', class: 'btn btn-small danger', text: t('common.delete'), onclick: () => deleteSchedule(s) })));
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
    localize(result, () => t('admin.json.fix_first'));
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
    // "First run in 30 s" counts from the creation, also when redrawn in another language.
    const at = Date.now();
    localize(result, () => (Number.isFinite(s.next_run)
      ? t('admin.schedules.created_next', { name: s.name, when: relative(s.next_run, at) })
      : t('admin.schedules.created', { name: s.name })));
    loadSchedules();
  } catch (e) {
    if (e.status === 404) schedulesUnavailable(e);
    localize(result, () => errorText(e));
  }
}

async function patchSchedule(id, paused) {
  try {
    await call(`/api/schedules/${encodeURIComponent(id)}`, { method: 'PATCH', body: { paused } });
    loadSchedules();
  } catch (e) {
    showToast({ title: t('admin.schedules.not_changed'), body: `${e.code}: ${e.message}`, tone: 'warn' });
  }
}

async function deleteSchedule(s) {
  if (!window.confirm(t('admin.schedules.confirm_delete', { name: s.name }))) return;
  try {
    await call(`/api/schedules/${encodeURIComponent(s.id)}`, { method: 'DELETE' });
    loadSchedules();
  } catch (e) {
    showToast({ title: t('admin.schedules.not_deleted'), body: `${e.code}: ${e.message}`, tone: 'warn' });
  }
}

/** Wires the form's fields, Create and Reload. */
export function wireSchedules() {
  $('sched-how').addEventListener('change', syncScheduleForm);
  $('sched-kind').addEventListener('change', syncScheduleForm);
  syncScheduleForm();
  $('schedule-form').addEventListener('submit', createSchedule);
  $('schedules-reload').addEventListener('click', loadSchedules);
  onLocaleChange(() => {
    syncScheduleForm();
    if (state.schedulesAvailable) renderSchedules();
  });
}
