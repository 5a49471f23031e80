// Video page: sign-in and the session. Owns the token (kept in sessionStorage), the demo
// logins (POST /api/demo/token) and a pasted JWT, re-minting an expiring demo token,
// reacting to `token_expired` and to `refresh` replies, the Sign in panel's status line
// and buttons, and the role badge in the top bar.
//
// SECURITY: text reaches the DOM through `textContent` only.

import { $, DEMO_USERS, JWT_RE, decodeJwt, mintDemoToken, showToast } from '../lib/util.js';
import { STORAGE, identityKey, state } from './state.js';
import { reconnectNow, sendRefresh, setAuth } from './connection.js';
import { renderComposer } from './composer.js';
import { loadChannels } from './channels.js';
import { loadHistory } from './overlay-wiring.js';
import { loadVideos, renderVideos } from './videos.js';
import { logSystem } from './log.js';
import { locale, t, tValue } from '../lib/i18n.js';

/** Stores a token (or none) with its expiry and demo profile, and shows who you are. */
function setToken(token, expiresAt, demoProfile) {
  state.token = token || null;
  state.expiresAt = expiresAt || null;
  state.demo = demoProfile || null;
  if (state.token) sessionStorage.setItem(STORAGE.token, state.token);
  else sessionStorage.removeItem(STORAGE.token);
  if (state.expiresAt) sessionStorage.setItem(STORAGE.expires, String(state.expiresAt));
  else sessionStorage.removeItem(STORAGE.expires);
  if (state.demo) sessionStorage.setItem(STORAGE.demo, JSON.stringify(state.demo));
  else sessionStorage.removeItem(STORAGE.demo);
  renderIdentity();
}

async function mintAndStore(profile) {
  const { token, expiresAt } = await mintDemoToken(profile);
  setToken(token, expiresAt, profile);
}

/** Re-mints a demo token that expires within a minute, before connecting with it. */
async function refreshDemoTokenIfStale() {
  if (!state.token || !state.demo || !state.expiresAt) return;
  if (state.expiresAt * 1000 > Date.now() + 60_000) return;
  try {
    await mintAndStore(state.demo);
  } catch {
    // Connecting will fail and report why.
  }
}

/** After the server refused the token: an expired demo token is re-minted (true). */
async function renewRefusedToken(problem) {
  if (problem.code === 'token_expired' && state.demo) {
    try {
      await mintAndStore(state.demo);
      return true;
    } catch {
      // fall through and report the original problem
    }
  }
  return false;
}

/** Gives the connection its token hooks. */
export function useSessionTokens() {
  setAuth({ beforeOpen: refreshDemoTokenIfStale, renew: renewRefusedToken });
}

async function demoLogin(key) {
  const profile = DEMO_USERS[key];
  setLoginStatus(() => t('session.requesting', { sub: profile.sub }), 'info');
  try {
    await mintAndStore(profile);
    setLoginStatus(null);
    reconnectNow();
  } catch (e) {
    if (e.code === 'demo_disabled') {
      state.demoDisabled = true;
      renderLoginButtons();
      setLoginStatus(() => t('session.demo_unavailable'), 'warn');
    } else {
      setLoginStatus(() => t('session.demo_failed', { code: e.code, message: e.message }), 'error');
    }
  }
}

function loginGuest() {
  setToken(null, null, null);
  setLoginStatus(null);
  reconnectNow();
}

function applyPastedToken() {
  let raw = $('token-input').value.trim();
  if (/^bearer\s+/i.test(raw)) raw = raw.replace(/^bearer\s+/i, '');
  if (!raw) {
    setLoginStatus(() => t('session.paste_first'), 'error');
    return;
  }
  if (!JWT_RE.test(raw)) {
    setLoginStatus(() => t('session.not_jwt'), 'error');
    return;
  }
  const claims = decodeJwt(raw);
  const exp = claims && Number.isFinite(claims.exp) ? claims.exp : null;
  $('token-input').value = '';
  // Same user on a live socket: refresh in place, so the subscriptions stay.
  if (state.welcomed && state.user && state.user.sub && claims && claims.sub === state.user.sub) {
    const prev = { token: state.token, expiresAt: state.expiresAt, demo: state.demo };
    setToken(raw, exp, null);
    sendRefresh(raw, { prev });
    setLoginStatus(() => t('session.sending_refresh'), 'info');
    return;
  }
  setToken(raw, exp, null);
  setLoginStatus(null);
  reconnectNow();
}

/** The Sign in panel's status line: how to render it (or null), kept for a language switch. */
let loginStatus = null;

/** Shows (or, with null, hides) the Sign in panel's status line; `render()` gives its text. */
export function setLoginStatus(render, tone = 'info') {
  loginStatus = render ? { render, tone } : null;
  renderLoginStatus();
}

function renderLoginStatus() {
  const node = $('login-status');
  node.hidden = !loginStatus;
  node.textContent = loginStatus ? loginStatus.render() : '';
  node.dataset.tone = loginStatus ? loginStatus.tone : 'info';
}

/** Disables the demo buttons when the server does not run in demo mode. */
export function renderLoginButtons() {
  for (const key of Object.keys(DEMO_USERS)) {
    const button = $(`login-${key}`);
    button.disabled = state.demoDisabled;
    button.title = state.demoDisabled ? t('session.demo_unavailable_short') : '';
  }
}

// ---------------------------------------------------------------------------------------
// Reactions to the connection

/** `token_expired`: re-mint a demo token and refresh in place, else ask for a new one. */
export async function onTokenExpired(f) {
  const grace = Number(f.grace_s) || 0;
  if (state.demo && state.welcomed) {
    const prev = { token: state.token, expiresAt: state.expiresAt, demo: state.demo };
    try {
      await mintAndStore(state.demo);
      sendRefresh(state.token, { prev, quiet: true });
      showToast({ title: t('session.renewed'), body: t('session.renewed_body') });
      return;
    } catch (e) {
      setToken(prev.token, prev.expiresAt, prev.demo);
      logSystem('error', t('session.renew_failed', { message: e.message }));
    }
  }
  const message = () => t('session.expired_body', { grace });
  setLoginStatus(message, 'warn');
  showToast({ title: t('session.expired'), body: message(), tone: 'warn' });
}

/** The socket accepted a new token: a new identity reloads what depends on it. */
export function onRefreshed({ meta }) {
  setLoginStatus(meta.quiet ? null : () => t('session.refreshed'), 'ok');
  renderIdentity();
  renderComposer();
  loadChannels();
  if (state.historyFor !== identityKey()) {
    loadHistory();
    loadVideos();
  }
}

/** The socket refused a new token: the previous one stays. */
export function onRefreshRefused({ meta, error }) {
  setToken(meta.prev.token, meta.prev.expiresAt, meta.prev.demo);
  setLoginStatus(() => t('session.refresh_refused', { code: error.code, message: error.message }), 'error');
}

/** The server refused the token at connect: no retry until the viewer signs in again. */
export function onRefused(problem) {
  setLoginStatus(() => t('session.refused', { code: problem.code, message: problem.message }), 'error');
}

// ---------------------------------------------------------------------------------------
// Display and wiring

/** Shows who you are: the badge, the token line, the admin link, the active button. */
export function renderIdentity() {
  const { role, text, verified } = describeIdentity();
  const badge = $('role-badge');
  badge.textContent = text;
  badge.dataset.role = role;
  badge.dataset.verified = String(verified);

  const info = $('token-info');
  if (state.token) {
    const exp = state.expiresAt ? new Date(state.expiresAt * 1000) : null;
    const at = exp ? exp.toLocaleString(locale()) : null;
    if (state.demo) info.textContent = at ? t('session.token_demo_expires', { at }) : t('session.token_demo');
    else info.textContent = at ? t('session.token_pasted_expires', { at }) : t('session.token_pasted');
  } else {
    info.textContent = t('session.no_token');
  }
  $('admin-link').hidden = role !== 'admin';
  for (const key of ['alice', 'bob', 'admin']) {
    $(`login-${key}`).classList.toggle('active', Boolean(state.demo && state.demo.sub === key && state.token));
  }
  $('login-guest').classList.toggle('active', !state.token);
  renderComposer();
  if (state.videos) renderVideos();
}

/** The badge: the welcomed user, else what the token claims (unverified), else guest. */
function describeIdentity() {
  if (state.user) {
    const role = String(state.user.role ?? 'unknown');
    const sub = state.user.sub;
    const name = state.user.name;
    const who = name && name !== sub ? `${name} (${sub})` : sub;
    return { role, text: role === 'guest' || !sub ? t('session.guest_badge') : `${who} · ${roleName(role)}`, verified: true };
  }
  if (state.token) {
    const claims = decodeJwt(state.token) || {};
    const role = typeof claims.role === 'string' ? claims.role : 'unknown';
    return { role, text: `${claims.sub ? claims.sub : t('session.signing_in')} · ${roleName(role)}?`, verified: false };
  }
  return { role: 'guest', text: t('session.guest_badge'), verified: true };
}

/** A role's name in the page's language (unknown roles as they are). */
export function roleName(role) {
  return tValue('common.role.', role);
}

/** Re-renders this module's text after a language switch. */
export function relocalizeSession() {
  renderIdentity();
  renderLoginStatus();
  renderLoginButtons();
}

/** Wires the demo buttons, guest, and the pasted token (Enter applies it). */
export function wireSignIn() {
  for (const key of Object.keys(DEMO_USERS)) {
    $(`login-${key}`).addEventListener('click', () => demoLogin(key));
  }
  $('login-guest').addEventListener('click', loginGuest);
  $('token-apply').addEventListener('click', applyPastedToken);
  $('token-input').addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey) {
      ev.preventDefault();
      applyPastedToken();
    }
  });
}
