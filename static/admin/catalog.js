// Admin console: the catalog and the channels. Owns the video table (PUT /api/videos/
// {id} with a title and a tier), the declared channels (PUT / DELETE /api/channels/
// {name}), and the datalists that suggest channel names and video ids to other forms.
//
// SECURITY: text reaches the DOM through `el` (textContent, createElement) only.

import { $, el, CHANNEL_RE, VIDEO_RE } from '../lib/util.js';
import { localize, onLocaleChange, t, tValue } from '../lib/i18n.js';
import { call, errorText, state } from './state.js';
import { loadPresence } from './presence.js';
import { loadComments } from './moderation.js';

function tierSelect(value) {
  const select = el('select', { 'aria-label': t('common.tier') },
    ...['free', 'member', 'admin'].map((tier) => el('option', { value: tier, text: tValue('common.tier.', tier) })));
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
    localize($('video-result'), () => t('admin.videos.load_failed', { error: `${e.code}: ${e.message}` }));
  }
  renderVideos();
  renderDatalists();
  loadPresence();
}

function renderVideos() {
  const tbody = $('video-table').tBodies[0];
  const rows = state.videos.map(videoRow);
  if (!rows.length) rows.push(el('tr', {}, el('td', { colspan: '4', class: 'muted', text: t('admin.videos.empty') })));
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
        type: 'button', class: 'btn btn-small', text: t('common.save'),
        onclick: () => saveVideo(v.id, v.title, tier.value),
      }),
      el('button', {
        type: 'button', class: 'btn btn-small', text: t('admin.videos.comments'),
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
    localize(result, () => t('admin.videos.bad_id'));
    return;
  }
  try {
    const v = await call(`/api/videos/${encodeURIComponent(id)}`, { method: 'PUT', body: { title: title || id, tier } });
    result.dataset.tone = 'ok';
    localize(result, () => t('admin.videos.saved', { id: v.id, title: v.title, tier: tValue('common.tier.', v.tier) }));
    loadVideos();
  } catch (e) {
    result.dataset.tone = 'error';
    localize(result, () => errorText(e));
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
    localize($('channel-result'), () => t('admin.channels.load_failed', { error: `${e.code}: ${e.message}` }));
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
        el('button', { type: 'button', class: 'btn btn-small', text: t('common.save'), onclick: () => declareChannel(c.name, tier.value) }),
        el('button', { type: 'button', class: 'btn btn-small danger', text: t('common.delete'), onclick: () => deleteChannel(c.name) })));
  });
  if (!rows.length) rows.push(el('tr', {}, el('td', { colspan: '3', class: 'muted', text: t('admin.channels.none') })));
  tbody.replaceChildren(...rows);
}

async function declareChannel(name, tier) {
  const result = $('channel-result');
  try {
    const c = await call(`/api/channels/${encodeURIComponent(name)}`, { method: 'PUT', body: { tier } });
    result.dataset.tone = 'ok';
    localize(result, () => t('admin.channels.declared', { name: c.name, tier: tValue('common.tier.', c.tier) }));
    loadChannels();
  } catch (e) {
    result.dataset.tone = 'error';
    localize(result, () => errorText(e));
  }
}

async function deleteChannel(name) {
  if (!window.confirm(t('admin.channels.confirm_remove', { name }))) return;
  const result = $('channel-result');
  try {
    await call(`/api/channels/${encodeURIComponent(name)}`, { method: 'DELETE' });
    result.dataset.tone = 'ok';
    localize(result, () => t('admin.channels.removed', { name }));
    loadChannels();
  } catch (e) {
    result.dataset.tone = 'error';
    localize(result, () => errorText(e));
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
      localize($('channel-result'), () => t('admin.channels.bad_name'));
      return;
    }
    declareChannel(name, $('channel-tier').value);
  });
  // The tables' buttons and tier names are drawn by code: redraw them (unsaved tier picks
  // in the rows go back to the stored tier).
  onLocaleChange(() => {
    renderVideos();
    renderChannels();
  });
}
