// Admin console: sign-in. Owns the demo admin login (POST /api/demo/token), a pasted
// JWT, sign-out, asking the server who the token is (GET /api/me) and the role badge
// and status line that say so.
//
// SECURITY: text reaches the DOM through `textContent` only.

import { $, DEMO_USERS, JWT_RE, decodeJwt, mintDemoToken } from '../lib/util.js';
import { call, setToken, state } from './state.js';

/** Reloads every panel after a sign-in; set by `wireSignIn`. */
let refreshAll = async () => {};

function setStatus(text, tone = 'info') {
  const node = $('signin-status');
  node.hidden = !text;
  node.textContent = text || '';
  node.dataset.tone = tone;
}

/** Asks the server who the token is and shows it (admin calls need role admin). */
export async function whoAmI() {
  const badge = $('role-badge');
  if (!state.token) {
    state.me = null;
    badge.textContent = 'signed out';
    badge.dataset.role = 'guest';
    setStatus('Sign in as the demo admin, or paste an admin token, to use the console.', 'warn');
    return;
  }
  try {
    const me = await call('/api/me');
    state.me = me;
    badge.textContent = `${me.name || me.sub || 'api'} · ${me.role}`;
    badge.dataset.role = me.role;
    if (me.role !== 'admin') {
      setStatus(`This token is for a ${me.role}: admin calls will answer 403. Use an admin token.`, 'warn');
    } else {
      setStatus(`Signed in as ${me.sub} (admin).`, 'ok');
    }
  } catch (e) {
    state.me = null;
    badge.textContent = 'token refused';
    badge.dataset.role = 'guest';
    setStatus(`The server refused the token: ${e.code}: ${e.message}`, 'error');
  }
}

async function loginDemoAdmin() {
  try {
    const { token } = await mintDemoToken(DEMO_USERS.admin);
    setToken(token);
    await refreshAll();
  } catch (e) {
    setStatus(e.code === 'demo_disabled'
      ? 'Demo logins are off on this server (it does not run with --demo). Paste an admin JWT instead (danmaku token --sub you --role admin).'
      : `Demo login failed: ${e.code}: ${e.message}`, 'error');
  }
}

function applyPastedToken() {
  let raw = $('token-input').value.trim();
  raw = raw.replace(/^bearer\s+/i, '');
  if (!JWT_RE.test(raw)) {
    setStatus('That does not look like a JWT (three base64url parts separated by dots).', 'error');
    return;
  }
  const claims = decodeJwt(raw);
  $('token-input').value = '';
  setToken(raw);
  if (claims && claims.role !== 'admin') setStatus(`Note: the token claims role ${claims.role}.`, 'warn');
  refreshAll();
}

/** Wires the demo login, sign-out and the pasted token; `refresh` reloads the panels. */
export function wireSignIn(refresh) {
  refreshAll = refresh;
  $('login-admin').addEventListener('click', loginDemoAdmin);
  $('logout').addEventListener('click', () => {
    setToken(null);
    whoAmI();
  });
  $('token-apply').addEventListener('click', applyPastedToken);
}
