// Admin console: the catalog and the channels. Owns the video table (PUT /api/videos/
// {id} with a title and a tier), the declared channels (PUT / DELETE /api/channels/
// {name}), and the datalists that suggest channel names and video ids to other forms.
//
// SECURITY: text reaches the DOM through `el` (textContent, createElement) only.

import { $, el, CHANNEL_RE, VIDEO_RE } from '../lib/util.js';
import { call, state } from './state.js';
import { loadPresence } from './presence.js';
import { loadComments } from './moderation.js';

function tierSelect(value) {
  const select = el('select', { 'aria-label': 'tier' },
    ...['free', 'member', 'admin'].map((t) => el('option', { value: t, text: t })));
  select.value = value;
  return select;
}

// ---------------------------------------------------------------------------------------
// Videos

/** Loads the catalog, then the presence of the rooms it names. */
export async function loadVideos() {
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
  const rows = state.videos.map(videoRow);
  if (!rows.length) rows.push(el('tr', {}, el('td', { colspan: '4', class: 'muted', text: 'The catalog is empty: add a video below.' })));
  tbody.replaceChildren(...rows);
}

function videoRow(v) {
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

// ---------------------------------------------------------------------------------------
// Channels

/** Loads the declared channels, then the presence of each. */
export async function loadChannels() {
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

/** Wires both tables' Reload buttons and add forms. */
export function wireCatalog() {
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
}
