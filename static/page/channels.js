// Video page: the Channels panel and the room status. Owns joining and leaving channels
// from the page (name checks, inline errors), the declared channels (GET /api/channels)
// with their tiers, the subscriptions list, and #room-status in the player bar. The
// protocol side (subscribe ops, resubscribing) is static/page/connection.js.
//
// SECURITY: text reaches the DOM through `el` (textContent, createElement) only.

import { $, el, api, CHANNEL_RE, isObject, lockIcon, tierAdmits, tierTag } from '../lib/util.js';
import { VIDEO_CHANNEL, currentRole, state } from './state.js';
import { autoChannels, isAutoChannel, join, leave } from './connection.js';
import { t, tValue } from '../lib/i18n.js';

/** Joins a channel typed, listed or the room (`origin` says where errors go). */
export function subscribe(name, origin) {
  const channel = name.trim();
  if (channel === VIDEO_CHANNEL) state.leftRoom = false;
  if (!CHANNEL_RE.test(channel)) {
    showChannelError(channel, {
      code: 'invalid_channel',
      message: 'channel names are 1 to 128 ASCII letters, digits and - _ . : @',
    }, origin);
    return;
  }
  if (isAutoChannel(channel)) {
    showChannelError(channel, { code: 'already_subscribed', message: 'this channel is joined automatically' }, origin);
    return;
  }
  const current = state.wanted.get(channel);
  if (current && current.status === 'joined') {
    showChannelError(channel, { code: 'already_subscribed', message: t('channels.already', { channel }) }, origin);
    return;
  }
  state.channelErrors.delete(channel);
  if (origin === 'input') setJoinError(null);
  // Without an open socket the channel is joined right after the next welcome.
  join(channel, origin);
  renderSubscriptions();
  renderChannelList();
}

/** Leaves a channel; leaving the room keeps it left across reconnects. */
export function unsubscribe(channel) {
  if (channel === VIDEO_CHANNEL) state.leftRoom = true;
  state.channelErrors.delete(channel);
  leave(channel);
  renderSubscriptions();
  renderChannelList();
}

/** Records a refusal and shows it by the channel, or under the join box. */
export function showChannelError(channel, err, origin) {
  state.channelErrors.set(channel, { code: String(err.code), message: String(err.message ?? '') });
  const listed = state.declared.some((c) => c.name === channel);
  if (origin === 'input' || (!listed && channel !== VIDEO_CHANNEL)) {
    setJoinError(`${channel}: ${err.code} — ${err.message}`);
  }
  renderChannelList();
  renderRoomStatus();
}

/** Shows (or, with null, hides) the error under the join box. */
export function setJoinError(text) {
  const node = $('join-error');
  node.hidden = !text;
  node.textContent = text || '';
}

/** Loads the declared channels the token may see; a newer load wins. */
export async function loadChannels() {
  const load = ++state.declaredLoad;
  try {
    const items = await api('/api/channels', { token: state.token });
    if (load !== state.declaredLoad) return;
    state.declared = Array.isArray(items) ? items.filter((c) => isObject(c) && typeof c.name === 'string') : [];
    state.declaredError = null;
  } catch (e) {
    if (load !== state.declaredLoad) return;
    state.declared = [];
    state.declaredError = e;
  }
  renderChannelList();
}

/** Draws the declared channels with Join / Leave and their last error. */
export function renderChannelList() {
  const list = $('channel-list');
  const status = $('channel-list-status');
  const role = currentRole();
  const rows = state.declared.map((c) => declaredRow(c, role));
  list.replaceChildren(...rows);
  if (state.declaredError) {
    status.hidden = false;
    status.textContent = t('channels.load_failed', { code: state.declaredError.code, message: state.declaredError.message });
  } else if (rows.length === 0) {
    status.hidden = false;
    status.textContent = t('channels.none');
  } else {
    status.hidden = true;
    status.textContent = '';
  }
}

function declaredRow(c, role) {
  const tier = typeof c.tier === 'string' ? c.tier : '';
  const locked = !tierAdmits(tier, role);
  const entry = state.wanted.get(c.name);
  const err = state.channelErrors.get(c.name);
  let button;
  if (entry && entry.status === 'joined') {
    button = el('button', { type: 'button', class: 'btn btn-small', text: t('channels.leave'), onclick: () => unsubscribe(c.name) });
  } else if (entry) {
    button = el('button', { type: 'button', class: 'btn btn-small', text: entry.status === 'leaving' ? t('channels.leaving_button') : t('channels.joining_button'), disabled: true });
  } else {
    button = el('button', { type: 'button', class: 'btn btn-small btn-primary', text: t('channels.join'), onclick: () => subscribe(c.name, 'list') });
  }
  return el('li', { class: 'chan', dataset: { channel: c.name, tier, locked: String(locked) } },
    el('div', { class: 'chan-main' },
      locked ? lockIcon(t('channels.locked', { tier: tValue('common.tier.', tier), role: tValue('common.role.', role) })) : null,
      el('span', { class: 'chan-name', text: c.name }),
      tierTag(tier),
      el('span', { class: 'spacer' }),
      button),
    err ? el('p', { class: 'inline-error', text: `${err.code} — ${err.message}` }) : null);
}

/** Draws the subscriptions: automatic ones, wanted ones, and the room if it was left. */
export function renderSubscriptions() {
  const rows = [];
  if (state.welcomed) {
    for (const name of autoChannels()) {
      rows.push(el('li', { class: 'chan', dataset: { channel: name, status: 'auto' } },
        el('div', { class: 'chan-main' },
          el('span', { class: 'chan-name', text: name }),
          el('span', { class: 'tag', text: t('channels.automatic') }))));
    }
  }
  for (const [name, entry] of state.wanted) rows.push(wantedRow(name, entry));
  if (!state.wanted.has(VIDEO_CHANNEL)) {
    rows.push(el('li', { class: 'chan', dataset: { channel: VIDEO_CHANNEL, status: 'left' } },
      el('div', { class: 'chan-main' },
        el('span', { class: 'chan-name muted', text: VIDEO_CHANNEL }),
        el('span', { class: 'spacer' }),
        el('button', { type: 'button', class: 'btn btn-small btn-primary', text: t('channels.join_room'), onclick: () => subscribe(VIDEO_CHANNEL, 'room') }))));
  }
  $('subscriptions').replaceChildren(...rows);
  renderRoomStatus();
}

function wantedRow(name, entry) {
  const label = { joined: t('channels.joined'), pending: state.welcomed ? t('channels.joining') : t('channels.waiting'), leaving: t('channels.leaving') }[entry.status] || entry.status;
  return el('li', { class: 'chan', dataset: { channel: name, status: entry.status } },
    el('div', { class: 'chan-main' },
      el('span', { class: 'chan-name', text: name }),
      tierTag(entry.tier),
      el('span', { class: 'muted small', text: label }),
      el('span', { class: 'spacer' }),
      el('button', {
        type: 'button',
        class: 'btn btn-small',
        text: t('channels.leave'),
        disabled: entry.status === 'leaving',
        onclick: () => unsubscribe(name),
      })));
}

function renderRoomStatus() {
  const node = $('room-status');
  const entry = state.wanted.get(VIDEO_CHANNEL);
  const err = state.channelErrors.get(VIDEO_CHANNEL);
  let status = 'left';
  let text = t('channels.room_not_joined');
  if (entry) {
    status = entry.status;
    text = entry.status === 'joined' ? t('channels.room_live') : t('channels.joining');
  } else if (err) {
    status = 'error';
    text = err.code === 'member_only' ? t('channels.room_members_only') : `${err.code}: ${err.message}`;
  }
  node.dataset.status = status;
  node.textContent = text;
}

/** Wires the join box and the Reload button. */
export function wireChannels() {
  $('join-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const input = $('join-input');
    if (!input.value.trim()) return;
    subscribe(input.value, 'input');
    input.value = '';
  });
  $('channels-reload').addEventListener('click', loadChannels);
}
