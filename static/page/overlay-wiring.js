// Video page: the overlay wiring. The overlay itself (lanes, time-synced replay) lives
// in static/lib/overlay.js; this module creates it over the video, feeds it the stored
// history, the catch-up after a reconnect and the room's live events, and owns the
// viewer settings form (#settings, saved in localStorage) and the stats label. It also
// hands the like and heatmap modules a REST client for the current token. Comments hidden
// from the audience (held for review, shadowed: `state` on a view) never reach the
// overlay while hidden; static/page/comments.js lists them with their mark, and an
// approval (`danmaku_reviewed`) flies them here. A folded spam wave (`danmaku_fold`) puts
// its count on the first comment, flying and listed.

import { $, api, isObject, readJson } from '../lib/util.js';
import { DanmakuOverlay, DEFAULT_SETTINGS } from '../lib/overlay.js';
import { DanmakuClient } from '../lib/danmaku-client.js';
import { STORAGE, VIDEO_ID, identityKey, state } from './state.js';
import { setMemberLock } from './player.js';
import { logSystem } from './log.js';
import { formatNumber, onLocaleChange, t } from '../lib/i18n.js';
import {
  foldLabel, hiddenState, listComment, listHistory, onReviewed, setFoldCount, unlist,
} from './comments.js';

/** The page's DanmakuOverlay (a live binding: set by `createOverlay`). */
export let overlay;
/** The overlay's last counts, drawn by `renderStats`. */
let lastStats = null;

/** The stats label: on screen, stored, skipped (again after a language switch). */
function renderStats() {
  if (!lastStats) return;
  const s = lastStats;
  const n = { onScreen: formatNumber(s.onScreen), stored: formatNumber(s.stored), dropped: formatNumber(s.dropped) };
  const node = $('overlay-stats');
  node.textContent = s.dropped ? t('overlay.stats_skipped', n) : t('overlay.stats', n);
  node.dataset.stored = String(s.stored);
}

/**
 * Creates the overlay over the video; call once, before anything draws. `hooks` go to
 * the overlay as they are (`onCommentPointer`, `onLive`, `bottomReserve`).
 */
export function createOverlay(video, hooks = {}) {
  overlay = new DanmakuOverlay($('overlay'), video, {
    foldLabel,
    ...hooks,
    onStats: (s) => {
      lastStats = s;
      renderStats();
    },
  });
  onLocaleChange(() => {
    renderStats();
    overlay.relabelFolds();
  });
  return overlay;
}

let rest = null;

/**
 * A REST-only DanmakuClient (likes, heatmap) holding the page's current token: a new one
 * after every sign-in or refresh, since a client keeps the token it was made with.
 */
export function restClient() {
  const token = state.token || null;
  if (!rest || rest.token !== token) rest = { token, client: new DanmakuClient({ token: token || undefined, reconnect: false }) };
  return rest.client;
}

// ---------------------------------------------------------------------------------------
// History

/** Loads every stored comment of the video for the current identity. */
export async function loadHistory() {
  const load = ++state.historyLoad;
  const key = identityKey();
  try {
    const h = await api(`/api/videos/${encodeURIComponent(VIDEO_ID)}/danmaku?limit=10000`, { token: state.token });
    if (load !== state.historyLoad) return;
    state.historyFor = key;
    const items = Array.isArray(h && h.items) ? h.items : [];
    overlay.setHistory(items.filter((v) => !hiddenState(v)));
    listHistory(items);
    setMemberLock(false);
  } catch (e) {
    if (load !== state.historyLoad) return;
    state.historyFor = key;
    overlay.setHistory([]);
    listHistory([]);
    if (e.code === 'member_only') setMemberLock(true);
    else logSystem('error', t('overlay.history_failed', { code: e.code, message: e.message }));
  }
}

/** After a reconnect without recovery: stored comments newer than the newest we know. */
export async function catchUpHistory() {
  const after = overlay.maxId();
  try {
    const h = await api(`/api/videos/${encodeURIComponent(VIDEO_ID)}/danmaku?limit=10000&after_id=${after}`, { token: state.token });
    const items = Array.isArray(h && h.items) ? h.items : [];
    overlay.merge(items.filter((v) => !hiddenState(v)));
    for (const v of items) listComment(v);
    if (items.length) logSystem('caught up', t('overlay.caught_up', { n: items.length }));
  } catch (e) {
    logSystem('error', t('overlay.catch_up_failed', { code: e.code, message: e.message }));
  }
}

/**
 * Draws an event of the video's room on the overlay; returns whether it was one (a
 * comment, a deletion, or an admin push shaped like a comment).
 */
export function drawRoomEvent(f, replayed, push) {
  const data = f.data;
  if (f.type === 'danmaku_deleted') {
    if (isObject(data) && Number.isSafeInteger(data.id)) {
      overlay.remove(data.id);
      unlist(data.id);
    }
    return true;
  }
  if (f.type === 'danmaku_fold') {
    // Later copies of the first comment's text were folded into it: `×count` on it.
    if (isObject(data) && Number.isSafeInteger(data.id) && Number.isSafeInteger(data.count)) {
      overlay.setFold(data.id, data.count);
      setFoldCount(data.id, data.count);
    }
    return true;
  }
  if (f.type === 'danmaku_reviewed') {
    if (isObject(data) && data.state === 'rejected' && Number.isSafeInteger(data.id)) overlay.remove(data.id);
    const approved = onReviewed(data);
    // Approved: the audience gets it live now, so it flies now here too.
    if (approved) overlay.addLive(approved.view, approved.mine ? 'own' : 'live');
    return true;
  }
  if (f.type === 'danmaku' && !push) {
    if (!isObject(data)) return true;
    listComment(data);
    // A marked copy (moderators and admins): listed with its badge, never flown.
    if (hiddenState(data)) return true;
    // Missed comments replayed on a resubscribe join the timeline without a burst.
    if (replayed) overlay.merge([data]);
    else overlay.addLive(data, 'live');
    return true;
  }
  if (f.type === 'danmaku' && push && isObject(data.payload) && typeof data.payload.text === 'string') {
    // An admin's channel push shaped like a comment: draw it, do not store it.
    overlay.addLive({ ...data.payload, id: undefined }, 'live');
    return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------
// Viewer settings

/** Fills the settings form from localStorage (or the defaults) and applies it. */
export function loadSettings() {
  const saved = readJson(localStorage.getItem(STORAGE.settings));
  const s = { ...DEFAULT_SETTINGS, ...(isObject(saved) ? saved : {}) };
  $('set-opacity').value = String(s.opacity);
  $('set-density').value = String(s.density);
  $('set-hide-scroll').checked = Boolean(s.hideScroll);
  $('set-hide-top').checked = Boolean(s.hideTop);
  $('set-hide-bottom').checked = Boolean(s.hideBottom);
  applySettings(false);
}

/** Reads the form, applies it to the overlay and (unless loading) saves it. */
function applySettings(save = true) {
  const s = {
    opacity: Number($('set-opacity').value),
    density: Number($('set-density').value),
    hideScroll: $('set-hide-scroll').checked,
    hideTop: $('set-hide-top').checked,
    hideBottom: $('set-hide-bottom').checked,
  };
  $('set-opacity-out').textContent = `${Math.round(s.opacity * 100)}%`;
  overlay.applySettings(s);
  if (save) localStorage.setItem(STORAGE.settings, JSON.stringify(s));
}

/** Wires the settings toggle, the form (applied on every change) and Reset. */
export function wireSettings() {
  $('settings-toggle').addEventListener('click', () => {
    const box = $('settings');
    box.hidden = !box.hidden;
    $('settings-toggle').setAttribute('aria-expanded', String(!box.hidden));
  });
  $('settings').addEventListener('input', () => applySettings());
  $('settings').addEventListener('change', () => applySettings());
  $('settings').addEventListener('submit', (ev) => ev.preventDefault());
  $('settings-reset').addEventListener('click', () => {
    localStorage.removeItem(STORAGE.settings);
    loadSettings();
  });
}
