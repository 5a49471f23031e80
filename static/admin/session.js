// Admin console: sign-in. Owns the demo admin login (POST /api/demo/token), a pasted
// JWT, sign-out, asking the server who the token is (GET /api/me) and the role badge
// and status line that say so.
//
// SECURITY: text reaches the DOM through `textContent` only.

import { $, DEMO_USERS, JWT_RE, decodeJwt, mintDemoToken } from '../lib/util.js';
import { localize, t, tValue } from '../lib/i18n.js';
import { call, setToken, state } from './state.js';

/** Reloads every panel after a sign-in; set by `wireSignIn`. */
let refreshAll = async () => {};

/** Shows `render()` (kept in the active language) in the status line, or hides it for null. */
function setStatus(render, tone = 'info') {
  const node = $('signin-status');
  node.hidden = !render;
  localize(node, render);
  node.dataset.tone = tone;
}

/** Asks the server who the token is and shows it (admin calls need role admin). */
export async function whoAmI() {
  const badge = $('role-badge');
  // The markup's key only fills the first paint; from here on this code keeps the badge.
  delete badge.dataset.i18n;
  if (!state.token) {
    state.me = null;
    localize(badge, () => t('common.signed_out'));
    badge.dataset.role = 'guest';
    setStatus(() => t('admin.signin.needed'), 'warn');
    return;
  }
  try {
    const me = await call('/api/me');
    state.me = me;
    localize(badge, () => t('admin.badge.user', { name: me.name || me.sub || 'api', role: tValue('common.role.', me.role) }));
    badge.dataset.role = me.role;
    const moderates = Array.isArray(me.moderates) ? me.moderates : [];
    if (me.role !== 'admin' && moderates.length) {
      setStatus(() => t('admin.signin.moderator', { sub: me.sub, videos: moderates.join(', ') }), 'warn');
    } else if (me.role !== 'admin') {
      setStatus(() => t('admin.signin.not_admin', { role: tValue('common.role.', me.role) }), 'warn');
    } else {
      setStatus(() => t('admin.signin.ok', { sub: me.sub }), 'ok');
    }
  } catch (e) {
    state.me = null;
    localize(badge, () => t('admin.badge.refused'));
    badge.dataset.role = 'guest';
    setStatus(() => t('admin.signin.refused', { error: `${e.code}: ${e.message}` }), 'error');
  }
}

async function loginDemoAdmin() {
  try {
    const { token } = await mintDemoToken(DEMO_USERS.admin);
    setToken(token);
    await refreshAll();
  } catch (e) {
    setStatus(() => (e.code === 'demo_disabled'
      ? t('admin.signin.demo_off')
      : t('admin.signin.demo_failed', { error: `${e.code}: ${e.message}` })), 'error');
  }
}

function applyPastedToken() {
  let raw = $('token-input').value.trim();
  raw = raw.replace(/^bearer\s+/i, '');
  if (!JWT_RE.test(raw)) {
    setStatus(() => t('admin.signin.not_jwt'), 'error');
    return;
  }
  const claims = decodeJwt(raw);
  $('token-input').value = '';
  setToken(raw);
  if (claims && claims.role !== 'admin') setStatus(() => t('admin.signin.claims_role', { role: tValue('common.role.', claims.role) }), 'warn');
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
