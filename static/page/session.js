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
  setLoginStatus(`Requesting a demo token for ${profile.sub}…`, 'info');
  try {
    await mintAndStore(profile);
    setLoginStatus(null);
    reconnectNow();
  } catch (e) {
    if (e.code === 'demo_disabled') {
      state.demoDisabled = true;
      renderLoginButtons();
      setLoginStatus(
        'Demo logins are unavailable: this server does not run in demo mode. Paste a JWT below, or continue as guest.',
        'warn',
      );
    } else {
      setLoginStatus(`Demo login failed: ${e.code}: ${e.message}`, 'error');
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
    setLoginStatus('Paste a JWT first.', 'error');
    return;
  }
  if (!JWT_RE.test(raw)) {
    setLoginStatus('That does not look like a JWT (three base64url parts separated by dots).', 'error');
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
    setLoginStatus('Sending the new token on the open socket…', 'info');
    return;
  }
  setToken(raw, exp, null);
  setLoginStatus(null);
  reconnectNow();
}

/** Shows (or, with null, hides) the Sign in panel's status line. */
export function setLoginStatus(text, tone = 'info') {
  const node = $('login-status');
  node.hidden = !text;
  node.textContent = text || '';
  node.dataset.tone = tone;
}

/** Disables the demo buttons when the server does not run in demo mode. */
export function renderLoginButtons() {
  for (const key of Object.keys(DEMO_USERS)) {
    const button = $(`login-${key}`);
    button.disabled = state.demoDisabled;
    button.title = state.demoDisabled ? 'Demo logins are unavailable on this server' : '';
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
      showToast({ title: 'Token renewed', body: 'A fresh demo token was sent on the open socket.' });
      return;
    } catch (e) {
      setToken(prev.token, prev.expiresAt, prev.demo);
      logSystem('error', `could not renew the demo token: ${e.message}`);
    }
  }
  const msg = `Your token expired. Paste a new one within ${grace}s, or the server closes the socket (4001).`;
  setLoginStatus(msg, 'warn');
  showToast({ title: 'Token expired', body: msg, tone: 'warn' });
}

/** The socket accepted a new token: a new identity reloads what depends on it. */
export function onRefreshed({ meta }) {
  setLoginStatus(meta.quiet ? null : 'Token refreshed on the open socket.', 'ok');
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
  setLoginStatus(`Refresh refused: ${error.code}: ${error.message}`, 'error');
}

/** The server refused the token at connect: no retry until the viewer signs in again. */
export function onRefused(problem) {
  setLoginStatus(
    `The server refused the token: ${problem.code}: ${problem.message}. Sign in again or continue as guest.`,
    'error',
  );
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
    info.textContent = `${state.demo ? 'Demo token' : 'Pasted token'}${exp ? `, expires ${exp.toLocaleString()}` : ''}.`;
  } else {
    info.textContent = 'No token: you watch as a guest.';
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
    return { role, text: role === 'guest' || !sub ? 'guest (read-only)' : `${who} · ${role}`, verified: true };
  }
  if (state.token) {
    const claims = decodeJwt(state.token) || {};
    const role = typeof claims.role === 'string' ? claims.role : 'unknown';
    return { role, text: `${claims.sub ? claims.sub : 'signing in'} · ${role}?`, verified: false };
  }
  return { role: 'guest', text: 'guest (read-only)', verified: true };
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
