// danmaku admin console: pushes, schedules, video and channel tiers, presence, and
// comment moderation, all through the public REST API with an admin token.
//
// SECURITY: text from the server or the user reaches the DOM only through
// `textContent` and `createElement`; this file never parses HTML.

import {
  $, el, api, CHANNEL_RE, DEMO_USERS, JWT_RE, SUB_RE, VIDEO_RE, clockTime, dateTime, decodeJwt,
  isObject, mintDemoToken, pretty, showToast, summarize, videoTime,
} from './lib/util.js';

const STORAGE_TOKEN = 'danmaku.admin_token';
const PRESENCE_EVERY_MS = 3000;
const SCHEDULES_EVERY_MS = 5000;

const state = {
  token: sessionStorage.getItem(STORAGE_TOKEN) || null,
  me: null,
  videos: [],
  channels: [],
  /** Extra channels whose presence is watched. */
  watched: new Set(),
  schedulesAvailable: null,
  schedules: [],
};

const PRESETS = {
  notice: { event: 'notice', payload: { message: 'Maintenance at 02:00 UTC' } },
  order: { event: 'order', payload: { type: 1, orderId: 7, content: 'order 7 paid' } },
  drop: { event: 'drop', audience: 'members', payload: { title: 'Members-only drop', text: 'New episode early for members' } },
};

// ---------------------------------------------------------------------------------------
// Token

function setToken(token) {
  state.token = token || null;
  if (state.token) sessionStorage.setItem(STORAGE_TOKEN, state.token);
  else sessionStorage.removeItem(STORAGE_TOKEN);
}

function call(path, opts = {}) {
  return api(path, { ...opts, token: state.token });
}

function setStatus(text, tone = 'info') {
  const node = $('signin-status');
  node.hidden = !text;
  node.textContent = text || '';
  node.dataset.tone = tone;
}

async function whoAmI() {
  const badge = $('role-badge');
  if (!state.token) {
    state.me = null;
    badge.textContent = 'signed out';
    badge.dataset.role = 'guest';
    setStatus('Sign in as the demo admin, or paste an admin token, to use the console.', 'warn');
    return;
  }
  try {
    const me = await call('/api/me');
    state.me = me;
    badge.textContent = `${me.name || me.sub || 'api'} · ${me.role}`;
    badge.dataset.role = me.role;
    if (me.role !== 'admin') {
      setStatus(`This token is for a ${me.role}: admin calls will answer 403. Use an admin token.`, 'warn');
    } else {
      setStatus(`Signed in as ${me.sub} (admin).`, 'ok');
    }
  } catch (e) {
    state.me = null;
    badge.textContent = 'token refused';
    badge.dataset.role = 'guest';
    setStatus(`The server refused the token: ${e.code}: ${e.message}`, 'error');
  }
}

async function loginDemoAdmin() {
  try {
    const { token } = await mintDemoToken(DEMO_USERS.admin);
    setToken(token);
    await refreshAll();
  } catch (e) {
    setStatus(e.code === 'demo_disabled'
      ? 'Demo logins are off on this server (it does not run with --demo). Paste an admin JWT instead (danmaku token --sub you --role admin).'
      : `Demo login failed: ${e.code}: ${e.message}`, 'error');
  }
}

function applyPastedToken() {
  let raw = $('token-input').value.trim();
  raw = raw.replace(/^bearer\s+/i, '');
  if (!JWT_RE.test(raw)) {
    setStatus('That does not look like a JWT (three base64url parts separated by dots).', 'error');
    return;
  }
  const claims = decodeJwt(raw);
  $('token-input').value = '';
  setToken(raw);
  if (claims && claims.role !== 'admin') setStatus(`Note: the token claims role ${claims.role}.`, 'warn');
  refreshAll();
}

async function refreshAll() {
  await whoAmI();
  await Promise.all([loadVideos(), loadChannels(), loadSchedules()]);
  loadPresence();
  loadComments();
}

// ---------------------------------------------------------------------------------------
// JSON editors

function parseEditor(textarea, status) {
  try {
    const value = JSON.parse(textarea.value);
    status.dataset.ok = 'true';
    status.textContent = 'valid JSON';
    return { ok: true, value };
  } catch (e) {
    status.dataset.ok = 'false';
    status.textContent = `not JSON: ${e.message}`;
    return { ok: false };
  }
}

function watchEditor(textareaId, statusId) {
  const t = $(textareaId);
  const s = $(statusId);
  t.addEventListener('input', () => parseEditor(t, s));
  parseEditor(t, s);
}

// ---------------------------------------------------------------------------------------
// Targets (shared by pushes and schedules)

function syncTargetFields(kind, targetLabel, targetInput, roleLabel) {
  if (roleLabel) roleLabel.hidden = kind !== 'role';
  const needsText = kind === 'user' || kind === 'users' || kind === 'channel' || (!roleLabel && kind === 'role');
  targetLabel.hidden = !needsText;
  targetInput.placeholder = {
    user: 'user id, e.g. bob',
    users: 'ids, comma-separated: alice, bob',
    channel: 'e.g. video:demo or news',
    role: 'guest, free, member or admin',
  }[kind] || '';
}

function splitUsers(text) {
  return text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
}

// ---------------------------------------------------------------------------------------
// Push

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

// ---------------------------------------------------------------------------------------
// Schedules

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

async function loadSchedules() {
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
  const rows = state.schedules.map((s) => {
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
  });
  if (!rows.length) rows.push(el('tr', {}, el('td', { colspan: '9', class: 'muted', text: 'No schedules yet.' })));
  tbody.replaceChildren(...rows);
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

// ---------------------------------------------------------------------------------------
// Videos and channels

function tierSelect(value) {
  const select = el('select', { 'aria-label': 'tier' },
    ...['free', 'member', 'admin'].map((t) => el('option', { value: t, text: t })));
  select.value = value;
  return select;
}

async function loadVideos() {
  try {
    const list = await call('/api/videos');
    state.videos = Array.isArray(list) ? list : [];
  } catch (e) {
    state.videos = [];
    $('video-result').textContent = `Could not load videos: ${e.code}: ${e.message}`;
  }
  renderVideos();
  renderDatalists();
  loadPresence();
}

function renderVideos() {
  const tbody = $('video-table').tBodies[0];
  const rows = state.videos.map((v) => {
    const tier = tierSelect(v.tier);
    return el('tr', { dataset: { video: v.id, tier: v.tier } },
      el('td', { class: 'mono' }, el('a', { href: `/watch/${encodeURIComponent(v.id)}`, target: '_blank', rel: 'noopener', text: v.id })),
      el('td', { text: v.title }),
      el('td', {}, tier),
      el('td', { class: 'actions' },
        el('button', {
          type: 'button', class: 'btn btn-small', text: 'Save',
          onclick: () => saveVideo(v.id, v.title, tier.value),
        }),
        el('button', {
          type: 'button', class: 'btn btn-small', text: 'Comments',
          onclick: () => {
            $('comments-video').value = v.id;
            loadComments();
          },
        })));
  });
  if (!rows.length) rows.push(el('tr', {}, el('td', { colspan: '4', class: 'muted', text: 'The catalog is empty: add a video below.' })));
  tbody.replaceChildren(...rows);
}

async function saveVideo(id, title, tier) {
  const result = $('video-result');
  if (!VIDEO_RE.test(id)) {
    result.dataset.tone = 'error';
    result.textContent = 'Video ids are 1 to 64 letters, digits and - _ .';
    return;
  }
  try {
    const v = await call(`/api/videos/${encodeURIComponent(id)}`, { method: 'PUT', body: { title: title || id, tier } });
    result.dataset.tone = 'ok';
    result.textContent = `Saved ${v.id}: “${v.title}”, tier ${v.tier}.`;
    loadVideos();
  } catch (e) {
    result.dataset.tone = 'error';
    result.textContent = `${e.status || ''} ${e.code}: ${e.message}`;
  }
}

async function loadChannels() {
  try {
    const list = await call('/api/channels');
    state.channels = Array.isArray(list) ? list : [];
  } catch (e) {
    state.channels = [];
    $('channel-result').textContent = `Could not load channels: ${e.code}: ${e.message}`;
  }
  renderChannels();
  renderDatalists();
  loadPresence();
}

function renderChannels() {
  const tbody = $('channel-table').tBodies[0];
  const rows = state.channels.map((c) => {
    const tier = tierSelect(c.tier);
    return el('tr', { dataset: { channel: c.name, tier: c.tier } },
      el('td', { class: 'mono', text: c.name }),
      el('td', {}, tier),
      el('td', { class: 'actions' },
        el('button', { type: 'button', class: 'btn btn-small', text: 'Save', onclick: () => declareChannel(c.name, tier.value) }),
        el('button', { type: 'button', class: 'btn btn-small danger', text: 'Delete', onclick: () => deleteChannel(c.name) })));
  });
  if (!rows.length) rows.push(el('tr', {}, el('td', { colspan: '3', class: 'muted', text: 'No declared channels.' })));
  tbody.replaceChildren(...rows);
}

async function declareChannel(name, tier) {
  const result = $('channel-result');
  try {
    const c = await call(`/api/channels/${encodeURIComponent(name)}`, { method: 'PUT', body: { tier } });
    result.dataset.tone = 'ok';
    result.textContent = `Declared ${c.name} (${c.tier}).`;
    loadChannels();
  } catch (e) {
    result.dataset.tone = 'error';
    result.textContent = `${e.status || ''} ${e.code}: ${e.message}`;
  }
}

async function deleteChannel(name) {
  if (!window.confirm(`Remove the declaration of ${name}?`)) return;
  const result = $('channel-result');
  try {
    await call(`/api/channels/${encodeURIComponent(name)}`, { method: 'DELETE' });
    result.dataset.tone = 'ok';
    result.textContent = `Removed ${name}.`;
    loadChannels();
  } catch (e) {
    result.dataset.tone = 'error';
    result.textContent = `${e.status || ''} ${e.code}: ${e.message}`;
  }
}

function renderDatalists() {
  const names = new Set(['broadcast', 'video:demo']);
  for (const v of state.videos) names.add(`video:${v.id}`);
  for (const c of state.channels) names.add(c.name);
  $('channel-names').replaceChildren(...[...names].map((n) => el('option', { value: n })));
  $('video-ids').replaceChildren(...state.videos.map((v) => el('option', { value: v.id })));
}

// ---------------------------------------------------------------------------------------
// Presence

function presenceChannels() {
  const names = new Set(['video:demo']);
  for (const v of state.videos) names.add(`video:${v.id}`);
  for (const c of state.channels) names.add(c.name);
  for (const w of state.watched) names.add(w);
  return [...names];
}

let presenceLoad = 0;

async function loadPresence() {
  if (!state.token) return;
  const load = ++presenceLoad;
  const names = presenceChannels();
  const results = await Promise.all(names.map(async (name) => {
    try {
      return { name, p: await call(`/api/channels/${encodeURIComponent(name)}/presence`) };
    } catch (e) {
      return { name, error: e };
    }
  }));
  if (load !== presenceLoad) return;
  const tbody = $('presence-table').tBodies[0];
  tbody.replaceChildren(...results.map(({ name, p, error }) => {
    if (error) {
      return el('tr', { dataset: { channel: name } },
        el('td', { class: 'mono', text: name }),
        el('td', { colspan: '6', class: 'muted', text: `${error.code}: ${error.message}` }));
    }
    const r = p.by_role || {};
    return el('tr', { dataset: { channel: name, total: String(p.total) } },
      el('td', { class: 'mono', text: name }),
      el('td', { class: 'num strong', text: String(p.total) }),
      el('td', { class: 'num', text: String(r.guest ?? 0) }),
      el('td', { class: 'num', text: String(r.free ?? 0) }),
      el('td', { class: 'num', text: String(r.member ?? 0) }),
      el('td', { class: 'num', text: String(r.admin ?? 0) }),
      el('td', { text: Array.isArray(p.users) && p.users.length ? p.users.join(', ') : '–' }));
  }));
  $('presence-result').textContent = `Updated ${clockTime(Date.now()).slice(0, 8)}.`;
}

// ---------------------------------------------------------------------------------------
// Comments and moderation

async function loadComments(ev) {
  if (ev) ev.preventDefault();
  if (!state.token) return;
  const video = $('comments-video').value.trim();
  const status = $('comments-status');
  const tbody = $('comment-table').tBodies[0];
  if (!VIDEO_RE.test(video)) {
    status.dataset.tone = 'error';
    status.textContent = 'Enter a video id.';
    return;
  }
  try {
    const h = await call(`/api/videos/${encodeURIComponent(video)}/danmaku?limit=10000`);
    const items = (Array.isArray(h.items) ? h.items : []).slice().sort((a, b) => b.id - a.id).slice(0, 50);
    status.dataset.tone = 'info';
    status.textContent = `${h.count} stored comment(s) on ${video}; the 50 newest first.`;
    tbody.replaceChildren(...items.map((d) => commentRow(video, d)));
    if (!items.length) tbody.replaceChildren(el('tr', {}, el('td', { colspan: '8', class: 'muted', text: 'No comments yet.' })));
  } catch (e) {
    status.dataset.tone = 'error';
    status.textContent = `${e.status || ''} ${e.code}: ${e.message}`;
    tbody.replaceChildren();
  }
}

function commentRow(video, d) {
  const swatch = el('span', { class: 'color-dot', title: d.color });
  swatch.style.background = /^#[0-9a-f]{6}$/i.test(d.color) ? d.color : '#ffffff';
  const name = d.user && typeof d.user.name === 'string' ? d.user.name : '';
  return el('tr', { dataset: { id: String(d.id) } },
    el('td', { class: 'mono', text: String(d.id) }),
    el('td', { class: 'mono', text: videoTime(d.time) }),
    el('td', { class: 'comment-text', text: d.text }),
    el('td', {}, swatch, ` ${d.mode} · ${d.size}`),
    el('td', { text: d.audience }),
    el('td', { text: name }),
    el('td', { text: dateTime(d.created_at) }),
    el('td', { class: 'actions' },
      el('button', { type: 'button', class: 'btn btn-small danger', text: 'Delete', onclick: () => deleteComment(video, d) }),
      el('button', {
        type: 'button', class: 'btn btn-small', text: 'Mute…', title: 'Fill the mute form with this author',
        onclick: () => {
          $('mute-sub').value = name;
          $('mute-sub').focus();
        },
      })));
}

async function deleteComment(video, d) {
  const status = $('comments-status');
  try {
    await call(`/api/danmaku/${d.id}`, { method: 'DELETE' });
    status.dataset.tone = 'ok';
    status.textContent = `Deleted comment ${d.id}; open pages were told to remove it.`;
    loadComments();
  } catch (e) {
    status.dataset.tone = 'error';
    status.textContent = `${e.status || ''} ${e.code}: ${e.message}`;
  }
}

async function mute(ev) {
  ev.preventDefault();
  const sub = $('mute-sub').value.trim();
  const seconds = Number($('mute-seconds').value);
  const result = $('mute-result');
  if (!sub || sub.length > 128) {
    result.dataset.tone = 'error';
    result.textContent = 'Enter a user id.';
    return;
  }
  try {
    const r = await call(`/api/users/${encodeURIComponent(sub)}/mute`, { method: 'POST', body: { seconds } });
    result.dataset.tone = 'ok';
    result.textContent = r.until ? `${r.sub} is muted until ${dateTime(r.until)}.` : `${r.sub} is not muted any more.`;
  } catch (e) {
    result.dataset.tone = 'error';
    result.textContent = `${e.status || ''} ${e.code}: ${e.message}`;
  }
}

// ---------------------------------------------------------------------------------------
// Wiring

function init() {
  $('login-admin').addEventListener('click', loginDemoAdmin);
  $('logout').addEventListener('click', () => {
    setToken(null);
    whoAmI();
  });
  $('token-apply').addEventListener('click', applyPastedToken);

  watchEditor('push-payload', 'push-payload-status');
  watchEditor('sched-payload', 'sched-payload-status');
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

  $('sched-how').addEventListener('change', syncScheduleForm);
  $('sched-kind').addEventListener('change', syncScheduleForm);
  syncScheduleForm();
  $('schedule-form').addEventListener('submit', createSchedule);
  $('schedules-reload').addEventListener('click', loadSchedules);

  $('videos-reload').addEventListener('click', loadVideos);
  $('video-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    saveVideo($('video-id').value.trim(), $('video-title-input').value.trim(), $('video-tier').value);
  });
  $('channels-reload').addEventListener('click', loadChannels);
  $('channel-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const name = $('channel-name').value.trim();
    if (!CHANNEL_RE.test(name)) {
      $('channel-result').dataset.tone = 'error';
      $('channel-result').textContent = 'Channel names are 1 to 128 letters, digits and - _ . : @';
      return;
    }
    declareChannel(name, $('channel-tier').value);
  });

  $('presence-reload').addEventListener('click', loadPresence);
  $('presence-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const name = $('presence-channel').value.trim();
    if (!CHANNEL_RE.test(name)) return;
    state.watched.add(name);
    $('presence-channel').value = '';
    loadPresence();
  });
  setInterval(() => {
    if ($('presence-auto').checked && state.token) loadPresence();
  }, PRESENCE_EVERY_MS);
  setInterval(() => {
    if (state.token && state.schedulesAvailable) loadSchedules();
  }, SCHEDULES_EVERY_MS);

  $('comments-form').addEventListener('submit', loadComments);
  $('mute-form').addEventListener('submit', mute);

  refreshAll();
}

init();

globalThis.danmakuAdmin = { state, refreshAll };
