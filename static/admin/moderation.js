// Admin console: moderation. Owns the stored comments of one video (the 50 newest),
// deleting a comment (open pages are told to remove it) and muting a user for a while
// (POST /api/users/{sub}/mute; 0 seconds unmutes).
//
// SECURITY: text reaches the DOM through `el` (textContent, createElement) only.

import { $, el, VIDEO_RE, dateTime, videoTime } from '../lib/util.js';
import { call, state } from './state.js';

/** Loads the chosen video's comments, newest first (also the form's submit handler). */
export async function loadComments(ev) {
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

/** Wires the comments form and the mute form. */
export function wireModeration() {
  $('comments-form').addEventListener('submit', loadComments);
  $('mute-form').addEventListener('submit', mute);
}
