// Admin console: review and hidden moderation of the Moderation panel's video (the
// picker, #comments-video). Owns
//
//   - the review queue, oldest first, of the video or (admins) of every video
//     (GET /api/moderation/queue, paged with next_after_id), and approving or rejecting
//     a held comment with an optional reason (POST /api/danmaku/{id}/approve|reject);
//   - shadow bans (GET / PUT /api/moderation/shadow-bans, lifting one with
//     DELETE /api/moderation/shadow-bans/{sub}?video=&reason=): in this video, or
//     everywhere for admins;
//   - the block rules editor of the video or (admins) of the global set
//     (GET / PUT / DELETE /api/moderation/rules): rows of kind, pattern and action, saved
//     as a whole; a refusal (422 invalid_pattern, 413 too_many_rules) shows the server's
//     message, which names the rule;
//   - the video's hold rule (GET / PUT / DELETE /api/videos/{id}/hold): whose comments
//     wait for review.
//
// Like static/admin/moderation.js, a room moderator (GET /api/me → moderates) only
// reaches their videos: the "every video" and "global" choices are disabled for them.
// Every refusal shows inline as "prefix: code: message", the prefix translated.
//
// SECURITY: text reaches the DOM through `el` (textContent, createElement) only.

import { $, el, VIDEO_RE, dateTime, videoTime } from '../lib/util.js';
import { localize, onLocaleChange, t, tValue } from '../lib/i18n.js';
import { call, state } from './state.js';
import { refreshModeration } from './moderation.js';

const QUEUE_PAGE = 50;
const MAX_SUB = 128;
const KINDS = ['word', 'regex'];
const ACTIONS = ['refuse', 'hold', 'shadow'];
const ROLES = ['free', 'member'];

const enc = encodeURIComponent;

/** What is on show (null: nothing loaded), to redraw after a language switch. */
let queue = null; // {scope: video | null (all), items, next}
let bans = null; // {video, list}
let rules = null; // {scope: video | null (global), rows: [{kind, pattern, action}], by, at}
let hold = null; // {video, rule: {roles, set_by, set_at} | null}

function codeMessage(e) {
  return `${e.code}: ${e.message}`;
}

function say(node, tone, render) {
  node.dataset.tone = tone;
  localize(node, render);
}

function isAdmin() {
  return !!state.me && state.me.role === 'admin';
}

/** The picker's video id, or null (and says so in `status`) when it is not one. */
function pickedVideo(status) {
  const video = $('comments-video').value.trim();
  if (VIDEO_RE.test(video)) return video;
  if (status) say(status, 'error', () => t('admin.comments.need_video'));
  return null;
}

function emptyRow(cols, text) {
  return el('tr', { class: 'empty' }, el('td', { colspan: String(cols), class: 'muted', text }));
}

// ---------------------------------------------------------------------------------------
// Who the caller is: the admin-only choices

function renderRole() {
  const admin = isAdmin();
  for (const select of [$('queue-view'), $('shadow-scope'), $('rules-scope')]) {
    const all = select.querySelector('option[value="all"]');
    all.disabled = !admin;
    if (admin) all.removeAttribute('title');
    else all.title = t('admin.moderation.admin_only');
    if (!admin && select.value === 'all') select.value = 'video';
  }
}

/** Loads the queue, shadow bans, rules and hold rule of the picked video (after a sign-in or a Load). */
export async function loadReview() {
  if (!state.token) return;
  renderRole();
  const video = pickedVideo(null);
  await Promise.all([loadQueue(), video ? loadBans(video) : null, loadRules(), video ? loadHold(video) : null]);
}

// ---------------------------------------------------------------------------------------
// The review queue

/** null: every video (admins); undefined: no valid video picked. */
function queueScope() {
  return $('queue-view').value === 'all' && isAdmin() ? null : (pickedVideo(null) ?? undefined);
}

/** The first page of the queue (`more`: the next page); `keepStatus` keeps the result line (after a review). */
async function loadQueue(more = false, keepStatus = false) {
  const result = $('queue-result');
  const scope = queueScope();
  if (scope === undefined) return;
  if (more && (!queue || queue.scope !== scope || queue.next == null)) return;
  const q = new URLSearchParams({ limit: String(QUEUE_PAGE) });
  if (scope !== null) q.set('video', scope);
  if (more) q.set('after_id', String(queue.next));
  try {
    const page = await call(`/api/moderation/queue?${q}`);
    if (queueScope() !== scope) return;
    const items = Array.isArray(page.items) ? page.items : [];
    queue = { scope, items: more ? queue.items.concat(items) : items, next: page.next_after_id ?? null };
    if (!more && !keepStatus) localize(result, null);
  } catch (e) {
    if (queueScope() !== scope) return;
    if (!more) queue = null;
    say(result, 'error', () => t('admin.queue.load_failed', { error: codeMessage(e) }));
  }
  renderQueue();
}

function renderQueue() {
  const tbody = $('queue-table').tBodies[0];
  const more = $('queue-more');
  if (!queue) {
    tbody.replaceChildren();
    more.hidden = true;
    return;
  }
  tbody.replaceChildren(...queue.items.map((item) => {
    const d = item.danmaku || {};
    return el('tr', { dataset: { id: String(d.id), video: String(d.video) } },
      el('td', { class: 'mono', text: String(d.id) }),
      el('td', { class: 'mono', text: String(d.video) }),
      el('td', { class: 'mono', text: videoTime(d.time) }),
      el('td', { class: 'comment-text', text: String(d.text ?? '') }),
      el('td', { class: 'mono', text: String(item.author ?? '') }),
      el('td', { text: dateTime(d.created_at) }),
      el('td', { class: 'actions' },
        el('button', { type: 'button', class: 'btn btn-small btn-primary', dataset: { review: 'approve' }, text: t('admin.queue.approve'), onclick: () => review(d, 'approve') }),
        el('button', { type: 'button', class: 'btn btn-small danger', dataset: { review: 'reject' }, text: t('admin.queue.reject'), onclick: () => review(d, 'reject') }),
        el('button', {
          type: 'button', class: 'btn btn-small', text: t('admin.queue.shadow'), title: t('admin.queue.shadow_title'),
          onclick: () => {
            $('shadow-sub').value = String(item.author ?? '');
            $('shadow-sub').focus();
          },
        })));
  }));
  if (!queue.items.length) {
    tbody.replaceChildren(emptyRow(7, queue.scope === null ? t('admin.queue.none_all') : t('admin.queue.none', { video: queue.scope })));
  }
  more.hidden = queue.next == null;
}

/**
 * Approves or rejects a held comment (`verdict`: 'approve' | 'reject'), the optional reason
 * in the query (no body); resolves with `{id, state}`. Also used by the Reports list.
 */
export function reviewDanmaku(id, verdict, reason) {
  const query = reason ? `?reason=${enc(reason)}` : '';
  return call(`/api/danmaku/${enc(id)}/${verdict}${query}`, { method: 'POST' });
}

/** The queue again, keeping its result line (after a review elsewhere: the Reports list). */
export function reloadQueue() {
  return loadQueue(false, true);
}

async function review(d, verdict) {
  const result = $('queue-result');
  const reason = $('queue-reason').value.trim();
  try {
    const r = await reviewDanmaku(d.id, verdict, reason);
    const id = r && Number.isSafeInteger(r.id) ? r.id : d.id;
    say(result, 'ok', () => (r && r.state === 'rejected' ? t('admin.queue.rejected', { id }) : t('admin.queue.approved', { id })));
  } catch (e) {
    say(result, 'error', () => t('admin.queue.review_failed', { id: d.id, error: codeMessage(e) }));
  }
  await Promise.all([loadQueue(false, true), refreshModeration()]);
}

// ---------------------------------------------------------------------------------------
// Shadow bans

async function loadBans(video) {
  const result = $('shadow-bans-result');
  try {
    // Admins read every ban, to show the ones everywhere beside the video's own.
    const all = isAdmin();
    const list = await call(all ? '/api/moderation/shadow-bans' : `/api/moderation/shadow-bans?video=${enc(video)}`);
    if (pickedVideo(null) !== video) return;
    bans = { video, list: (Array.isArray(list) ? list : []).filter((b) => b.video === video || (all && b.video == null)) };
    localize(result, null);
  } catch (e) {
    if (pickedVideo(null) !== video) return;
    bans = null;
    say(result, 'error', () => t('admin.shadow.load_failed', { error: codeMessage(e) }));
  }
  renderBans();
}

function renderBans() {
  const tbody = $('shadow-table').tBodies[0];
  if (!bans) {
    tbody.replaceChildren();
    return;
  }
  const admin = isAdmin();
  tbody.replaceChildren(...bans.list.map((b) => {
    const everywhere = b.video == null;
    const allowed = admin || !everywhere;
    return el('tr', { dataset: { sub: b.sub, scope: everywhere ? 'all' : 'video' } },
      el('td', { class: 'mono', text: b.sub }),
      el('td', { text: everywhere ? t('admin.mutes.scope_all') : t('admin.mutes.scope_video') }),
      el('td', { text: dateTime(b.until) }),
      el('td', { class: 'comment-text', text: b.reason || '–' }),
      el('td', { class: 'mono', text: b.by }),
      el('td', { class: 'actions' },
        el('button', {
          type: 'button', class: 'btn btn-small', text: t('admin.shadow.lift'),
          disabled: !allowed, title: allowed ? t('admin.shadow.lift_title') : t('admin.moderation.admin_only'),
          onclick: () => liftBan(b.sub, everywhere ? null : b.video),
        })));
  }));
  if (!bans.list.length) tbody.replaceChildren(emptyRow(6, t('admin.shadow.none', { video: bans.video })));
}

async function shadowBan(ev) {
  ev.preventDefault();
  const result = $('shadow-result');
  const sub = $('shadow-sub').value.trim();
  const everywhere = $('shadow-scope').value === 'all';
  const seconds = Number($('shadow-seconds').value);
  const reason = $('shadow-reason').value.trim();
  if (!sub || sub.length > MAX_SUB) {
    say(result, 'error', () => t('admin.mute.need_user'));
    return;
  }
  const video = everywhere ? null : pickedVideo(result);
  if (!everywhere && !video) return;
  try {
    const b = await call('/api/moderation/shadow-bans', { method: 'PUT', body: { sub, video, seconds, reason: reason || null } });
    say(result, 'ok', () => (b.video
      ? t('admin.shadow.until_video', { sub: b.sub, until: dateTime(b.until), video: b.video })
      : t('admin.shadow.until_all', { sub: b.sub, until: dateTime(b.until) })));
    $('shadow-sub').value = '';
  } catch (e) {
    say(result, 'error', () => t('admin.shadow.failed', { error: codeMessage(e) }));
  }
  const now = pickedVideo(null);
  if (now) await loadBans(now);
  await refreshModeration();
}

async function liftBan(sub, video) {
  const result = $('shadow-bans-result');
  const reason = $('shadow-reason').value.trim();
  const q = new URLSearchParams();
  if (video) q.set('video', video);
  if (reason) q.set('reason', reason);
  const qs = q.toString();
  let done;
  try {
    await call(`/api/moderation/shadow-bans/${enc(sub)}${qs ? `?${qs}` : ''}`, { method: 'DELETE' });
    done = () => (video ? t('admin.shadow.lifted_video', { sub, video }) : t('admin.shadow.lifted_all', { sub }));
  } catch (e) {
    done = () => t('admin.shadow.lift_failed', { error: codeMessage(e) });
    say(result, 'error', done);
    return;
  }
  // The list again first: a load clears the result line.
  const now = pickedVideo(null);
  if (now) await loadBans(now);
  say(result, 'ok', done);
  await refreshModeration();
}

// ---------------------------------------------------------------------------------------
// Block rules

/** null: the global set (admins); undefined: no valid video picked. */
function rulesScope() {
  return $('rules-scope').value === 'all' && isAdmin() ? null : (pickedVideo(null) ?? undefined);
}

async function loadRules() {
  const result = $('rules-result');
  const scope = rulesScope();
  if (scope === undefined) return;
  try {
    const set = await call(scope === null ? '/api/moderation/rules' : `/api/moderation/rules?video=${enc(scope)}`);
    if (rulesScope() !== scope) return;
    const rows = (Array.isArray(set.rules) ? set.rules : []).map((r) => ({ kind: r.kind, pattern: r.pattern, action: r.action }));
    rules = { scope, rows, by: set.set_by || '', at: Number(set.set_at) || 0 };
    localize(result, null);
  } catch (e) {
    if (rulesScope() !== scope) return;
    rules = null;
    say(result, 'error', () => t('admin.rules.load_failed', { error: codeMessage(e) }));
  }
  renderRules();
}

function options(values, label, selected) {
  return values.map((v) => el('option', { value: v, selected: v === selected, text: label(v) }));
}

function renderRules() {
  const tbody = $('rules-table').tBodies[0];
  const meta = $('rules-meta');
  const editable = !!rules;
  for (const id of ['rules-add', 'rules-save', 'rules-clear']) $(id).disabled = !editable;
  if (!rules) {
    tbody.replaceChildren();
    meta.textContent = '';
    return;
  }
  const where = rules.scope === null ? t('admin.rules.global') : rules.scope;
  meta.textContent = rules.at
    ? t('admin.rules.meta', { scope: where, n: rules.rows.length, by: rules.by, at: dateTime(rules.at) })
    : t('admin.rules.meta_never', { scope: where });
  tbody.replaceChildren(...rules.rows.map((row, i) => el('tr', { dataset: { index: String(i) } },
    el('td', {},
      el('select', {
        class: 'rule-kind', 'aria-label': t('admin.col.kind'),
        onchange: (ev) => {
          row.kind = ev.target.value;
        },
      }, ...options(KINDS, (v) => tValue('admin.rules.kind.', v), row.kind))),
    el('td', {},
      el('input', {
        type: 'text', class: 'rule-pattern', value: row.pattern, maxlength: '200', spellcheck: 'false',
        'aria-label': t('admin.col.pattern'), placeholder: t('admin.rules.pattern_placeholder'),
        oninput: (ev) => {
          row.pattern = ev.target.value;
        },
      })),
    el('td', {},
      el('select', {
        class: 'rule-action', 'aria-label': t('admin.col.rule_action'),
        onchange: (ev) => {
          row.action = ev.target.value;
        },
      }, ...options(ACTIONS, (v) => tValue('admin.rules.action.', v), row.action))),
    el('td', { class: 'actions' },
      el('button', {
        type: 'button', class: 'btn btn-small', text: t('admin.rules.remove'),
        onclick: () => {
          rules.rows.splice(i, 1);
          renderRules();
        },
      })))));
  if (!rules.rows.length) tbody.replaceChildren(emptyRow(4, t('admin.rules.none')));
}

async function saveRules(ev) {
  ev.preventDefault();
  const result = $('rules-result');
  if (!rules) return;
  const scope = rules.scope;
  const reason = $('rules-reason').value.trim();
  const body = { video: scope, rules: rules.rows.map((r) => ({ kind: r.kind, pattern: r.pattern, action: r.action })), reason: reason || null };
  try {
    const set = await call('/api/moderation/rules', { method: 'PUT', body });
    const n = Array.isArray(set.rules) ? set.rules.length : 0;
    await loadRules();
    say(result, 'ok', () => t('admin.rules.saved', { n, scope: scope === null ? t('admin.rules.global') : scope }));
  } catch (e) {
    // 422 invalid_pattern names the rule in its message; 413 too_many_rules says the cap.
    say(result, 'error', () => t('admin.rules.failed', { error: codeMessage(e) }));
  }
  refreshModeration();
}

async function clearRules() {
  const result = $('rules-result');
  if (!rules) return;
  const scope = rules.scope;
  const q = new URLSearchParams();
  if (scope !== null) q.set('video', scope);
  const reason = $('rules-reason').value.trim();
  if (reason) q.set('reason', reason);
  const qs = q.toString();
  try {
    await call(`/api/moderation/rules${qs ? `?${qs}` : ''}`, { method: 'DELETE' });
    await loadRules();
    say(result, 'ok', () => t('admin.rules.cleared', { scope: scope === null ? t('admin.rules.global') : scope }));
  } catch (e) {
    say(result, 'error', () => t('admin.rules.clear_failed', { error: codeMessage(e) }));
  }
  refreshModeration();
}

// ---------------------------------------------------------------------------------------
// The hold rule

async function loadHold(video) {
  const result = $('hold-result');
  try {
    const rule = await call(`/api/videos/${enc(video)}/hold`);
    if (pickedVideo(null) !== video) return;
    // 204: nothing is held in this video.
    hold = { video, rule: rule && Array.isArray(rule.roles) ? rule : null };
    localize(result, null);
  } catch (e) {
    if (pickedVideo(null) !== video) return;
    hold = null;
    say(result, 'error', () => t('admin.hold.load_failed', { error: codeMessage(e) }));
  }
  renderHold(true);
}

/** The state line; with `boxes`, the checkboxes follow the stored rule too. */
function renderHold(boxes = false) {
  const line = $('hold-state');
  for (const id of ['hold-save', 'hold-clear']) $(id).disabled = !hold;
  if (!hold) {
    line.textContent = '';
    return;
  }
  const roles = hold.rule ? hold.rule.roles : [];
  if (boxes) for (const role of ROLES) $(`hold-${role}`).checked = roles.includes(role);
  line.dataset.held = roles.join(' ');
  line.textContent = hold.rule
    ? t('admin.hold.state', {
      video: hold.video, roles: roles.map((r) => tValue('common.role.', r)).join(', '), by: hold.rule.set_by, at: dateTime(hold.rule.set_at),
    })
    : t('admin.hold.state_none', { video: hold.video });
}

async function saveHold(ev) {
  ev.preventDefault();
  const result = $('hold-result');
  const video = pickedVideo(result);
  if (!video) return;
  const roles = ROLES.filter((r) => $(`hold-${r}`).checked);
  try {
    await call(`/api/videos/${enc(video)}/hold`, { method: 'PUT', body: { roles } });
  } catch (e) {
    say(result, 'error', () => t('admin.hold.failed', { error: codeMessage(e) }));
    return;
  }
  // The rule again first: a load clears the result line.
  await loadHold(video);
  say(result, 'ok', () => t('admin.hold.saved', { video }));
  refreshModeration();
}

async function clearHold() {
  const result = $('hold-result');
  const video = pickedVideo(result);
  if (!video) return;
  try {
    await call(`/api/videos/${enc(video)}/hold`, { method: 'DELETE' });
  } catch (e) {
    say(result, 'error', () => t('admin.hold.failed', { error: codeMessage(e) }));
    return;
  }
  await loadHold(video);
  say(result, 'ok', () => t('admin.hold.cleared', { video }));
  refreshModeration();
}

// ---------------------------------------------------------------------------------------

function renderAll() {
  renderRole();
  renderQueue();
  renderBans();
  renderRules();
  renderHold();
}

/** Wires the queue, shadow ban, rules and hold controls (and the panel's picker). */
export function wireReview() {
  $('comments-form').addEventListener('submit', () => loadReview());
  $('queue-view').addEventListener('change', () => loadQueue());
  $('queue-reload').addEventListener('click', () => loadQueue());
  $('queue-more').addEventListener('click', () => loadQueue(true));
  $('shadow-form').addEventListener('submit', shadowBan);
  $('rules-scope').addEventListener('change', () => loadRules());
  $('rules-add').addEventListener('click', () => {
    if (!rules) return;
    rules.rows.push({ kind: 'word', pattern: '', action: 'refuse' });
    renderRules();
    const inputs = document.querySelectorAll('#rules-table .rule-pattern');
    if (inputs.length) inputs[inputs.length - 1].focus();
  });
  $('rules-form').addEventListener('submit', saveRules);
  $('rules-clear').addEventListener('click', clearRules);
  $('hold-form').addEventListener('submit', saveHold);
  $('hold-clear').addEventListener('click', clearHold);
  renderRules();
  renderHold();
  onLocaleChange(renderAll);
}
