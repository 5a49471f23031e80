// Video page: the video list (#video-list). Owns loading the catalog (GET /api/videos),
// drawing each video with its tier and lock, the current video's title, and locking
// the page when the current video's tier does not admit the viewer's role.
//
// SECURITY: text reaches the DOM through `el` (textContent, createElement) only.

import { $, el, api, isObject, lockIcon, tierAdmits, tierTag } from '../lib/util.js';
import { VIDEO_ID, currentRole, state } from './state.js';
import { setMemberLock } from './player.js';
import { t, tValue } from '../lib/i18n.js';

/** Loads the catalog for the current token; a newer load wins over an older one. */
export async function loadVideos() {
  const load = ++state.videosLoad;
  try {
    const items = await api('/api/videos', { token: state.token });
    if (load !== state.videosLoad) return;
    state.videos = Array.isArray(items) ? items.filter((v) => isObject(v) && typeof v.id === 'string') : [];
    state.videosError = null;
  } catch (e) {
    if (load !== state.videosLoad) return;
    state.videos = [];
    state.videosError = e;
  }
  renderVideos();
}

/** Draws the list for the current role (locks depend on it). */
export function renderVideos() {
  const list = $('video-list');
  const status = $('video-list-status');
  const role = currentRole();
  const videos = state.videos || [];
  const current = videos.find((v) => v.id === VIDEO_ID);
  $('video-title').textContent = current && current.title ? current.title : VIDEO_ID;
  if (current && !tierAdmits(current.tier, role)) setMemberLock(true);
  const search = new URLSearchParams(location.search);
  const keep = search.get('src') ? `?src=${encodeURIComponent(search.get('src'))}` : '';
  const rows = videos.map((v) => videoRow(v, role, keep));
  list.replaceChildren(...rows);
  if (state.videosError) {
    status.hidden = false;
    status.textContent = t('videos.load_failed', { code: state.videosError.code, message: state.videosError.message });
  } else if (rows.length === 0) {
    status.hidden = false;
    status.textContent = t('videos.empty');
  } else {
    status.hidden = true;
  }
}

/** One row: a link to /watch/{id} (keeping ?src=), its tier and lock. */
function videoRow(v, role, keep) {
  const tier = typeof v.tier === 'string' ? v.tier : 'free';
  const locked = !tierAdmits(tier, role);
  const isCurrent = v.id === VIDEO_ID;
  let icon = null;
  const names = { tier: tValue('common.tier.', tier), role: tValue('common.role.', role) };
  if (locked) icon = lockIcon(t('videos.locked', names));
  else if (tier !== 'free') icon = lockIcon(t('videos.open', names), true);
  return el('li', { class: 'chan video-item', dataset: { video: v.id, tier, locked: String(locked), current: String(isCurrent) } },
    el('div', { class: 'chan-main' },
      icon,
      el('a', {
        class: 'video-link',
        href: `/watch/${encodeURIComponent(v.id)}${keep}`,
        title: locked ? t('videos.members_only') : t('videos.watch', { id: v.id }),
        'aria-current': isCurrent ? 'page' : null,
        text: v.title || v.id,
      }),
      el('span', { class: 'muted small', text: v.id }),
      el('span', { class: 'spacer' }),
      tierTag(tier),
      isCurrent ? el('span', { class: 'tag now', text: t('videos.playing') }) : null));
}

/** Wires the list's Reload button. */
export function wireVideos() {
  $('videos-reload').addEventListener('click', loadVideos);
}
