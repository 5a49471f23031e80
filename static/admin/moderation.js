// Admin console: moderation. Owns the stored comments of one video (the 50 newest),
// deleting a comment (open pages are told to remove it) and muting a user for a while
// (POST /api/users/{sub}/mute; 0 seconds unmutes).
//
// SECURITY: text reaches the DOM through `el` (textContent, createElement) only.

import { $, el, VIDEO_RE, dateTime, videoTime } from '../lib/util.js';
import { formatNumber, localize, onLocaleChange, t, tValue } from '../lib/i18n.js';
import { call, errorText, state } from './state.js';

/** The listing on show (`{video, items}`), to redraw it after a language switch. */
let shown = null;

/** Loads the chosen video's comments, newest first (also the form's submit handler). */
export async function loadComments(ev) {
  if (ev) ev.preventDefault();
  if (!state.token) return;
  const video = $('comments-video').value.trim();
  const status = $('comments-status');
  const tbody = $('comment-table').tBodies[0];
  if (!VIDEO_RE.test(video)) {
    status.dataset.tone = 'error';
    localize(status, () => t('admin.comments.need_video'));
    return;
  }
  try {
    const h = await call(`/api/videos/${encodeURIComponent(video)}/danmaku?limit=10000`);
    const items = (Array.isArray(h.items) ? h.items : []).slice().sort((a, b) => b.id - a.id).slice(0, 50);
    status.dataset.tone = 'info';
    localize(status, () => t('admin.comments.summary', { count: formatNumber(h.count), video }));
    shown = { video, items };
    renderComments();
  } catch (e) {
    status.dataset.tone = 'error';
    localize(status, () => errorText(e));
    shown = null;
    tbody.replaceChildren();
  }
}

function renderComments() {
  if (!shown) return;
  const { video, items } = shown;
  const tbody = $('comment-table').tBodies[0];
  tbody.replaceChildren(...items.map((d) => commentRow(video, d)));
  if (!items.length) tbody.replaceChildren(el('tr', {}, el('td', { colspan: '8', class: 'muted', text: t('admin.comments.none') })));
}

function commentRow(video, d) {
  const swatch = el('span', { class: 'color-dot', title: d.color });
  swatch.style.background = /^#[0-9a-f]{6}$/i.test(d.color) ? d.color : '#ffffff';
  const name = d.user && typeof d.user.name === 'string' ? d.user.name : '';
  return el('tr', { dataset: { id: String(d.id) } },
    el('td', { class: 'mono', text: String(d.id) }),
    el('td', { class: 'mono', text: videoTime(d.time) }),
    el('td', { class: 'comment-text', text: d.text }),
    el('td', {}, swatch, ` ${tValue('common.mode.', d.mode)} · ${tValue('common.size.', d.size)}`),
    el('td', { text: tValue('common.audience.', d.audience) }),
    el('td', { text: name }),
    el('td', { text: dateTime(d.created_at) }),
    el('td', { class: 'actions' },
      el('button', { type: 'button', class: 'btn btn-small danger', text: t('common.delete'), onclick: () => deleteComment(video, d) }),
      el('button', {
        type: 'button', class: 'btn btn-small', text: t('admin.comments.mute'), title: t('admin.comments.mute_title'),
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
    localize(status, () => t('admin.comments.deleted', { id: d.id }));
    loadComments();
  } catch (e) {
    status.dataset.tone = 'error';
    localize(status, () => errorText(e));
  }
}

async function mute(ev) {
  ev.preventDefault();
  const sub = $('mute-sub').value.trim();
  const seconds = Number($('mute-seconds').value);
  const result = $('mute-result');
  if (!sub || sub.length > 128) {
    result.dataset.tone = 'error';
    localize(result, () => t('admin.mute.need_user'));
    return;
  }
  try {
    const r = await call(`/api/users/${encodeURIComponent(sub)}/mute`, { method: 'POST', body: { seconds } });
    result.dataset.tone = 'ok';
    localize(result, () => (r.until
      ? t('admin.mute.until', { sub: r.sub, until: dateTime(r.until) })
      : t('admin.mute.lifted', { sub: r.sub })));
  } catch (e) {
    result.dataset.tone = 'error';
    localize(result, () => errorText(e));
  }
}

/** Wires the comments form and the mute form. */
export function wireModeration() {
  $('comments-form').addEventListener('submit', loadComments);
  $('mute-form').addEventListener('submit', mute);
  onLocaleChange(renderComments);
}
