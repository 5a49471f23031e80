// Video page: the send box (#composer). Owns what the viewer's role may use (plain for
// free users, colours / modes / audience for members), the colour swatches, the length
// counter, the hints, the cooldown countdown, the refusal messages, and posting a comment
// (over the socket when it is open, else over REST).
//
// SECURITY: text reaches the DOM through `textContent`, text nodes and `el` only.

import { $, api, el, isObject, lockIcon, videoTime } from '../lib/util.js';
import { VIDEO_ID, currentRole, state } from './state.js';
import { request } from './connection.js';
import { overlay } from './overlay-wiring.js';
import { hiddenState, listComment } from './comments.js';
import { localize, t } from '../lib/i18n.js';

const SWATCHES = ['#ffffff', '#fe0302', '#ff7204', '#ffd302', '#00cd00', '#4266be', '#89d5ff', '#cc0273'];
/** Limits of the default server policy, for the counter only: the server decides. */
const MAX_LEN = { free: 30, member: 100, admin: 100 };

function caps() {
  const role = currentRole();
  const canPost = role === 'free' || role === 'member' || role === 'admin';
  return {
    role,
    canPost,
    styled: role === 'member' || role === 'admin',
    maxLen: MAX_LEN[role] ?? 30,
  };
}

/** Builds the colour swatches; each one sets the colour input. */
export function buildSwatches() {
  const box = $('dm-swatches');
  box.replaceChildren(...SWATCHES.map((c, i) => el('label', { class: 'swatch', title: c, style: `--swatch:${c}` },
    el('input', {
      type: 'radio', name: 'dm-swatch', value: c, checked: i === 0, 'aria-label': t('composer.colour', { c }),
      onchange: () => {
        $('dm-color').value = c;
      },
    }))));
  $('dm-color').addEventListener('input', () => {
    for (const r of document.querySelectorAll('input[name="dm-swatch"]')) r.checked = r.value === $('dm-color').value;
  });
}

/** Enables what the current role may use and says why the rest is off. */
export function renderComposer() {
  const c = caps();
  const locked = state.memberLocked;
  const form = $('composer');
  form.dataset.role = c.role;
  $('dm-text').disabled = !c.canPost || locked;
  $('dm-send').disabled = !c.canPost || locked || state.posting || Date.now() < state.cooldownUntil;
  $('dm-size').disabled = !c.canPost || locked;
  const styledOff = !c.styled || locked;
  for (const input of document.querySelectorAll('#dm-mode-set input, #dm-color-set input')) input.disabled = styledOff;
  $('dm-audience').disabled = styledOff;
  $('dm-options').dataset.locked = String(styledOff);
  if (!c.styled) {
    // Free users and guests post plain comments: scroll, white, everyone.
    document.querySelector('input[name="dm-mode"][value="scroll"]').checked = true;
    $('dm-color').value = '#ffffff';
    for (const r of document.querySelectorAll('input[name="dm-swatch"]')) r.checked = r.value === '#ffffff';
    $('dm-audience').value = 'everyone';
  }
  const hint = $('dm-hint');
  if (locked) {
    setHint('locked', t('composer.hint_locked'));
  } else if (c.role === 'guest') {
    setHint('guest', t('composer.hint_guest'));
  } else if (!c.canPost) {
    setHint('unknown', t('composer.hint_unknown'));
  } else if (!c.styled) {
    setHint('free', t('composer.hint_free'));
  } else {
    hint.hidden = true;
    hint.dataset.kind = '';
  }
  $('dm-text').placeholder = c.canPost
    ? t('composer.placeholder', { max: c.maxLen })
    : t('composer.placeholder_guest');
  updateCount();
}

function setHint(kind, text) {
  const hint = $('dm-hint');
  hint.hidden = false;
  hint.dataset.kind = kind;
  hint.replaceChildren(kind === 'free' || kind === 'locked' ? lockIcon(t('channels.room_members_only')) : '', ` ${text}`);
}

function updateCount() {
  const c = caps();
  const n = [...$('dm-text').value.trim()].length;
  const node = $('dm-count');
  node.textContent = `${n}/${c.maxLen}`;
  node.dataset.over = String(n > c.maxLen);
}

/** Friendly text for a refused post; the server's message is kept. */
function describeError(err) {
  const m = err.message ? String(err.message) : '';
  switch (err.code) {
    case 'text_too_long': return t('composer.err_too_long', { m });
    case 'text_empty': return t('composer.err_empty');
    case 'muted': return t('composer.err_muted', { m });
    case 'blocked': return t('composer.err_blocked');
    case 'member_style': return t('composer.err_member_style');
    case 'member_audience': return t('composer.err_member_audience');
    case 'login_required': return t('composer.err_login');
    case 'member_only': return t('composer.err_member_only');
    case 'network_error': return t('composer.err_network', { m });
    default: return `${err.code}: ${m}`;
  }
}

function showPostError(err) {
  const node = $('dm-error');
  clearInterval(state.cooldownTimer);
  state.cooldownTimer = null;
  node.dataset.code = String(err.code);
  node.hidden = false;
  if (err.code === 'cooldown') {
    // The countdown writes the line itself, in the current language, every 100 ms.
    localize(node, null);
    startCooldown(node, Number(err.retry_after_ms));
    return;
  }
  localize(node, () => describeError(err));
}

/** Counts down the server's cooldown every 100 ms; Send is off until it ends. */
function startCooldown(node, wait) {
  state.cooldownUntil = Date.now() + (Number.isFinite(wait) && wait > 0 ? wait : 1000);
  const tick = () => {
    const left = state.cooldownUntil - Date.now();
    if (left <= 0) {
      clearInterval(state.cooldownTimer);
      state.cooldownTimer = null;
      node.hidden = true;
      node.dataset.code = '';
      renderComposer();
      return;
    }
    node.textContent = t('composer.cooldown', { s: (left / 1000).toFixed(1) });
    node.dataset.left = String(left);
  };
  tick();
  state.cooldownTimer = setInterval(tick, 100);
  renderComposer();
}

function clearPostError() {
  if (state.cooldownTimer) return;
  const node = $('dm-error');
  node.hidden = true;
  localize(node, null);
  node.dataset.code = '';
}

/** The comment to post from the form's controls. */
function draftFromForm() {
  const c = caps();
  const video = $('video');
  const body = {
    text: $('dm-text').value,
    time: Math.round((Number(video.currentTime) || 0) * 1000) / 1000,
    size: $('dm-size').value,
  };
  if (c.styled) {
    body.mode = document.querySelector('input[name="dm-mode"]:checked').value;
    body.color = $('dm-color').value;
    body.audience = $('dm-audience').value;
  }
  return body;
}

/**
 * Posts a comment (over the socket when it is open, else over REST) and draws it from
 * the reply: the server never echoes a comment to its sender. Resolves with
 * {ok, danmaku} or {ok: false, error}.
 */
export async function post(body) {
  const frame = { op: 'danmaku', video: VIDEO_ID, ...body };
  let reply = await request(frame);
  if (reply === null) reply = await postOverRest(body);
  state.posts += 1;
  if (reply.ok && isObject(reply.danmaku)) {
    const held = hiddenState(reply.danmaku) === 'held';
    state.lastPost = { ok: true, id: reply.danmaku.id, text: reply.danmaku.text, held };
    // Held for review: listed as pending, not flown until a moderator approves it.
    if (!held) overlay.addLive(reply.danmaku, 'own');
    listComment(reply.danmaku, { mine: true });
    clearPostError();
    const ok = $('dm-ok');
    ok.hidden = false;
    ok.dataset.held = String(held);
    const at = videoTime(reply.danmaku.time);
    const members = reply.danmaku.audience === 'members';
    localize(ok, () => {
      if (held) return t('composer.sent_held', { at });
      return members ? t('composer.sent_members', { at }) : t('composer.sent', { at });
    });
    return { ok: true, danmaku: reply.danmaku };
  }
  const error = isObject(reply.error) ? reply.error : { code: 'error', message: t('composer.failed') };
  state.lastPost = { ok: false, code: String(error.code) };
  showPostError(error);
  $('dm-ok').hidden = true;
  return { ok: false, error };
}

/** Without an open socket: the same post over REST, its answer shaped like a reply. */
async function postOverRest(body) {
  try {
    const view = await api(`/api/videos/${encodeURIComponent(VIDEO_ID)}/danmaku`, { method: 'POST', body, token: state.token });
    return { ok: true, danmaku: view };
  } catch (e) {
    const error = { code: e.code, message: e.message };
    if (e.code === 'cooldown') error.retry_after_ms = (e.retryAfterS || 1) * 1000;
    return { ok: false, error };
  }
}

async function onComposerSubmit(ev) {
  ev.preventDefault();
  const c = caps();
  if (!c.canPost || state.posting) return;
  if (Date.now() < state.cooldownUntil) return;
  const body = draftFromForm();
  if (!body.text.trim()) {
    showPostError({ code: 'text_empty', message: '' });
    return;
  }
  state.posting = true;
  renderComposer();
  try {
    const r = await post(body);
    if (r.ok) {
      $('dm-text').value = '';
      updateCount();
    }
  } finally {
    state.posting = false;
    renderComposer();
    $('dm-text').focus();
  }
}

/** Wires the form: submit posts, typing updates the counter and clears an old error. */
export function wireComposer() {
  $('composer').addEventListener('submit', onComposerSubmit);
  $('dm-text').addEventListener('input', () => {
    updateCount();
    if ($('dm-error').dataset.code !== 'cooldown') clearPostError();
  });
}
