// Admin console: the Presence table. Owns which channels are watched (every room of the
// catalog, the declared channels, and any added by hand) and their counts by role and
// users (GET /api/channels/{name}/presence), newest load wins.
//
// SECURITY: text reaches the DOM through `el` (textContent, createElement) only.

import { $, el, CHANNEL_RE, clockTime } from '../lib/util.js';
import { formatNumber, localize, onLocaleChange, t } from '../lib/i18n.js';
import { call, state } from './state.js';

function presenceChannels() {
  const names = new Set(['video:demo']);
  for (const v of state.videos) names.add(`video:${v.id}`);
  for (const c of state.channels) names.add(c.name);
  for (const w of state.watched) names.add(w);
  return [...names];
}

let presenceLoad = 0;
/** The newest load's rows, to redraw them after a language switch without a request. */
let lastResults = [];

/** Loads the presence of every watched channel and redraws the table. */
export async function loadPresence() {
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
  lastResults = results;
  renderPresence();
  const time = clockTime(Date.now()).slice(0, 8);
  localize($('presence-result'), () => t('admin.presence.updated', { time }));
}

function renderPresence() {
  $('presence-table').tBodies[0].replaceChildren(...lastResults.map(presenceRow));
}

function presenceRow({ name, p, error }) {
  if (error) {
    return el('tr', { dataset: { channel: name } },
      el('td', { class: 'mono', text: name }),
      el('td', { colspan: '6', class: 'muted', text: `${error.code}: ${error.message}` }));
  }
  const r = p.by_role || {};
  return el('tr', { dataset: { channel: name, total: String(p.total) } },
    el('td', { class: 'mono', text: name }),
    el('td', { class: 'num strong', text: formatNumber(p.total) }),
    el('td', { class: 'num', text: formatNumber(r.guest ?? 0) }),
    el('td', { class: 'num', text: formatNumber(r.free ?? 0) }),
    el('td', { class: 'num', text: formatNumber(r.member ?? 0) }),
    el('td', { class: 'num', text: formatNumber(r.admin ?? 0) }),
    el('td', { text: Array.isArray(p.users) && p.users.length ? p.users.join(', ') : '–' }));
}

/** Wires Reload and the form that adds a channel to watch. */
export function wirePresence() {
  $('presence-reload').addEventListener('click', loadPresence);
  $('presence-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const name = $('presence-channel').value.trim();
    if (!CHANNEL_RE.test(name)) return;
    state.watched.add(name);
    $('presence-channel').value = '';
    loadPresence();
  });
  onLocaleChange(renderPresence);
}
