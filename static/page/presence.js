// Video page: presence, the "N watching" label (#viewers). Owns loading the room's
// count over REST, the count pushed as `presence` events, and the periodic refresh.
//
// SECURITY: text reaches the DOM through `textContent` only.

import { $, api, isObject } from '../lib/util.js';
import { VIDEO_CHANNEL, state } from './state.js';
import { formatNumber, t } from '../lib/i18n.js';

const PRESENCE_EVERY_MS = 4000;

function setViewers(total) {
  state.viewers = Number.isFinite(total) ? total : null;
  renderViewers();
}

/** Draws the count (again after a language switch). */
export function renderViewers() {
  const node = $('viewers');
  node.dataset.count = state.viewers == null ? '' : String(state.viewers);
  node.textContent = state.viewers == null ? t('presence.unknown') : t('presence.watching', { n: formatNumber(state.viewers) });
}

/** Asks the REST API how many sockets are on the room (none shown while locked). */
export async function loadPresence() {
  if (state.memberLocked) {
    setViewers(null);
    return;
  }
  try {
    const p = await api(`/api/channels/${encodeURIComponent(VIDEO_CHANNEL)}/presence`, { token: state.token });
    setViewers(Number(p && p.total));
  } catch {
    setViewers(null);
  }
}

/** Shows a `presence` event of the room; returns whether the event was one. */
export function showPresence(f) {
  if (f.type !== 'presence') return false;
  const data = f.data;
  if (isObject(data) && Number.isFinite(data.total)) setViewers(data.total);
  return true;
}

/** Refreshes the count every few seconds while the room is joined. */
export function pollPresence() {
  setInterval(() => {
    if (state.welcomed && state.wanted.get(VIDEO_CHANNEL)?.status === 'joined') loadPresence();
  }, PRESENCE_EVERY_MS);
}
