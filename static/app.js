// danmaku browser demo.
//
// Protocol v1 (src/ws/protocol.rs): the first frame is `welcome`; client ops are
// subscribe / unsubscribe / refresh / ping with an `id` echoed in `reply`; channel events
// are {type, channel, seq, ts, data}; pushes carry data = {payload}. A frame may also be a
// JSON array of such objects.
//
// SECURITY: every piece of text from the server or the user reaches the DOM through
// `textContent`, text nodes or `createElement`. This file never parses HTML.

const STORAGE = {
  token: 'danmaku.token',
  expires: 'danmaku.expires_at',
  demo: 'danmaku.demo_profile',
};
const LOG_CAP = 200;
const NOTIFICATION_CAP = 50;
const TOAST_MS = 5000;
const MAX_TOASTS = 5;
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30000;
const CHANNEL_RE = /^[A-Za-z0-9\-_.:@]{1,128}$/;
const SUB_RE = /^[A-Za-z0-9\-_.@]{1,64}$/;
const JWT_RE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** The demo logins offered as buttons. Guests have no token at all. */
const DEMO_USERS = {
  alice: { sub: 'alice', role: 'member', name: 'alice' },
  bob: { sub: 'bob', role: 'free', name: 'bob' },
  admin: { sub: 'admin', role: 'admin', name: 'admin' },
};

/** Close codes the server uses (src/hub/conn.rs) plus the browser's own. */
const CLOSE_CODES = {
  1000: 'normal closure',
  1001: 'server shutting down',
  1003: 'unsupported frame',
  1005: 'no status',
  1006: 'connection lost or refused',
  1008: 'too many invalid frames',
  1009: 'message too big',
  1011: 'internal error',
  4001: 'token expired',
  4002: 'idle timeout',
  4008: 'slow consumer',
};

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------
// Small helpers

/** Builds an element. `text` sets textContent; strings among children become text nodes. */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key === 'text') node.textContent = String(value);
    else if (key === 'class') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') {
      node.addEventListener(key.slice(2), value);
    } else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child != null && child !== false) node.append(child);
  }
  return node;
}

function readJson(text) {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Pretty JSON for display; never throws. */
function pretty(value) {
  if (value === undefined) return '';
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

function clip(text, max) {
  const s = String(text);
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

function clockTime(ms) {
  const d = new Date(ms);
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** Reads a JWT's claims for display only (the server verifies; we never trust this). */
function decodeJwt(token) {
  try {
    const part = token.split('.')[1];
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return isObject(claims) ? claims : null;
  } catch {
    return null;
  }
}

/** A failed HTTP call, with the server's `{code, message}` when it sent one. */
class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Calls the REST API with relative URLs; throws ApiError on failure. */
async function api(path, { method = 'GET', body, token } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(0, 'network_error', `could not reach the server (${e.message})`);
  }
  const text = await res.text();
  const json = readJson(text);
  if (!res.ok) {
    const code = isObject(json) && typeof json.code === 'string' ? json.code : `http_${res.status}`;
    const message = isObject(json) && typeof json.message === 'string'
      ? json.message
      : clip(text || res.statusText, 200);
    throw new ApiError(res.status, code, message);
  }
  return json;
}

// ---------------------------------------------------------------------------------------
// State

function videoIdFromPath() {
  const m = location.pathname.match(/^\/watch\/([^/]+)\/?$/);
  if (m) {
    try {
      const id = decodeURIComponent(m[1]);
      if (CHANNEL_RE.test(`video:${id}`)) return id;
    } catch {
      // fall through to the default
    }
  }
  return 'demo';
}

const VIDEO_CHANNEL = `video:${videoIdFromPath()}`;

const state = {
  token: sessionStorage.getItem(STORAGE.token) || null,
  expiresAt: Number(sessionStorage.getItem(STORAGE.expires)) || null,
  /** The demo login used for the token, so an expiring token can be re-minted. */
  demo: readJson(sessionStorage.getItem(STORAGE.demo)),
  demoDisabled: false,
  /** `welcome.user` of the current socket. */
  user: null,
  ws: null,
  /** Bumped on every connect; handlers of older sockets ignore their events. */
  gen: 0,
  welcomed: false,
  conn: null,
  heartbeatS: null,
  attempt: 0,
  /** When the current socket got its welcome (performance.now ms). */
  openedAt: 0,
  retryTimer: null,
  retryAt: 0,
  lastClose: null,
  stopped: false,
  rtt: null,
  heartbeatTimer: null,
  nextId: 1,
  /** id -> {op, channel, origin, ...} of ops awaiting a reply. */
  pending: new Map(),
  /** Channels the user joined (resubscribed after a reconnect): name -> {status, tier}. */
  wanted: new Map([[VIDEO_CHANNEL, { status: 'pending', tier: null }]]),
  /** Last subscribe error per channel, shown inline. */
  channelErrors: new Map(),
  declared: [],
  declaredError: null,
  declaredLoad: 0,
};

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

/** Role of the socket, or what the token claims before the welcome arrives. */
function currentRole() {
  if (state.user) return state.user.role;
  if (!state.token) return 'guest';
  const claims = decodeJwt(state.token);
  return (claims && typeof claims.role === 'string') ? claims.role : 'unknown';
}

function autoChannels() {
  const list = ['broadcast'];
  if (state.user && state.user.sub) list.push(`user:${state.user.sub}`);
  return list;
}

function isAutoChannel(name) {
  return autoChannels().includes(name) || name === 'broadcast';
}

// ---------------------------------------------------------------------------------------
// Connection

function wsUrl() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  let url = `${proto}//${location.host}/ws`;
  if (state.token) url += `?access_token=${encodeURIComponent(state.token)}`;
  return url;
}

async function connect() {
  clearTimeout(state.retryTimer);
  state.retryTimer = null;
  state.stopped = false;
  const gen = ++state.gen;
  const old = state.ws;
  state.ws = null;
  if (old && old.readyState <= WebSocket.OPEN) {
    try {
      old.close(1000, 'reconnecting');
    } catch {
      // already closing
    }
  }
  stopHeartbeat();
  state.user = null;
  state.welcomed = false;
  state.conn = null;
  state.rtt = null;
  state.lastClose = null;
  state.pending.clear();
  // Errors belong to the previous socket (maybe another identity); resubscribing after the
  // welcome reports any that still apply.
  state.channelErrors.clear();
  setJoinError(null);
  for (const entry of state.wanted.values()) entry.status = 'pending';
  renderConn();
  renderIdentity();
  renderSubscriptions();

  await refreshDemoTokenIfStale();
  if (gen !== state.gen) return;

  let ws;
  try {
    ws = new WebSocket(wsUrl());
  } catch (e) {
    logSystem('error', `cannot open a WebSocket: ${e.message}`);
    state.lastClose = { code: 0, reason: e.message };
    scheduleReconnect();
    return;
  }
  state.ws = ws;
  logSystem('connecting', state.token ? 'opening /ws with a token' : 'opening /ws as a guest');
  ws.addEventListener('open', () => {
    if (gen === state.gen) renderConn();
  });
  ws.addEventListener('message', (ev) => {
    if (gen === state.gen) onMessage(ev.data);
  });
  // An `error` event is always followed by `close`; close carries the details.
  ws.addEventListener('close', (ev) => {
    if (gen === state.gen) onClose(ev, gen);
  });
}

async function onClose(ev, gen) {
  const wasWelcomed = state.welcomed;
  // Only a connection that stayed up a while resets the backoff: a server that welcomes
  // and then closes at once must not cause a tight reconnect loop.
  if (wasWelcomed && performance.now() - state.openedAt > 10_000) state.attempt = 0;
  state.ws = null;
  state.welcomed = false;
  stopHeartbeat();
  const reason = ev.reason || CLOSE_CODES[ev.code] || '';
  state.lastClose = { code: ev.code, reason };
  for (const entry of state.wanted.values()) entry.status = 'pending';
  renderSubscriptions();
  logSystem('closed', `code ${ev.code}${reason ? ` · ${reason}` : ''}`);

  // A socket that closes before `welcome` was usually refused at the upgrade (HTTP 401),
  // which browsers report only as 1006. Ask the REST API what it thinks of the token.
  if (!wasWelcomed && state.token) {
    const token = state.token;
    const problem = await diagnoseToken(token);
    if (gen !== state.gen) return;
    if (problem) {
      if (problem.code === 'token_expired' && state.demo) {
        try {
          await mintAndStore(state.demo);
          scheduleReconnect();
          return;
        } catch {
          // fall through and report the original problem
        }
      }
      state.stopped = true;
      state.lastClose = { code: ev.code, reason: `token refused (${problem.code})` };
      setLoginStatus(
        `The server refused the token: ${problem.code}: ${problem.message}. Sign in again or continue as guest.`,
        'error',
      );
      renderConn();
      return;
    }
  }
  scheduleReconnect();
}

/** Returns {code, message} when the API rejects the token with 401, else null. */
async function diagnoseToken(token) {
  try {
    await api('/api/me', { token });
    return null;
  } catch (e) {
    return e.status === 401 ? { code: e.code, message: e.message } : null;
  }
}

function scheduleReconnect() {
  clearTimeout(state.retryTimer);
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** state.attempt);
  // ±25% jitter so that many clients do not come back in lockstep after a restart.
  const delay = Math.min(BACKOFF_MAX_MS, Math.round(base * (0.75 + Math.random() * 0.5)));
  state.attempt = Math.min(state.attempt + 1, 16);
  state.retryAt = Date.now() + delay;
  state.retryTimer = setTimeout(connect, delay);
  renderConn();
}

function onMessage(raw) {
  let msg;
  try {
    msg = JSON.parse(raw);
  } catch {
    logEntry({ kind: 'error', type: 'bad frame', body: clip(String(raw), 2000) });
    return;
  }
  // The server may batch several frames into one JSON array.
  const frames = Array.isArray(msg) ? msg : [msg];
  for (const frame of frames) {
    if (!isObject(frame)) {
      logEntry({ kind: 'error', type: 'bad frame', body: pretty(frame) });
      continue;
    }
    try {
      handleFrame(frame);
    } catch (e) {
      logEntry({ kind: 'error', type: 'client error', body: `${e.message}\n\n${pretty(frame)}` });
    }
  }
}

function handleFrame(f) {
  switch (f.type) {
    case 'welcome':
      return onWelcome(f);
    case 'reply':
      return onReply(f);
    case 'unsubscribed':
      return onUnsubscribed(f);
    case 'token_expired':
      return onTokenExpired(f);
    case 'batch': {
      const inner = Array.isArray(f.events) ? f.events : Array.isArray(f.frames) ? f.frames : null;
      if (inner) {
        for (const item of inner) if (isObject(item)) handleFrame(item);
        return undefined;
      }
      break;
    }
    default:
      if (typeof f.channel === 'string') return onEvent(f);
  }
  logEntry({ kind: 'protocol', type: String(f.type ?? 'unknown'), body: pretty(f) });
  return undefined;
}

function onWelcome(f) {
  state.welcomed = true;
  state.openedAt = performance.now();
  state.conn = f.conn ?? null;
  state.user = isObject(f.user) ? f.user : { sub: null, name: 'guest', role: 'guest' };
  state.heartbeatS = Number(f.heartbeat_s) || null;
  state.lastClose = null;
  logEntry({ kind: 'protocol', type: 'welcome', body: pretty(f) });
  renderConn();
  renderIdentity();
  startHeartbeat();
  for (const name of [...state.wanted.keys()]) {
    if (isAutoChannel(name)) state.wanted.delete(name);
    else send({ op: 'subscribe', channel: name }, { channel: name, origin: 'resubscribe' });
  }
  renderSubscriptions();
  loadChannels();
}

function onReply(f) {
  const meta = state.pending.get(f.id);
  state.pending.delete(f.id);
  if (meta && meta.op === 'ping') {
    if (f.ok) state.rtt = Math.round(performance.now() - meta.sentAt);
    renderConn();
    return;
  }
  logEntry({
    kind: f.ok ? 'reply' : 'reply-error',
    type: `reply${meta ? ` · ${meta.op}` : ''}`,
    channel: meta && meta.channel,
    body: pretty(f),
  });
  if (!meta) return;
  const err = isObject(f.error) ? f.error : { code: 'error', message: 'request failed' };
  switch (meta.op) {
    case 'subscribe':
      if (f.ok || err.code === 'already_subscribed') {
        state.wanted.set(meta.channel, { status: 'joined', tier: f.tier ?? null });
        state.channelErrors.delete(meta.channel);
        if (meta.origin === 'input') setJoinError(null);
      } else {
        state.wanted.delete(meta.channel);
        showChannelError(meta.channel, err, meta.origin);
      }
      break;
    case 'unsubscribe':
      if (f.ok || err.code === 'not_subscribed') state.wanted.delete(meta.channel);
      else showChannelError(meta.channel, err, meta.origin);
      break;
    case 'refresh':
      if (f.ok) {
        if (isObject(f.user)) state.user = f.user;
        setLoginStatus(meta.quiet ? null : 'Token refreshed on the open socket.', 'ok');
        renderIdentity();
        loadChannels();
      } else {
        setToken(meta.prev.token, meta.prev.expiresAt, meta.prev.demo);
        setLoginStatus(`Refresh refused: ${err.code}: ${err.message}`, 'error');
      }
      break;
    default:
      break;
  }
  renderSubscriptions();
  renderChannelList();
}

function onUnsubscribed(f) {
  const channel = String(f.channel ?? '');
  state.wanted.delete(channel);
  const err = { code: String(f.reason ?? 'unsubscribed'), message: String(f.message ?? '') };
  state.channelErrors.set(channel, err);
  logEntry({ kind: 'reply-error', type: 'unsubscribed', channel, body: pretty(f) });
  showToast({ title: `Left ${channel}`, body: `${err.code}: ${err.message}`, tone: 'warn' });
  renderSubscriptions();
  renderChannelList();
}

async function onTokenExpired(f) {
  const grace = Number(f.grace_s) || 0;
  logEntry({ kind: 'protocol', type: 'token_expired', body: pretty(f) });
  if (state.demo && state.welcomed) {
    const prev = { token: state.token, expiresAt: state.expiresAt, demo: state.demo };
    try {
      await mintAndStore(state.demo);
      send({ op: 'refresh', token: state.token }, { prev, quiet: true });
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

/** Sends an op with a fresh id; returns the id, or null when there is no open socket. */
function send(frame, meta = {}) {
  const ws = state.ws;
  if (!ws || ws.readyState !== WebSocket.OPEN || !state.welcomed) return null;
  const id = state.nextId++;
  state.pending.set(id, { ...meta, op: frame.op });
  ws.send(JSON.stringify({ op: frame.op, id, ...frame }));
  return id;
}

function startHeartbeat() {
  stopHeartbeat();
  // The server pings at the protocol level too; this app-level ping measures latency.
  const every = Math.max(5, state.heartbeatS || 25) * 1000;
  const ping = () => send({ op: 'ping' }, { sentAt: performance.now() });
  ping();
  state.heartbeatTimer = setInterval(ping, every);
}

function stopHeartbeat() {
  clearInterval(state.heartbeatTimer);
  state.heartbeatTimer = null;
}

// ---------------------------------------------------------------------------------------
// Sign-in

async function mintAndStore(profile) {
  const reply = await api('/api/demo/token', {
    method: 'POST',
    body: { sub: profile.sub, role: profile.role, name: profile.name },
  });
  if (!isObject(reply) || typeof reply.token !== 'string') {
    throw new ApiError(500, 'bad_reply', 'the server sent no token');
  }
  setToken(reply.token, Number(reply.expires_at) || null, profile);
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

async function demoLogin(key) {
  const profile = DEMO_USERS[key];
  setLoginStatus(`Requesting a demo token for ${profile.sub}…`, 'info');
  try {
    await mintAndStore(profile);
    setLoginStatus(null);
    state.attempt = 0;
    connect();
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
  state.attempt = 0;
  connect();
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
    send({ op: 'refresh', token: raw }, { prev });
    setLoginStatus('Sending the new token on the open socket…', 'info');
    return;
  }
  setToken(raw, exp, null);
  setLoginStatus(null);
  state.attempt = 0;
  connect();
}

function setLoginStatus(text, tone = 'info') {
  const node = $('login-status');
  node.hidden = !text;
  node.textContent = text || '';
  node.dataset.tone = tone;
}

function renderLoginButtons() {
  for (const key of Object.keys(DEMO_USERS)) {
    const button = $(`login-${key}`);
    button.disabled = state.demoDisabled;
    button.title = state.demoDisabled ? 'Demo logins are unavailable on this server' : '';
  }
}

// ---------------------------------------------------------------------------------------
// Channels

function subscribe(name, origin) {
  const channel = name.trim();
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
    showChannelError(channel, { code: 'already_subscribed', message: `already subscribed to ${channel}` }, origin);
    return;
  }
  state.channelErrors.delete(channel);
  if (origin === 'input') setJoinError(null);
  state.wanted.set(channel, { status: 'pending', tier: null });
  // Without an open socket the channel is joined right after the next welcome.
  send({ op: 'subscribe', channel }, { channel, origin });
  renderSubscriptions();
  renderChannelList();
}

function unsubscribe(channel) {
  state.channelErrors.delete(channel);
  if (send({ op: 'unsubscribe', channel }, { channel, origin: 'list' }) === null) {
    state.wanted.delete(channel);
  } else {
    state.wanted.set(channel, { ...state.wanted.get(channel), status: 'leaving' });
  }
  renderSubscriptions();
  renderChannelList();
}

function showChannelError(channel, err, origin) {
  state.channelErrors.set(channel, { code: String(err.code), message: String(err.message ?? '') });
  const listed = state.declared.some((c) => c.name === channel);
  if (origin === 'input' || (!listed && channel !== VIDEO_CHANNEL)) {
    setJoinError(`${channel}: ${err.code} — ${err.message}`);
  }
  renderChannelList();
  renderRoomStatus();
}

function setJoinError(text) {
  const node = $('join-error');
  node.hidden = !text;
  node.textContent = text || '';
}

async function loadChannels() {
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

/** Whether a role may join a tier (mirrors Tier::admits in src/access.rs). */
function tierAdmits(tier, role) {
  if (tier === 'member') return role === 'member' || role === 'admin';
  if (tier === 'admin') return role === 'admin';
  return true;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** A padlock drawn in SVG (no emoji font needed), with a tooltip. */
function lockIcon(title) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 16 16');
  svg.setAttribute('width', '14');
  svg.setAttribute('height', '14');
  svg.setAttribute('aria-hidden', 'true');
  const shackle = document.createElementNS(SVG_NS, 'path');
  shackle.setAttribute('d', 'M5 7V5a3 3 0 0 1 6 0v2');
  shackle.setAttribute('fill', 'none');
  shackle.setAttribute('stroke', 'currentColor');
  shackle.setAttribute('stroke-width', '1.6');
  const body = document.createElementNS(SVG_NS, 'rect');
  body.setAttribute('x', '3');
  body.setAttribute('y', '7');
  body.setAttribute('width', '10');
  body.setAttribute('height', '7');
  body.setAttribute('rx', '1.5');
  body.setAttribute('fill', 'currentColor');
  svg.append(shackle, body);
  return el('span', { class: 'lock', title, role: 'img', 'aria-label': 'locked' }, svg);
}

function tierTag(tier) {
  return tier ? el('span', { class: 'tag', dataset: { tier }, text: tier }) : null;
}

function renderChannelList() {
  const list = $('channel-list');
  const status = $('channel-list-status');
  const role = currentRole();
  const rows = state.declared.map((c) => {
    const tier = typeof c.tier === 'string' ? c.tier : '';
    const locked = !tierAdmits(tier, role);
    const entry = state.wanted.get(c.name);
    const err = state.channelErrors.get(c.name);
    let button;
    if (entry && entry.status === 'joined') {
      button = el('button', { type: 'button', class: 'btn btn-small', text: 'Leave', onclick: () => unsubscribe(c.name) });
    } else if (entry) {
      button = el('button', { type: 'button', class: 'btn btn-small', text: entry.status === 'leaving' ? 'Leaving…' : 'Joining…', disabled: true });
    } else {
      button = el('button', { type: 'button', class: 'btn btn-small btn-primary', text: 'Join', onclick: () => subscribe(c.name, 'list') });
    }
    return el('li', { class: 'chan', dataset: { channel: c.name, tier, locked: String(locked) } },
      el('div', { class: 'chan-main' },
        locked ? lockIcon(`${tier} tier: your role (${role}) may not join`) : null,
        el('span', { class: 'chan-name', text: c.name }),
        tierTag(tier),
        el('span', { class: 'spacer' }),
        button),
      err ? el('p', { class: 'inline-error', text: `${err.code} — ${err.message}` }) : null);
  });
  list.replaceChildren(...rows);
  if (state.declaredError) {
    status.hidden = false;
    status.textContent = `Could not load channels: ${state.declaredError.code}: ${state.declaredError.message}`;
  } else if (rows.length === 0) {
    status.hidden = false;
    status.textContent = 'No declared channels you may join. An admin declares them with PUT /api/channels/{name}.';
  } else {
    status.hidden = true;
    status.textContent = '';
  }
}

function renderSubscriptions() {
  const rows = [];
  if (state.welcomed) {
    for (const name of autoChannels()) {
      rows.push(el('li', { class: 'chan', dataset: { channel: name, status: 'auto' } },
        el('div', { class: 'chan-main' },
          el('span', { class: 'chan-name', text: name }),
          el('span', { class: 'tag', text: 'automatic' }))));
    }
  }
  for (const [name, entry] of state.wanted) {
    const label = { joined: 'joined', pending: state.welcomed ? 'joining…' : 'waiting for connection', leaving: 'leaving…' }[entry.status] || entry.status;
    rows.push(el('li', { class: 'chan', dataset: { channel: name, status: entry.status } },
      el('div', { class: 'chan-main' },
        el('span', { class: 'chan-name', text: name }),
        tierTag(entry.tier),
        el('span', { class: 'muted small', text: label }),
        el('span', { class: 'spacer' }),
        el('button', {
          type: 'button',
          class: 'btn btn-small',
          text: 'Leave',
          disabled: entry.status === 'leaving',
          onclick: () => unsubscribe(name),
        }))));
  }
  if (!state.wanted.has(VIDEO_CHANNEL)) {
    rows.push(el('li', { class: 'chan', dataset: { channel: VIDEO_CHANNEL, status: 'left' } },
      el('div', { class: 'chan-main' },
        el('span', { class: 'chan-name muted', text: VIDEO_CHANNEL }),
        el('span', { class: 'spacer' }),
        el('button', { type: 'button', class: 'btn btn-small btn-primary', text: 'Join room', onclick: () => subscribe(VIDEO_CHANNEL, 'room') }))));
  }
  $('subscriptions').replaceChildren(...rows);
  renderRoomStatus();
}

function renderRoomStatus() {
  const node = $('room-status');
  const entry = state.wanted.get(VIDEO_CHANNEL);
  const err = state.channelErrors.get(VIDEO_CHANNEL);
  let status = 'left';
  let text = 'not joined';
  if (entry) {
    status = entry.status;
    text = entry.status === 'joined' ? 'live' : 'joining…';
  } else if (err) {
    status = 'error';
    text = `${err.code}: ${err.message}`;
  }
  node.dataset.status = status;
  node.textContent = text;
}

// ---------------------------------------------------------------------------------------
// Identity and connection display

function renderIdentity() {
  const badge = $('role-badge');
  let role;
  let text;
  let verified = true;
  if (state.user) {
    role = String(state.user.role ?? 'unknown');
    const sub = state.user.sub;
    const name = state.user.name;
    const who = name && name !== sub ? `${name} (${sub})` : sub;
    text = role === 'guest' || !sub ? 'guest' : `Signed in as ${who} — ${role}`;
  } else if (state.token) {
    const claims = decodeJwt(state.token) || {};
    role = typeof claims.role === 'string' ? claims.role : 'unknown';
    text = `${claims.sub ? `Signing in as ${claims.sub}` : 'Signing in'} — ${role}`;
    verified = false;
  } else {
    role = 'guest';
    text = 'guest';
  }
  badge.textContent = text;
  badge.dataset.role = role;
  badge.dataset.verified = String(verified);

  const info = $('token-info');
  if (state.token) {
    const exp = state.expiresAt ? new Date(state.expiresAt * 1000) : null;
    info.textContent = `${state.demo ? 'Demo token' : 'Pasted token'}${exp ? `, expires ${exp.toLocaleString()}` : ''}`;
  } else {
    info.textContent = 'No token: connected as a guest.';
  }
  $('admin-panel').hidden = !(state.user && state.user.role === 'admin');
  for (const key of ['alice', 'bob', 'admin']) {
    $(`login-${key}`).classList.toggle('active', Boolean(state.demo && state.demo.sub === key && state.token));
  }
  $('login-guest').classList.toggle('active', !state.token);
}

function renderConn() {
  const node = $('conn-state');
  let kind;
  let text;
  const ws = state.ws;
  if (state.welcomed) {
    kind = 'open';
    text = `open · conn ${state.conn ?? '?'}${state.rtt != null ? ` · ${state.rtt} ms` : ''}`;
  } else if (ws && ws.readyState <= WebSocket.OPEN) {
    kind = 'connecting';
    text = ws.readyState === WebSocket.OPEN ? 'connecting · waiting for welcome' : 'connecting…';
  } else if (!ws && state.gen > 0 && !state.lastClose && !state.stopped) {
    kind = 'connecting';
    text = 'connecting…';
  } else {
    kind = 'closed';
    const c = state.lastClose;
    text = c ? `closed · ${c.code}${c.reason ? ` ${c.reason}` : ''}` : 'closed';
    if (state.retryTimer) {
      const s = Math.max(0, Math.ceil((state.retryAt - Date.now()) / 1000));
      text += ` · retrying in ${s}s`;
    } else if (state.stopped) {
      text += ' · not retrying';
    }
  }
  node.dataset.state = kind;
  node.textContent = text;
}

// ---------------------------------------------------------------------------------------
// Events, log, notifications, toasts

function onEvent(f) {
  const data = f.data;
  const push = isObject(data) && Object.hasOwn(data, 'payload');
  logEntry({
    kind: 'event',
    type: String(f.type),
    channel: f.channel,
    seq: f.seq,
    ts: Number(f.ts) || null,
    body: pretty(push ? data.payload : data),
  });
  if (f.type === 'danmaku_deleted') {
    if (isObject(data)) removeDanmaku(data.id);
    return;
  }
  if (f.type === 'danmaku') {
    // Posted comments carry {text, color, mode}; an admin push carries them in payload.
    const d = isObject(data) && typeof data.text === 'string' ? data : (push ? data.payload : null);
    if (isObject(d)) drawDanmaku(d);
    return;
  }
  if (!push) return;
  const payload = data.payload;
  if (isOrderAlert(payload)) {
    addOrderCard(f, payload);
  } else if (f.channel === 'broadcast' || (state.user && state.user.sub && f.channel === `user:${state.user.sub}`)) {
    showToast({ title: `${f.type} · ${f.channel}`, body: summarize(payload) });
  }
}

function isOrderAlert(p) {
  return isObject(p) && 'type' in p && 'content' in p
    && (typeof p.orderId === 'string' || typeof p.orderId === 'number');
}

function summarize(payload) {
  if (payload == null) return '(empty)';
  if (typeof payload !== 'object') return clip(String(payload), 300);
  for (const key of ['message', 'content', 'text', 'title', 'body']) {
    if (typeof payload[key] === 'string') return clip(payload[key], 300);
  }
  try {
    return clip(JSON.stringify(payload), 300);
  } catch {
    return '(unprintable payload)';
  }
}

function addOrderCard(f, p) {
  const list = $('notifications');
  const content = typeof p.content === 'string' ? p.content : JSON.stringify(p.content);
  const when = Number(f.ts) || Date.now();
  const card = el('li', { class: 'notification', dataset: { orderId: String(p.orderId), channel: f.channel } },
    el('div', { class: 'notification-body' },
      el('p', { class: 'notification-title', text: `Order #${p.orderId}: ${content}` }),
      el('p', { class: 'notification-meta', text: `${String(p.type)} · ${f.channel} · ${clockTime(when)}` })),
    el('button', {
      type: 'button',
      class: 'icon-button',
      'aria-label': 'Dismiss',
      text: '×',
      onclick: () => card.remove(),
    }));
  list.prepend(card);
  while (list.childElementCount > NOTIFICATION_CAP) list.lastElementChild.remove();
}

function showToast({ title, body, tone = 'info' }) {
  const box = $('toasts');
  const toast = el('div', { class: 'toast', dataset: { tone } },
    el('p', { class: 'toast-title', text: title }),
    body ? el('p', { class: 'toast-body', text: body }) : null);
  box.append(toast);
  while (box.childElementCount > MAX_TOASTS) box.firstElementChild.remove();
  setTimeout(() => {
    toast.classList.add('leaving');
    setTimeout(() => toast.remove(), 400);
  }, TOAST_MS);
}

function logEntry({ kind, type, channel, seq, ts, body }) {
  const log = $('event-log');
  const head = el('div', { class: 'log-head' },
    el('time', { class: 'log-time', text: clockTime(ts || Date.now()) }),
    channel ? el('span', { class: 'log-channel', text: String(channel) }) : null,
    seq != null ? el('span', { class: 'log-seq', text: `#${seq}` }) : null,
    el('span', { class: 'log-type', text: type }));
  const entry = el('li', { class: 'log-entry', dataset: { kind } },
    head,
    body ? el('pre', { class: 'log-body', text: body }) : null);
  log.prepend(entry);
  while (log.childElementCount > LOG_CAP) log.lastElementChild.remove();
  $('log-count').textContent = `${log.childElementCount} ${log.childElementCount === 1 ? 'entry' : 'entries'}`;
}

function logSystem(type, body) {
  logEntry({ kind: 'system', type, body });
}

// ---------------------------------------------------------------------------------------
// Video and danmaku overlay

function setupVideo() {
  const video = $('video');
  const placeholder = $('placeholder');
  const src = new URLSearchParams(location.search).get('src');
  let url = null;
  if (src) {
    try {
      const u = new URL(src, location.href);
      if (['http:', 'https:', 'blob:'].includes(u.protocol)) url = u.href;
    } catch {
      url = null;
    }
  }
  if (url) {
    video.src = url;
    video.hidden = false;
    placeholder.hidden = true;
  } else {
    video.hidden = true;
    placeholder.hidden = false;
    if (src) $('placeholder-detail').textContent = 'The ?src= address must be an http(s) URL.';
  }
  $('room-name').textContent = VIDEO_CHANNEL;
}

const DANMAKU_SPEED_PX_S = 150;
const DANMAKU_GAP_PX = 24;
const DANMAKU_MAX_ON_SCREEN = 150;
const DANMAKU_STATIC_MS = 4000;
/** Per lane, when (performance.now ms) the lane can take the next scrolling comment. */
const laneFreeAt = [];

function danmakuColor(c) {
  if (typeof c === 'number' && Number.isInteger(c) && c >= 0 && c <= 0xffffff) {
    return `#${c.toString(16).padStart(6, '0')}`;
  }
  if (typeof c === 'string' && (/^#(?:[0-9a-f]{3}|[0-9a-f]{6})$/i.test(c) || /^[a-z]{3,20}$/i.test(c))) {
    return c;
  }
  return null;
}

/**
 * Draws one comment {text, color, mode} on the overlay. Scrolling comments cross from
 * right to left with a CSS animation, in the first lane whose previous comment has fully
 * entered the screen. `top` and `bottom` comments stay centred for a few seconds.
 */
function drawDanmaku(d) {
  const overlay = $('overlay');
  if (!d || typeof d.text !== 'string' || !d.text.trim()) return;
  while (overlay.childElementCount >= DANMAKU_MAX_ON_SCREEN) overlay.firstElementChild.remove();

  const item = document.createElement('div');
  item.className = 'danmaku';
  item.textContent = clip(d.text.replace(/\s+/g, ' '), 100);
  const color = danmakuColor(d.color);
  if (color) item.style.color = color;
  const mode = d.mode === 'top' || d.mode === 'bottom' ? d.mode : 'scroll';
  item.dataset.mode = mode;
  if (typeof d.id === 'number' || typeof d.id === 'string') item.dataset.id = String(d.id);
  overlay.append(item);

  if (mode !== 'scroll') {
    setTimeout(() => item.remove(), DANMAKU_STATIC_MS);
    return;
  }
  const width = overlay.clientWidth;
  const itemWidth = item.offsetWidth;
  const laneHeight = item.offsetHeight || 32;
  // Leave the bottom strip free, where the native video controls sit.
  const lanes = Math.max(1, Math.floor((overlay.clientHeight - 48) / laneHeight));
  const now = performance.now();
  let lane = 0;
  for (let i = 0; i < lanes; i++) {
    if ((laneFreeAt[i] ?? 0) <= now) {
      lane = i;
      break;
    }
    if ((laneFreeAt[i] ?? 0) < (laneFreeAt[lane] ?? 0)) lane = i;
  }
  laneFreeAt[lane] = now + ((itemWidth + DANMAKU_GAP_PX) / DANMAKU_SPEED_PX_S) * 1000;
  const duration = (width + itemWidth) / DANMAKU_SPEED_PX_S;
  item.style.top = `${4 + lane * laneHeight}px`;
  item.style.setProperty('--from', `${width}px`);
  item.style.setProperty('--to', `${-itemWidth}px`);
  item.style.setProperty('--duration', `${duration.toFixed(2)}s`);
  item.addEventListener('animationend', () => item.remove(), { once: true });
  item.classList.add('scrolling');
}

/** Removes a comment from the overlay after `danmaku_deleted`; unknown ids are ignored. */
function removeDanmaku(id) {
  if (typeof id !== 'number' && typeof id !== 'string') return;
  for (const item of [...$('overlay').children]) {
    if (item.dataset.id === String(id)) item.remove();
  }
}

// ---------------------------------------------------------------------------------------
// Admin tools (shown only to admins; the server checks the role again)

const PRESETS = {
  order: { kind: 'user', target: 'alice', event: 'push', audience: 'everyone', payload: { type: 'order', orderId: 1042, content: 'your order has shipped' } },
  notice: { kind: 'broadcast', target: '', event: 'push', audience: 'everyone', payload: { message: 'Maintenance at 02:00 UTC' } },
  danmaku: { kind: 'channel', target: VIDEO_CHANNEL, event: 'danmaku', audience: 'everyone', payload: { text: 'Hello from the admin!', color: '#ffd166', mode: 'scroll' } },
};

function applyPreset(name) {
  const p = PRESETS[name];
  $('push-kind').value = p.kind;
  $('push-target').value = p.target;
  $('push-event').value = p.event;
  $('push-audience').value = p.audience;
  $('push-payload').value = JSON.stringify(p.payload, null, 2);
  syncPushTarget();
}

function syncPushTarget() {
  const kind = $('push-kind').value;
  const target = $('push-target');
  target.disabled = kind === 'broadcast';
  target.placeholder = { broadcast: '(everyone)', user: 'user sub, e.g. alice', channel: 'channel, e.g. video:demo', role: 'free, member, admin or guest' }[kind];
}

async function sendPush(ev) {
  ev.preventDefault();
  const result = $('push-result');
  const kind = $('push-kind').value;
  const target = $('push-target').value.trim();
  let payload;
  try {
    payload = JSON.parse($('push-payload').value);
  } catch (e) {
    result.textContent = `Payload is not JSON: ${e.message}`;
    return;
  }
  let path;
  if (kind === 'broadcast') path = '/api/push/broadcast';
  else if (kind === 'user' && SUB_RE.test(target)) path = `/api/push/users/${target}`;
  else if (kind === 'channel' && CHANNEL_RE.test(target)) path = `/api/push/channels/${target}`;
  else if (kind === 'role' && ['guest', 'free', 'member', 'admin'].includes(target)) path = `/api/push/roles/${target}`;
  else {
    result.textContent = 'Enter a valid target first.';
    return;
  }
  const body = { event: $('push-event').value.trim() || 'push', payload, audience: $('push-audience').value };
  result.textContent = 'Sending…';
  try {
    const reply = await api(path, { method: 'POST', body, token: state.token });
    result.textContent = `Delivered to ${reply.delivered} socket(s)${reply.seq != null ? `, seq ${reply.seq}` : ''}.`;
  } catch (e) {
    result.textContent = `${e.code}: ${e.message}`;
  }
}

async function declareChannel(ev) {
  ev.preventDefault();
  const result = $('declare-result');
  const name = $('declare-name').value.trim();
  if (!CHANNEL_RE.test(name)) {
    result.textContent = 'Channel names are 1 to 128 ASCII letters, digits and - _ . : @';
    return;
  }
  try {
    const info = await api(`/api/channels/${name}`, { method: 'PUT', body: { tier: $('declare-tier').value }, token: state.token });
    result.textContent = `Declared ${info.name} (${info.tier}).`;
    loadChannels();
  } catch (e) {
    result.textContent = `${e.code}: ${e.message}`;
  }
}

// ---------------------------------------------------------------------------------------
// Wiring

function init() {
  setupVideo();
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
  $('join-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const input = $('join-input');
    if (!input.value.trim()) return;
    subscribe(input.value, 'input');
    input.value = '';
  });
  $('channels-reload').addEventListener('click', loadChannels);
  $('reconnect').addEventListener('click', () => {
    state.attempt = 0;
    connect();
  });
  $('log-clear').addEventListener('click', () => {
    $('event-log').replaceChildren();
    $('log-count').textContent = '0 entries';
  });
  $('danmaku-test').addEventListener('click', () => {
    const samples = ['前方高能！', 'hello world', '2333333', 'nice shot', 'this is a longer test comment ✨'];
    const colors = ['#ffffff', '#ffd166', '#06d6a0', '#4cc9f0', '#ff6b6b'];
    drawDanmaku({
      text: samples[Math.floor(Math.random() * samples.length)],
      color: colors[Math.floor(Math.random() * colors.length)],
      mode: 'scroll',
    });
  });
  $('push-kind').addEventListener('change', syncPushTarget);
  $('push-form').addEventListener('submit', sendPush);
  $('declare-form').addEventListener('submit', declareChannel);
  $('preset-order').addEventListener('click', () => applyPreset('order'));
  $('preset-notice').addEventListener('click', () => applyPreset('notice'));
  $('preset-danmaku').addEventListener('click', () => applyPreset('danmaku'));
  syncPushTarget();

  // Keep the retry countdown fresh; reconnect at once when the network comes back.
  setInterval(() => {
    if (state.retryTimer) renderConn();
  }, 1000);
  window.addEventListener('online', () => {
    if (state.retryTimer) {
      state.attempt = 0;
      connect();
    }
  });

  renderLoginButtons();
  renderIdentity();
  renderSubscriptions();
  renderChannelList();
  connect();
}

// A small handle for browser tests and the console.
globalThis.danmakuDemo = { state, connect, drawDanmaku, subscribe, unsubscribe };

init();
