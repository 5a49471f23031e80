// Admin console: the room rules of the Moderation panel's video (the picker,
// #comments-video). Owns
//
//   - slow mode (GET / PUT / DELETE /api/videos/{id}/slow-mode): the seconds a poster of
//     the chosen roles waits between two comments in this video, until cleared or for a
//     number of minutes (`until` = now + minutes);
//   - the flood rule (GET / PUT / DELETE /api/videos/{id}/flood-rule): more than
//     max_comments within window_s mutes for mute_s, later offences for each escalation
//     value in turn; the state line says whether the rule in force is the video's own or
//     the server's default, and "Use the default" deletes the video's own.
//
// Like static/admin/review.js, a room moderator (GET /api/me → moderates) reaches their
// videos only: on another video the controls are disabled and the line says why. Every
// refusal shows inline as "prefix: code: message", the prefix translated.
//
// SECURITY: text reaches the DOM through `el` / textContent only.

import { $, VIDEO_RE, dateTime } from '../lib/util.js';
import { localize, onLocaleChange, t, tValue } from '../lib/i18n.js';
import { call, state } from './state.js';
import { refreshModeration } from './moderation.js';

const SLOW_ROLES = ['guest', 'free', 'member'];

const enc = encodeURIComponent;

/** What is on show (null: nothing loaded), to redraw after a language switch. */
let slow = null; // {video, rule: {seconds, roles, until, by, set_at} | null}
let flood = null; // {video, rule: {max_comments, window_s, mute_s, escalation, source, by, set_at} | null}
/** The picked video when a room moderator does not moderate it (controls off), else null. */
let notMine = null;

function codeMessage(e) {
  return `${e.code}: ${e.message}`;
}

function say(node, tone, render) {
  node.dataset.tone = tone;
  localize(node, render);
}

function isAdmin() {
  return !!state.me && state.me.role === 'admin';
}

/** Whether the caller may set this video's rules: admins, and the video's moderators. */
function mayModerate(video) {
  if (isAdmin()) return true;
  return !!state.me && Array.isArray(state.me.moderates) && state.me.moderates.includes(video);
}

/** The picker's video id, or null (and says so in `status`) when it is not one. */
function pickedVideo(status) {
  const video = $('comments-video').value.trim();
  if (VIDEO_RE.test(video)) return video;
  if (status) say(status, 'error', () => t('admin.comments.need_video'));
  return null;
}

/** A whole number from an input (NaN when it is not one: the server says what is wrong). */
function whole(id) {
  const raw = $(id).value.trim();
  return raw === '' ? NaN : Number(raw);
}

/** Loads the picked video's slow mode and flood rule (after a sign-in or a Load). */
export async function loadRoomRules() {
  if (!state.token) return;
  const video = pickedVideo(null);
  if (!video) return;
  if (!mayModerate(video)) {
    notMine = video;
    slow = null;
    flood = null;
    localize($('slow-result'), null);
    localize($('flood-result'), null);
    renderSlow();
    renderFlood();
    return;
  }
  notMine = null;
  await Promise.all([loadSlow(video), loadFlood(video)]);
}

// ---------------------------------------------------------------------------------------
// Slow mode

async function loadSlow(video) {
  const result = $('slow-result');
  let rule = null;
  try {
    rule = await call(`/api/videos/${enc(video)}/slow-mode`);
  } catch (e) {
    if (pickedVideo(null) !== video) return;
    if (e.status !== 404 || e.code !== 'no_slow_mode') {
      slow = null;
      say(result, 'error', () => t('admin.slow.load_failed', { error: codeMessage(e) }));
      renderSlow();
      return;
    }
  }
  if (pickedVideo(null) !== video) return;
  slow = { video, rule: rule && Number.isSafeInteger(rule.seconds) ? rule : null };
  localize(result, null);
  renderSlow(true);
}

/** The state line; with `fields`, the form follows the rule in force too. */
function renderSlow(fields = false) {
  const line = $('slow-state');
  const off = !slow;
  for (const id of ['slow-save', 'slow-clear']) $(id).disabled = off;
  if (notMine) {
    line.dataset.seconds = '';
    line.textContent = t('admin.room_rules.not_moderator', { video: notMine });
    return;
  }
  if (!slow) {
    line.dataset.seconds = '';
    line.textContent = '';
    return;
  }
  const rule = slow.rule;
  $('slow-clear').disabled = !rule;
  line.dataset.seconds = rule ? String(rule.seconds) : '0';
  if (!rule) {
    line.textContent = t('admin.slow.state_none', { video: slow.video });
    return;
  }
  const roles = Array.isArray(rule.roles) ? rule.roles : [];
  if (fields) {
    $('slow-seconds').value = String(rule.seconds);
    for (const role of SLOW_ROLES) $(`slow-${role}`).checked = roles.includes(role);
  }
  const params = {
    video: slow.video,
    seconds: rule.seconds,
    roles: roles.map((r) => tValue('common.role.', r)).join(', '),
    by: rule.by,
    at: dateTime(rule.set_at),
  };
  line.textContent = rule.until
    ? t('admin.slow.state_until', { ...params, until: dateTime(rule.until) })
    : t('admin.slow.state', params);
}

async function saveSlow(ev) {
  ev.preventDefault();
  const result = $('slow-result');
  const video = pickedVideo(result);
  if (!video) return;
  const body = { seconds: whole('slow-seconds'), roles: SLOW_ROLES.filter((r) => $(`slow-${r}`).checked) };
  const minutes = $('slow-minutes').value.trim();
  if (minutes !== '') {
    const m = Number(minutes);
    if (!Number.isFinite(m) || m <= 0) {
      say(result, 'error', () => t('admin.slow.bad_minutes'));
      return;
    }
    body.until = Date.now() + Math.round(m * 60_000);
  }
  if (!Number.isFinite(body.seconds)) body.seconds = null; // the server names the field
  try {
    await call(`/api/videos/${enc(video)}/slow-mode`, { method: 'PUT', body });
  } catch (e) {
    say(result, 'error', () => t('admin.slow.failed', { error: codeMessage(e) }));
    return;
  }
  // The rule again first: a load clears the result line.
  await loadSlow(video);
  say(result, 'ok', () => t('admin.slow.saved', { video }));
  refreshModeration();
}

async function clearSlow() {
  const result = $('slow-result');
  const video = pickedVideo(result);
  if (!video) return;
  try {
    await call(`/api/videos/${enc(video)}/slow-mode`, { method: 'DELETE' });
  } catch (e) {
    say(result, 'error', () => t('admin.slow.clear_failed', { error: codeMessage(e) }));
    return;
  }
  await loadSlow(video);
  say(result, 'ok', () => t('admin.slow.cleared', { video }));
  refreshModeration();
}

// ---------------------------------------------------------------------------------------
// The flood rule

async function loadFlood(video) {
  const result = $('flood-result');
  let rule = null;
  try {
    rule = await call(`/api/videos/${enc(video)}/flood-rule`);
  } catch (e) {
    if (pickedVideo(null) !== video) return;
    if (e.status !== 404 || e.code !== 'no_flood_rule') {
      flood = null;
      say(result, 'error', () => t('admin.flood.load_failed', { error: codeMessage(e) }));
      renderFlood();
      return;
    }
  }
  if (pickedVideo(null) !== video) return;
  flood = { video, rule: rule && Number.isSafeInteger(rule.max_comments) ? rule : null };
  localize(result, null);
  renderFlood(true);
}

function renderFlood(fields = false) {
  const line = $('flood-state');
  const off = !flood;
  for (const id of ['flood-save', 'flood-clear']) $(id).disabled = off;
  if (notMine) {
    line.dataset.source = '';
    line.textContent = t('admin.room_rules.not_moderator', { video: notMine });
    return;
  }
  if (!flood) {
    line.dataset.source = '';
    line.textContent = '';
    return;
  }
  const rule = flood.rule;
  // Only the video's own rule can be deleted.
  $('flood-clear').disabled = !rule || rule.source !== 'video';
  line.dataset.source = rule ? String(rule.source) : 'none';
  if (!rule) {
    line.textContent = t('admin.flood.state_none', { video: flood.video });
    return;
  }
  const escalation = Array.isArray(rule.escalation) ? rule.escalation : [];
  if (fields) {
    $('flood-max').value = String(rule.max_comments);
    $('flood-window').value = String(rule.window_s);
    $('flood-mute').value = String(rule.mute_s);
    $('flood-escalation').value = escalation.join(', ');
  }
  const params = {
    video: flood.video,
    max: rule.max_comments,
    window: rule.window_s,
    mute: rule.mute_s,
    source: tValue('admin.flood.source.', rule.source),
  };
  let text = t('admin.flood.state', params);
  if (escalation.length) text += ` ${t('admin.flood.state_escalation', { escalation: escalation.join(', ') })}`;
  if (rule.source === 'video' && rule.by) text += ` ${t('admin.flood.state_by', { by: rule.by, at: dateTime(rule.set_at) })}`;
  line.textContent = text;
}

/** The escalation field as seconds (empty: none), or null when a value is not a number. */
function escalationValues() {
  const raw = $('flood-escalation').value.trim();
  if (raw === '') return [];
  const out = [];
  for (const part of raw.split(/[,，\s]+/)) {
    if (part === '') continue;
    const n = Number(part);
    if (!Number.isFinite(n)) return null;
    out.push(n);
  }
  return out;
}

async function saveFlood(ev) {
  ev.preventDefault();
  const result = $('flood-result');
  const video = pickedVideo(result);
  if (!video) return;
  const escalation = escalationValues();
  if (escalation === null) {
    say(result, 'error', () => t('admin.flood.bad_escalation'));
    return;
  }
  const num = (id) => {
    const n = whole(id);
    return Number.isFinite(n) ? n : null;
  };
  const body = { max_comments: num('flood-max'), window_s: num('flood-window'), mute_s: num('flood-mute') };
  if (escalation.length) body.escalation = escalation;
  try {
    await call(`/api/videos/${enc(video)}/flood-rule`, { method: 'PUT', body });
  } catch (e) {
    say(result, 'error', () => t('admin.flood.failed', { error: codeMessage(e) }));
    return;
  }
  await loadFlood(video);
  say(result, 'ok', () => t('admin.flood.saved', { video }));
  refreshModeration();
}

async function useDefault() {
  const result = $('flood-result');
  const video = pickedVideo(result);
  if (!video) return;
  try {
    await call(`/api/videos/${enc(video)}/flood-rule`, { method: 'DELETE' });
  } catch (e) {
    say(result, 'error', () => t('admin.flood.clear_failed', { error: codeMessage(e) }));
    return;
  }
  await loadFlood(video);
  say(result, 'ok', () => t('admin.flood.cleared', { video }));
  refreshModeration();
}

// ---------------------------------------------------------------------------------------

/** Wires the slow mode and flood rule forms (and the panel's picker). */
export function wireRoomRules() {
  $('comments-form').addEventListener('submit', () => loadRoomRules());
  $('slow-form').addEventListener('submit', saveSlow);
  $('slow-clear').addEventListener('click', clearSlow);
  $('flood-form').addEventListener('submit', saveFlood);
  $('flood-clear').addEventListener('click', useDefault);
  renderSlow();
  renderFlood();
  onLocaleChange(() => {
    renderSlow();
    renderFlood();
  });
}
