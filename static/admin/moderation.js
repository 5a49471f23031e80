// Admin console: moderation of one video (the picker of the panel, #comments-video). Owns
//
//   - the video's stored comments (the 50 newest), deleting one with an optional reason
//     (DELETE /api/danmaku/{id}?reason=; open pages are told to remove it; `deleteDanmaku`
//     is the call, shared with the Reports list);
//   - its room moderators (GET, and for admins PUT / DELETE /api/videos/{id}/moderators/{sub});
//   - the mutes in force there (GET /api/moderation/mutes; admins also see the mutes
//     everywhere), lifting one (DELETE /api/moderation/mutes/{sub}?video=&reason=), and
//     the mute form (PUT /api/moderation/mutes: this video, or everywhere for admins);
//   - the audit log, newest first, of the video or (admins) of every video, paged with
//     next_before_id (GET /api/moderation/audit).
//
// The review queue, shadow bans, block rules and the hold rule of the same video are
// static/admin/review.js.
//
// Admins moderate every video; a room moderator (GET /api/me → moderates) only theirs:
// the admin-only controls are disabled for them, with a note saying why. Every refusal
// shows inline as "prefix: code: message", the prefix translated, the rest the server's.
//
// SECURITY: text reaches the DOM through `el` (textContent, createElement) only.

import { $, el, VIDEO_RE, dateTime, videoTime } from '../lib/util.js';
import { formatNumber, localize, onLocaleChange, t, tValue } from '../lib/i18n.js';
import { call, state } from './state.js';

/** Audit entries per page ("Older" fetches the next). */
const AUDIT_PAGE = 20;
const MAX_SUB = 128;

/** The video the panel shows, set by a load. */
let current = null;
/** What is on show, to redraw after a language switch (null: nothing loaded). */
let shown = null; // comments: {video, items}
let moderators = null; // {video, list}
let mutes = null; // {video, list}
let audit = null; // {scope: video id | null (all), items, next}

const enc = encodeURIComponent;

/** A failed call as the panel shows it after a translated prefix: `code: message`. */
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

function moderated() {
  return state.me && Array.isArray(state.me.moderates) ? state.me.moderates : [];
}

/** The picker's video id, or null (and says so in `status`) when it is not one. */
function pickedVideo(status) {
  const video = $('comments-video').value.trim();
  if (VIDEO_RE.test(video)) return video;
  if (status) say(status, 'error', () => t('admin.comments.need_video'));
  return null;
}

// ---------------------------------------------------------------------------------------
// Who the caller is: admin-only controls, the note, the picker's first video

/** After a sign-in: a room moderator's picker starts on a video they moderate. */
export function applyModerationRole() {
  const mine = moderated();
  const input = $('comments-video');
  if (!isAdmin() && mine.length && !mine.includes(input.value.trim())) input.value = mine[0];
  renderRole();
}

function renderRole() {
  const admin = isAdmin();
  const note = $('moderation-role');
  if (!state.me || admin) {
    note.hidden = true;
    localize(note, null);
  } else {
    note.hidden = false;
    const mine = moderated();
    if (mine.length) say(note, 'info', () => t('admin.moderation.role_moderator', { videos: mine.join(', ') }));
    else say(note, 'warn', () => t('admin.moderation.role_none'));
  }
  $('moderators-note').hidden = admin;
  $('moderator-sub').disabled = !admin;
  $('moderator-add').disabled = !admin;
  for (const select of [$('mute-scope'), $('audit-view')]) {
    const all = select.querySelector('option[value="all"]');
    all.disabled = !admin;
    if (!admin && select.value === 'all') select.value = 'video';
  }
  const why = admin ? null : t('admin.moderation.admin_only');
  for (const node of [$('moderator-add'), $('mute-scope').querySelector('option[value="all"]'), $('audit-view').querySelector('option[value="all"]')]) {
    if (why) node.title = why;
    else node.removeAttribute('title');
  }
}

// ---------------------------------------------------------------------------------------
// Loading

/** Loads the picked video's comments, moderators, mutes and audit log (also the picker's submit handler). */
export async function loadComments(ev) {
  if (ev) ev.preventDefault();
  if (!state.token) return;
  renderRole();
  const video = pickedVideo($('comments-status'));
  if (!video) return;
  current = video;
  await Promise.all([loadCommentList(video), loadModerators(video), loadMutes(video), loadAudit()]);
}

async function loadCommentList(video, keepStatus = false) {
  const status = $('comments-status');
  try {
    const h = await call(`/api/videos/${enc(video)}/danmaku?limit=10000`);
    if (video !== current) return;
    const items = (Array.isArray(h.items) ? h.items : []).slice().sort((a, b) => b.id - a.id).slice(0, 50);
    if (!keepStatus) say(status, 'info', () => t('admin.comments.summary', { count: formatNumber(h.count), video }));
    shown = { video, items };
  } catch (e) {
    if (video !== current) return;
    say(status, 'error', () => t('admin.comments.load_failed', { error: codeMessage(e) }));
    shown = null;
  }
  renderComments();
}

async function loadModerators(video) {
  const result = $('moderators-result');
  try {
    const list = await call(`/api/videos/${enc(video)}/moderators`);
    if (video !== current) return;
    moderators = { video, list: Array.isArray(list) ? list : [] };
    localize(result, null);
  } catch (e) {
    if (video !== current) return;
    moderators = null;
    say(result, 'error', () => t('admin.moderators.load_failed', { error: codeMessage(e) }));
  }
  renderModerators();
}

async function loadMutes(video) {
  const result = $('mutes-result');
  try {
    // Admins read every mute, to show the ones everywhere beside the video's own.
    const all = isAdmin();
    const list = await call(all ? '/api/moderation/mutes' : `/api/moderation/mutes?video=${enc(video)}`);
    if (video !== current) return;
    const items = (Array.isArray(list) ? list : []).filter((m) => m.video === video || (all && m.video == null));
    mutes = { video, list: items };
    localize(result, null);
  } catch (e) {
    if (video !== current) return;
    mutes = null;
    say(result, 'error', () => t('admin.mutes.load_failed', { error: codeMessage(e) }));
  }
  renderMutes();
}

/** The first page of the audit log in the chosen view, or (`older`) the next page. */
async function loadAudit(older = false) {
  const result = $('audit-result');
  const all = $('audit-view').value === 'all' && isAdmin();
  if (!all && !current) return;
  const scope = all ? null : current;
  if (older && (!audit || audit.scope !== scope || audit.next == null)) return;
  const q = new URLSearchParams({ limit: String(AUDIT_PAGE) });
  if (scope !== null) q.set('video', scope);
  if (older) q.set('before_id', String(audit.next));
  const viewNow = () => ($('audit-view').value === 'all' && isAdmin() ? null : current);
  try {
    const page = await call(`/api/moderation/audit?${q}`);
    if (viewNow() !== scope) return;
    const items = Array.isArray(page.items) ? page.items : [];
    audit = { scope, items: older ? audit.items.concat(items) : items, next: page.next_before_id ?? null };
    localize(result, null);
  } catch (e) {
    if (viewNow() !== scope) return;
    if (!older) audit = null;
    say(result, 'error', () => t('admin.audit.load_failed', { error: codeMessage(e) }));
  }
  renderAudit();
}

// ---------------------------------------------------------------------------------------
// Drawing

function emptyRow(cols, text) {
  return el('tr', { class: 'empty' }, el('td', { colspan: String(cols), class: 'muted', text }));
}

function renderComments() {
  const tbody = $('comment-table').tBodies[0];
  if (!shown) {
    tbody.replaceChildren();
    return;
  }
  const { video, items } = shown;
  tbody.replaceChildren(...items.map((d) => commentRow(video, d)));
  if (!items.length) tbody.replaceChildren(emptyRow(8, t('admin.comments.none')));
}

function commentRow(video, d) {
  const swatch = el('span', { class: 'color-dot', title: d.color });
  swatch.style.background = /^#[0-9a-f]{6}$/i.test(d.color) ? d.color : '#ffffff';
  const name = d.user && typeof d.user.name === 'string' ? d.user.name : '';
  return el('tr', { dataset: { id: String(d.id) } },
    el('td', { class: 'mono', text: String(d.id) }),
    el('td', { class: 'mono', text: videoTime(d.time) }),
    el('td', { class: 'comment-text' }, d.text, stateBadge(d.state)),
    el('td', {}, swatch, ` ${tValue('common.mode.', d.mode)} · ${tValue('common.size.', d.size)}`),
    el('td', { text: tValue('common.audience.', d.audience) }),
    el('td', { text: name }),
    el('td', { text: dateTime(d.created_at) }),
    el('td', { class: 'actions' },
      el('button', {
        type: 'button', class: 'btn btn-small danger', text: t('common.delete'), title: t('admin.comments.delete_title'),
        onclick: () => deleteComment(video, d),
      }),
      el('button', {
        type: 'button', class: 'btn btn-small', text: t('admin.comments.mute'), title: t('admin.comments.mute_title'),
        onclick: () => {
          $('mute-sub').value = name;
          $('mute-sub').focus();
        },
      })));
}

/** A hidden comment's mark (held for review, shadowed); null for visible ones. */
function stateBadge(hidden) {
  if (hidden === 'held') return el('span', { class: 'comment-badge', dataset: { badge: 'held' }, text: t('comments.badge_held') });
  if (hidden === 'shadow') return el('span', { class: 'comment-badge', dataset: { badge: 'shadow' }, text: t('comments.badge_shadow') });
  return null;
}

function renderModerators() {
  const tbody = $('moderator-table').tBodies[0];
  if (!moderators) {
    tbody.replaceChildren();
    return;
  }
  const { video, list } = moderators;
  const admin = isAdmin();
  tbody.replaceChildren(...list.map((g) => el('tr', { dataset: { sub: g.sub } },
    el('td', { class: 'mono', text: g.sub }),
    el('td', { class: 'mono', text: g.by }),
    el('td', { text: dateTime(g.granted_at) }),
    el('td', { class: 'actions' },
      el('button', {
        type: 'button', class: 'btn btn-small danger', text: t('admin.moderators.remove'),
        disabled: !admin, title: admin ? null : t('admin.moderation.admin_only'),
        onclick: () => removeModerator(video, g.sub),
      })))));
  if (!list.length) tbody.replaceChildren(emptyRow(4, t('admin.moderators.none', { video })));
}

function renderMutes() {
  const tbody = $('mute-table').tBodies[0];
  if (!mutes) {
    tbody.replaceChildren();
    return;
  }
  const { video, list } = mutes;
  const admin = isAdmin();
  tbody.replaceChildren(...list.map((m) => {
    const everywhere = m.video == null;
    const allowed = admin || !everywhere;
    return el('tr', { dataset: { sub: m.sub, scope: everywhere ? 'all' : 'video' } },
      el('td', { class: 'mono', text: m.sub }),
      el('td', { text: everywhere ? t('admin.mutes.scope_all') : t('admin.mutes.scope_video') }),
      el('td', { text: dateTime(m.until) }),
      el('td', { class: 'comment-text', text: m.reason || '–' }),
      el('td', { class: 'mono', text: m.by }),
      el('td', { class: 'actions' },
        el('button', {
          type: 'button', class: 'btn btn-small', text: t('admin.mutes.lift'),
          disabled: !allowed, title: allowed ? t('admin.mutes.lift_title') : t('admin.moderation.admin_only'),
          onclick: () => lift(m.sub, everywhere ? null : m.video, $('mutes-result')),
        })));
  }));
  if (!list.length) tbody.replaceChildren(emptyRow(6, t('admin.mutes.none', { video })));
}

function actionText(action) {
  switch (action) {
    case 'moderator_added': return t('admin.audit.action.moderator_added');
    case 'moderator_removed': return t('admin.audit.action.moderator_removed');
    case 'comment_deleted': return t('admin.audit.action.comment_deleted');
    case 'user_muted': return t('admin.audit.action.user_muted');
    case 'user_unmuted': return t('admin.audit.action.user_unmuted');
    case 'user_shadow_banned': return t('admin.audit.action.user_shadow_banned');
    case 'user_shadow_unbanned': return t('admin.audit.action.user_shadow_unbanned');
    case 'block_rules_set': return t('admin.audit.action.block_rules_set');
    case 'block_rules_cleared': return t('admin.audit.action.block_rules_cleared');
    case 'hold_rule_set': return t('admin.audit.action.hold_rule_set');
    case 'hold_rule_cleared': return t('admin.audit.action.hold_rule_cleared');
    case 'comment_approved': return t('admin.audit.action.comment_approved');
    case 'comment_rejected': return t('admin.audit.action.comment_rejected');
    case 'hidden_by_reports': return t('admin.audit.action.hidden_by_reports');
    default: return String(action);
  }
}

function detailText(item) {
  const d = item.detail && typeof item.detail === 'object' ? item.detail : {};
  if (item.action === 'comment_deleted' && typeof d.text === 'string') {
    return t('admin.audit.detail_comment', { text: d.text, author: String(d.author ?? '?') });
  }
  if (item.action === 'user_muted' && Number.isFinite(d.until)) return t('admin.audit.detail_mute', { until: dateTime(d.until) });
  return '';
}

function renderAudit() {
  const tbody = $('audit-table').tBodies[0];
  const older = $('audit-older');
  if (!audit) {
    tbody.replaceChildren();
    older.hidden = true;
    return;
  }
  tbody.replaceChildren(...audit.items.map((a) => el('tr', { dataset: { id: String(a.id), action: a.action } },
    el('td', { text: dateTime(a.at) }),
    el('td', { class: 'actor' },
      el('span', { class: 'mono', text: a.actor }),
      ` · ${a.actor_role === 'moderator' ? t('admin.audit.role_moderator') : tValue('common.role.', a.actor_role)}`),
    el('td', { text: actionText(a.action) }),
    a.video == null ? el('td', { text: t('admin.mutes.scope_all') }) : el('td', { class: 'mono', text: a.video }),
    el('td', { class: 'mono', text: a.target }),
    el('td', { class: 'comment-text', text: a.reason || '–' }),
    el('td', { class: 'comment-text', text: detailText(a) }))));
  if (!audit.items.length) {
    tbody.replaceChildren(emptyRow(7, audit.scope === null ? t('admin.audit.none_all') : t('admin.audit.none', { video: audit.scope })));
  }
  older.hidden = audit.next == null;
}

function renderAll() {
  renderRole();
  renderComments();
  renderModerators();
  renderMutes();
  renderAudit();
}

// ---------------------------------------------------------------------------------------
// Actions

/**
 * Deletes a comment with an optional reason (the audit log keeps it); open pages are told
 * to remove it. Rejects with the server's DanmakuError. Also used by the Reports list.
 */
export function deleteDanmaku(id, reason) {
  return call(`/api/danmaku/${enc(id)}${reason ? `?reason=${enc(reason)}` : ''}`, { method: 'DELETE' });
}

async function deleteComment(video, d) {
  const status = $('comments-status');
  const reason = $('delete-reason').value.trim();
  try {
    await deleteDanmaku(d.id, reason);
    say(status, 'ok', () => (reason
      ? t('admin.comments.deleted_reason', { id: d.id, reason })
      : t('admin.comments.deleted', { id: d.id })));
    if (video === current) await Promise.all([loadCommentList(video, true), loadAudit()]);
  } catch (e) {
    say(status, 'error', () => t('admin.comments.delete_failed', { id: d.id, error: codeMessage(e) }));
  }
}

function checkSub(sub, result) {
  if (sub && sub.length <= MAX_SUB) return true;
  say(result, 'error', () => t('admin.mute.need_user'));
  return false;
}

async function addModerator(ev) {
  ev.preventDefault();
  const result = $('moderators-result');
  const video = pickedVideo(result);
  const sub = $('moderator-sub').value.trim();
  if (!video || !checkSub(sub, result)) return;
  try {
    await call(`/api/videos/${enc(video)}/moderators/${enc(sub)}`, { method: 'PUT' });
    $('moderator-sub').value = '';
    await afterChange(video);
    say(result, 'ok', () => t('admin.moderators.added', { sub, video }));
  } catch (e) {
    say(result, 'error', () => t('admin.moderators.failed', { error: codeMessage(e) }));
  }
}

async function removeModerator(video, sub) {
  const result = $('moderators-result');
  try {
    await call(`/api/videos/${enc(video)}/moderators/${enc(sub)}`, { method: 'DELETE' });
    await afterChange(video);
    say(result, 'ok', () => t('admin.moderators.removed', { sub, video }));
  } catch (e) {
    say(result, 'error', () => t('admin.moderators.failed', { error: codeMessage(e) }));
  }
}

/** Lifts `sub`'s mute in `video` (null: everywhere), with the mute form's reason if any. */
async function lift(sub, video, result) {
  const reason = $('mute-reason').value.trim();
  const q = new URLSearchParams();
  if (video) q.set('video', video);
  if (reason) q.set('reason', reason);
  const qs = q.toString();
  try {
    await call(`/api/moderation/mutes/${enc(sub)}${qs ? `?${qs}` : ''}`, { method: 'DELETE' });
    await afterChange(video || current);
    say(result, 'ok', () => (video
      ? t('admin.mute.lifted_video', { sub, video })
      : t('admin.mute.lifted_all', { sub })));
  } catch (e) {
    say(result, 'error', () => t('admin.mutes.lift_failed', { error: codeMessage(e) }));
  }
}

async function mute(ev) {
  ev.preventDefault();
  const result = $('mute-result');
  const sub = $('mute-sub').value.trim();
  const seconds = Number($('mute-seconds').value);
  const everywhere = $('mute-scope').value === 'all';
  const reason = $('mute-reason').value.trim();
  if (!checkSub(sub, result)) return;
  const video = everywhere ? null : pickedVideo(result);
  if (!everywhere && !video) return;
  if (seconds === 0) {
    await lift(sub, video, result);
    return;
  }
  try {
    const m = await call('/api/moderation/mutes', { method: 'PUT', body: { sub, video, seconds, reason: reason || null } });
    say(result, 'ok', () => (m.video
      ? t('admin.mute.until_video', { sub: m.sub, until: dateTime(m.until), video: m.video })
      : t('admin.mute.until_all', { sub: m.sub, until: dateTime(m.until) })));
    await afterChange(video || current);
  } catch (e) {
    say(result, 'error', () => t('admin.mute.failed', { error: codeMessage(e) }));
  }
}

/**
 * After a review, a shadow ban or a rule change (static/admin/review.js): the shown
 * comments (their hidden marks) and the audit log again.
 */
export async function refreshModeration() {
  if (!state.token) return;
  await Promise.all([current ? loadCommentList(current, true) : null, current ? loadAudit() : null, ...[...changeHooks].map((fn) => fn())]);
}

/** Panels that show moderation results too (the Reports list): reloaded by refreshModeration. */
const changeHooks = new Set();

/** Registers a reload to run after every moderation change (a review, a delete, a rule). */
export function onModerationChange(fn) {
  changeHooks.add(fn);
}

/** After a change in `video`: its lists again (everything, when the panel showed another). */
async function afterChange(video) {
  if (!video) return;
  if (video !== current) {
    $('comments-video').value = video;
    await loadComments();
    return;
  }
  await Promise.all([loadModerators(video), loadMutes(video), loadAudit()]);
}

/** Wires the picker, the moderator, mute and audit controls. */
export function wireModeration() {
  $('comments-form').addEventListener('submit', loadComments);
  $('moderator-form').addEventListener('submit', addModerator);
  $('mute-form').addEventListener('submit', mute);
  $('audit-view').addEventListener('change', () => loadAudit());
  $('audit-reload').addEventListener('click', () => loadAudit());
  $('audit-older').addEventListener('click', () => loadAudit(true));
  onLocaleChange(renderAll);
}
