// Admin console: viewers' reports, in the Moderation panel under the review queue. Owns
// the list of reported comments of the panel's video (the picker, #comments-video) or,
// for admins, of every video (GET /api/moderation/reports?video=&limit=), most reported
// first, with the author, the count and the latest reasons, and what to do with one:
//
//   - Delete (static/admin/moderation.js `deleteDanmaku`: DELETE /api/danmaku/{id}?reason=);
//   - for one hidden by its reports (state held): Approve, which publishes it again and
//     restarts its count, or Reject (static/admin/review.js `reviewDanmaku`).
//
// A room moderator only reads the videos they moderate: "every video" is disabled for
// them. After an action the queue, the comment list and the audit log reload too.
//
// SECURITY: text reaches the DOM through `el` (textContent, createElement) only.

import { $, el, VIDEO_RE, videoTime } from '../lib/util.js';
import { formatNumber, localize, onLocaleChange, t } from '../lib/i18n.js';
import { call, state } from './state.js';
import { deleteDanmaku, onModerationChange, refreshModeration } from './moderation.js';
import { reloadQueue, reviewDanmaku } from './review.js';

const LIMIT = 100;

/** What is on show: {scope: video | null (every video), items}, or null. */
let reports = null;

function isAdmin() {
  return !!state.me && state.me.role === 'admin';
}

function say(node, tone, render) {
  node.dataset.tone = tone;
  localize(node, render);
}

/** null: every video (admins); undefined: no valid video picked. */
function scope() {
  if ($('reports-view').value === 'all' && isAdmin()) return null;
  const video = $('comments-video').value.trim();
  return VIDEO_RE.test(video) ? video : undefined;
}

function renderRole() {
  const admin = isAdmin();
  const all = $('reports-view').querySelector('option[value="all"]');
  all.disabled = !admin;
  if (admin) all.removeAttribute('title');
  else all.title = t('admin.moderation.admin_only');
  if (!admin && $('reports-view').value === 'all') $('reports-view').value = 'video';
}

/** Loads the reported comments of the chosen scope; `keepStatus` keeps the result line (after an action). */
export async function loadReports(keepStatus = false) {
  if (!state.token) return;
  renderRole();
  const result = $('reports-result');
  const want = scope();
  if (want === undefined) return;
  const q = new URLSearchParams({ limit: String(LIMIT) });
  if (want !== null) q.set('video', want);
  try {
    const list = await call(`/api/moderation/reports?${q}`);
    if (scope() !== want) return;
    reports = { scope: want, items: Array.isArray(list) ? list : [] };
    if (!keepStatus) localize(result, null);
  } catch (e) {
    if (scope() !== want) return;
    reports = null;
    say(result, 'error', () => t('admin.reports.load_failed', { error: `${e.code}: ${e.message}` }));
  }
  renderReports();
}

function renderReports() {
  const tbody = $('reports-table').tBodies[0];
  if (!reports) {
    tbody.replaceChildren();
    return;
  }
  tbody.replaceChildren(...reports.items.map((item) => {
    const d = item.danmaku || {};
    const held = d.state === 'held';
    const reasons = Array.isArray(item.reasons) ? item.reasons.filter((r) => typeof r === 'string' && r) : [];
    return el('tr', { dataset: { id: String(d.id), video: String(d.video), reports: String(item.reports), state: held ? 'held' : 'visible' } },
      el('td', { class: 'mono', text: String(d.id) }),
      el('td', { class: 'mono', text: String(d.video) }),
      el('td', { class: 'mono', text: videoTime(d.time) }),
      el('td', { class: 'comment-text' }, String(d.text ?? ''),
        held ? el('span', { class: 'comment-badge', dataset: { badge: 'held' }, title: t('admin.reports.hidden_title'), text: t('admin.reports.hidden') }) : null),
      el('td', { class: 'mono', text: String(item.author ?? '') }),
      el('td', { class: 'mono report-count', text: formatNumber(Number(item.reports) || 0) }),
      el('td', { class: 'report-reasons' }, reasons.length
        ? el('ul', { class: 'reason-list' }, ...reasons.map((r) => el('li', { text: r })))
        : el('span', { class: 'muted', text: t('admin.reports.no_reason') })),
      el('td', { class: 'actions' },
        held ? el('button', { type: 'button', class: 'btn btn-small btn-primary', dataset: { report: 'approve' }, text: t('admin.queue.approve'), title: t('admin.reports.approve_title'), onclick: () => act(d, 'approve') }) : null,
        held ? el('button', { type: 'button', class: 'btn btn-small', dataset: { report: 'reject' }, text: t('admin.queue.reject'), onclick: () => act(d, 'reject') }) : null,
        el('button', { type: 'button', class: 'btn btn-small danger', dataset: { report: 'delete' }, text: t('common.delete'), onclick: () => act(d, 'delete') })));
  }));
  if (!reports.items.length) {
    tbody.replaceChildren(el('tr', { class: 'empty' }, el('td', {
      colspan: '8', class: 'muted', text: reports.scope === null ? t('admin.reports.none_all') : t('admin.reports.none', { video: reports.scope }),
    })));
  }
}

/** Deletes, approves or rejects a reported comment, then reloads what shows it. */
async function act(d, action) {
  const result = $('reports-result');
  const reason = $('reports-reason').value.trim();
  const id = d.id;
  try {
    if (action === 'delete') {
      await deleteDanmaku(id, reason);
      say(result, 'ok', () => t('admin.reports.deleted', { id }));
    } else {
      const r = await reviewDanmaku(id, action, reason);
      say(result, 'ok', () => (r && r.state === 'rejected' ? t('admin.queue.rejected', { id }) : t('admin.queue.approved', { id })));
    }
  } catch (e) {
    say(result, 'error', () => t('admin.reports.failed', { id, error: `${e.code}: ${e.message}` }));
  }
  // refreshModeration reloads this list too (onModerationChange below).
  await Promise.all([reloadQueue(), refreshModeration()]);
}

/** Wires the view choice, Reload and the panel's picker. */
export function wireReports() {
  $('comments-form').addEventListener('submit', () => loadReports());
  $('reports-view').addEventListener('change', () => loadReports());
  $('reports-reload').addEventListener('click', () => loadReports());
  onModerationChange(() => loadReports(true));
  onLocaleChange(() => {
    renderRole();
    renderReports();
  });
}
