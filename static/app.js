// danmaku video page: a player with a live comment overlay, a send box, sign-in, the
// video list, presence, pushes (toasts and order cards) and an event log.
//
// Protocol v1 (openapi/asyncapi.yaml): the first frame is `welcome`; client ops are
// subscribe / unsubscribe / refresh / ping / danmaku with an `id` echoed in `reply`;
// channel events are {type, channel, seq, ts, data}; pushes carry data = {payload}. A
// frame may also be a JSON array of such objects.
//
// SECURITY: every piece of text from the server or the user reaches the DOM through
// `textContent`, text nodes or `createElement`. This file never parses HTML.

import {
  $, el, api, CHANNEL_RE, DEMO_USERS, JWT_RE, VIDEO_RE, clip, clockTime, decodeJwt,
  isObject, lockIcon, mintDemoToken, pretty, readJson, showToast, summarize, tierAdmits,
  tierTag, videoTime,
} from './lib/util.js';
import { DanmakuOverlay, DEFAULT_SETTINGS } from './lib/overlay.js';

const STORAGE = {
  token: 'danmaku.token',
  expires: 'danmaku.expires_at',
  demo: 'danmaku.demo_profile',
  settings: 'danmaku.viewer_settings',
};
const LOG_CAP = 200;
const NOTIFICATION_CAP = 50;
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30000;
const PRESENCE_EVERY_MS = 4000;
const DEMO_CLIP = '/demo.webm';
const SWATCHES = ['#ffffff', '#fe0302', '#ff7204', '#ffd302', '#00cd00', '#4266be', '#89d5ff', '#cc0273'];
/** Limits of the default server policy, for the counter only: the server decides. */
const MAX_LEN = { free: 30, member: 100, admin: 100 };

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

// ---------------------------------------------------------------------------------------
// State

function videoIdFromPath() {
  const m = location.pathname.match(/^\/watch\/([^/]+)\/?$/);
  if (m) {
    try {
      const id = decodeURIComponent(m[1]);
      if (VIDEO_RE.test(id)) return id;
    } catch {
      // fall through to the default
    }
  }
  return 'demo';
}

const VIDEO_ID = videoIdFromPath();
const VIDEO_CHANNEL = `video:${VIDEO_ID}`;

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
  /** Whether any socket of this page was welcomed (later welcomes are reconnects). */
  everWelcomed: false,
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
  /** id -> {op, channel, origin, resolve, ...} of ops awaiting a reply. */
  pending: new Map(),
  /** Channels the user joined (resubscribed after a reconnect): name -> {status, tier}. */
  wanted: new Map([[VIDEO_CHANNEL, { status: 'pending', tier: null }]]),
  /** Per channel, the last position seen: {epoch, seq}, for `since` on resubscribe. */
  positions: new Map(),
  /** Per channel, how many replayed (missed) events the subscribe reply announced. */
  replaying: new Map(),
  /** Last subscribe error per channel, shown inline. */
  channelErrors: new Map(),
  declared: [],
  declaredError: null,
  declaredLoad: 0,
  videos: null,
  videosError: null,
  videosLoad: 0,
  /** `sub|role` the comment history was loaded for. */
  historyFor: null,
  historyLoad: 0,
  memberLocked: false,
  /** The viewer left the video's room with "Leave"; it is not rejoined on reconnect. */
  leftRoom: false,
  cooldownUntil: 0,
  cooldownTimer: null,
  posting: false,
  /** Completed posts and the last outcome ({ok, code, id}), for tests and the console. */
  posts: 0,
  lastPost: null,
  viewers: null,
};

let overlay;

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

/** Fails every op still waiting for a reply (its socket is gone). */
function failPending(message) {
  for (const meta of state.pending.values()) {
    if (meta.resolve) meta.resolve({ type: 'reply', ok: false, error: { code: 'network_error', message } });
  }
  state.pending.clear();
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
  failPending('the connection was replaced before the reply');
  // Errors belong to the previous socket (maybe another identity); resubscribing after the
  // welcome reports any that still apply.
  state.channelErrors.clear();
  setJoinError(null);
  // The page's own room is joined again on every connection (a new identity may be
  // admitted where the last one was refused), unless the viewer left it on purpose.
  if (!state.wanted.has(VIDEO_CHANNEL) && !state.leftRoom) {
    state.wanted.set(VIDEO_CHANNEL, { status: 'pending', tier: null });
  }
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
  failPending('the connection closed before the reply');
  const reason = ev.reason || CLOSE_CODES[ev.code] || '';
  state.lastClose = { code: ev.code, reason };
  for (const entry of state.wanted.values()) entry.status = 'pending';
  renderSubscriptions();
  renderComposer();
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
    default:
      if (typeof f.channel === 'string') return onEvent(f);
  }
  logEntry({ kind: 'protocol', type: String(f.type ?? 'unknown'), body: pretty(f) });
  return undefined;
}

function identityKey() {
  return state.user ? `${state.user.sub ?? ''}|${state.user.role}` : null;
}

function onWelcome(f) {
  const reconnect = state.everWelcomed;
  state.welcomed = true;
  state.everWelcomed = true;
  state.openedAt = performance.now();
  state.conn = f.conn ?? null;
  state.user = isObject(f.user) ? f.user : { sub: null, name: 'guest', role: 'guest' };
  state.heartbeatS = Number(f.heartbeat_s) || null;
  state.lastClose = null;
  logEntry({ kind: 'protocol', type: 'welcome', body: pretty(f) });
  renderConn();
  renderIdentity();
  startHeartbeat();
  const sameIdentity = state.historyFor === identityKey();
  for (const name of [...state.wanted.keys()]) {
    if (isAutoChannel(name)) {
      state.wanted.delete(name);
      continue;
    }
    const frame = { op: 'subscribe', channel: name };
    // Ask for what was missed, when the server gave us a position to resume from.
    const pos = state.positions.get(name);
    if (reconnect && sameIdentity && pos && typeof pos.epoch === 'string') {
      frame.since = { seq: pos.seq, epoch: pos.epoch };
    }
    send(frame, { channel: name, origin: reconnect ? 'resubscribe' : 'room', reconnect });
  }
  renderSubscriptions();
  renderComposer();
  loadChannels();
  if (!sameIdentity) {
    // A new identity sees other comments (members-only) and other locks.
    state.positions.clear();
    loadHistory();
    loadVideos();
  }
  loadPresence();
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
  if (meta.resolve) {
    meta.resolve(f);
    return;
  }
  const err = isObject(f.error) ? f.error : { code: 'error', message: 'request failed' };
  switch (meta.op) {
    case 'subscribe':
      if (f.ok || err.code === 'already_subscribed') {
        state.wanted.set(meta.channel, { status: 'joined', tier: f.tier ?? null });
        state.channelErrors.delete(meta.channel);
        if (meta.origin === 'input') setJoinError(null);
        onSubscribed(meta, f);
      } else {
        state.wanted.delete(meta.channel);
        showChannelError(meta.channel, err, meta.origin);
        if (meta.channel === VIDEO_CHANNEL && err.code === 'member_only') setMemberLock(true);
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
        renderComposer();
        loadChannels();
        if (state.historyFor !== identityKey()) {
          loadHistory();
          loadVideos();
        }
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

/** A subscription is active: remember its position; catch up on a reconnect. */
function onSubscribed(meta, f) {
  if (typeof f.epoch === 'string' && Number.isSafeInteger(f.seq)) {
    const prev = state.positions.get(meta.channel);
    // On a recovered resubscribe the replayed events bring `seq` up to date themselves.
    const seq = f.recovered === true && prev ? prev.seq : f.seq;
    state.positions.set(meta.channel, { epoch: f.epoch, seq });
  }
  if (Number.isSafeInteger(f.replayed) && f.replayed > 0) {
    state.replaying.set(meta.channel, f.replayed);
  }
  if (meta.channel !== VIDEO_CHANNEL) return;
  setMemberLock(false);
  loadPresence();
  // Comments posted while the socket was down: take them from the history API unless
  // the server replayed them (recovery with `since`).
  if (meta.reconnect && f.recovered !== true && state.historyFor === identityKey()) {
    catchUpHistory();
  }
}

function onUnsubscribed(f) {
  const channel = String(f.channel ?? '');
  state.wanted.delete(channel);
  const err = { code: String(f.reason ?? 'unsubscribed'), message: String(f.message ?? '') };
  state.channelErrors.set(channel, err);
  logEntry({ kind: 'reply-error', type: 'unsubscribed', channel, body: pretty(f) });
  showToast({ title: `Left ${channel}`, body: `${err.code}: ${err.message}`, tone: 'warn' });
  if (channel === VIDEO_CHANNEL && err.code === 'member_only') setMemberLock(true);
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
  ws.send(JSON.stringify({ ...frame, op: frame.op, id }));
  return id;
}

/**
 * Sends an op and resolves with its reply frame; null when there is no open socket. A
 * reply that does not come within 10 s resolves as a network error.
 */
function request(frame) {
  return new Promise((resolve) => {
    let timer = null;
    const done = (reply) => {
      clearTimeout(timer);
      resolve(reply);
    };
    const id = send(frame, { resolve: done });
    if (id === null) {
      resolve(null);
      return;
    }
    timer = setTimeout(() => {
      state.pending.delete(id);
      done({ type: 'reply', ok: false, error: { code: 'network_error', message: 'no reply from the server within 10 s' } });
    }, 10_000);
  });
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
// Video, history and the overlay

function setupVideo() {
  const video = $('video');
  const src = new URLSearchParams(location.search).get('src');
  let url = DEMO_CLIP;
  if (src) {
    try {
      const u = new URL(src, location.href);
      if (['http:', 'https:', 'blob:'].includes(u.protocol)) url = u.href;
      else srcIgnored('it must be an http(s) URL');
    } catch {
      srcIgnored('it is not a URL');
    }
  }
  video.addEventListener('error', () => {
    const code = video.error ? video.error.code : 0;
    const what = { 1: 'aborted', 2: 'a network error', 3: 'a decoding error', 4: 'an unsupported source' }[code] || 'an error';
    showVideoError(`The browser stopped with ${what} while loading ${clip(video.currentSrc || url, 120)}.`);
  });
  video.addEventListener('loadeddata', () => {
    $('video-error').hidden = true;
  });
  video.src = url;
  video.dataset.src = url;
  $('room-name').textContent = VIDEO_CHANNEL;
  $('video-title').textContent = VIDEO_ID;
  document.title = `${VIDEO_ID} · danmaku`;

  overlay = new DanmakuOverlay($('overlay'), video, {
    onStats: (s) => {
      const node = $('overlay-stats');
      node.textContent = `${s.onScreen} on screen · ${s.stored} stored${s.dropped ? ` · ${s.dropped} skipped` : ''}`;
      node.dataset.stored = String(s.stored);
    },
  });
  const at = () => {
    $('dm-at').textContent = `at ${videoTime(video.currentTime)}`;
  };
  video.addEventListener('timeupdate', at);
  video.addEventListener('seeked', at);
}

function srcIgnored(why) {
  showToast({ title: '?src= ignored', body: `The address in ?src= was not used (${why}); playing the demo clip.`, tone: 'warn', ms: 12000 });
}

function showVideoError(text) {
  $('video-error').hidden = false;
  $('video-error-detail').textContent = text;
}

function setMemberLock(locked) {
  if (state.memberLocked === locked) return;
  state.memberLocked = locked;
  $('member-lock').hidden = !locked;
  const video = $('video');
  if (locked) {
    video.pause();
    overlay.clear();
    const role = currentRole();
    $('member-lock-detail').textContent = role === 'guest'
      ? 'This video and its comments are for members. Sign in as a member to watch.'
      : `This video and its comments are for members; you are signed in as ${role}. Upgrade to member to watch.`;
  }
  video.controls = !locked;
  renderComposer();
}

async function loadHistory() {
  const load = ++state.historyLoad;
  const key = identityKey();
  try {
    const h = await api(`/api/videos/${encodeURIComponent(VIDEO_ID)}/danmaku?limit=10000`, { token: state.token });
    if (load !== state.historyLoad) return;
    state.historyFor = key;
    overlay.setHistory(Array.isArray(h && h.items) ? h.items : []);
    setMemberLock(false);
  } catch (e) {
    if (load !== state.historyLoad) return;
    state.historyFor = key;
    overlay.setHistory([]);
    if (e.code === 'member_only') setMemberLock(true);
    else logSystem('error', `history: ${e.code}: ${e.message}`);
  }
}

/** After a reconnect without recovery: stored comments newer than the newest we know. */
async function catchUpHistory() {
  const after = overlay.maxId();
  try {
    const h = await api(`/api/videos/${encodeURIComponent(VIDEO_ID)}/danmaku?limit=10000&after_id=${after}`, { token: state.token });
    const items = Array.isArray(h && h.items) ? h.items : [];
    overlay.merge(items);
    if (items.length) logSystem('caught up', `${items.length} comment(s) posted while disconnected`);
  } catch (e) {
    logSystem('error', `catch-up: ${e.code}: ${e.message}`);
  }
}

// ---------------------------------------------------------------------------------------
// Viewer settings

function loadSettings() {
  const saved = readJson(localStorage.getItem(STORAGE.settings));
  const s = { ...DEFAULT_SETTINGS, ...(isObject(saved) ? saved : {}) };
  $('set-opacity').value = String(s.opacity);
  $('set-density').value = String(s.density);
  $('set-hide-scroll').checked = Boolean(s.hideScroll);
  $('set-hide-top').checked = Boolean(s.hideTop);
  $('set-hide-bottom').checked = Boolean(s.hideBottom);
  applySettings(false);
}

function applySettings(save = true) {
  const s = {
    opacity: Number($('set-opacity').value),
    density: Number($('set-density').value),
    hideScroll: $('set-hide-scroll').checked,
    hideTop: $('set-hide-top').checked,
    hideBottom: $('set-hide-bottom').checked,
  };
  $('set-opacity-out').textContent = `${Math.round(s.opacity * 100)}%`;
  overlay.applySettings(s);
  if (save) localStorage.setItem(STORAGE.settings, JSON.stringify(s));
}

// ---------------------------------------------------------------------------------------
// The send box

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

function buildSwatches() {
  const box = $('dm-swatches');
  box.replaceChildren(...SWATCHES.map((c, i) => el('label', { class: 'swatch', title: c, style: `--swatch:${c}` },
    el('input', {
      type: 'radio', name: 'dm-swatch', value: c, checked: i === 0, 'aria-label': `colour ${c}`,
      onchange: () => {
        $('dm-color').value = c;
      },
    }))));
  $('dm-color').addEventListener('input', () => {
    for (const r of document.querySelectorAll('input[name="dm-swatch"]')) r.checked = r.value === $('dm-color').value;
  });
}

function renderComposer() {
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
    setHint('locked', 'This video is for members: its room and comments are closed to you.');
  } else if (c.role === 'guest') {
    setHint('guest', 'Sign in to post comments: guests can watch and read them. Try “alice (member)” or “bob (free)” above.');
  } else if (!c.canPost) {
    setHint('unknown', 'Waiting for the server to confirm who you are…');
  } else if (!c.styled) {
    setHint('free', 'Colours, top/bottom modes and members-only comments are for members. Upgrade to member to unlock them.');
  } else {
    hint.hidden = true;
    hint.dataset.kind = '';
  }
  $('dm-text').placeholder = c.canPost
    ? `Say something at this moment of the video (${c.maxLen} characters at most)…`
    : 'Sign in to post a comment';
  updateCount();
}

function setHint(kind, text) {
  const hint = $('dm-hint');
  hint.hidden = false;
  hint.dataset.kind = kind;
  hint.replaceChildren(kind === 'free' || kind === 'locked' ? lockIcon('members only') : '', ` ${text}`);
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
    case 'text_too_long': return `Too long: ${m}.`;
    case 'text_empty': return 'Write something first.';
    case 'muted': return `You are muted: ${m}.`;
    case 'blocked': return 'Not sent: the comment contains a blocked word.';
    case 'member_style': return 'Colours and top/bottom modes are for members (the server answered 403 member_style).';
    case 'member_audience': return 'Members-only comments are for members (the server answered 403 member_audience).';
    case 'login_required': return 'Sign in to post comments.';
    case 'member_only': return 'This video is for members.';
    case 'network_error': return `Not sent: ${m}`;
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
    const wait = Number(err.retry_after_ms);
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
      node.textContent = `Slow down: you can post again in ${(left / 1000).toFixed(1)} s.`;
      node.dataset.left = String(left);
    };
    tick();
    state.cooldownTimer = setInterval(tick, 100);
    renderComposer();
    return;
  }
  node.textContent = describeError(err);
}

function clearPostError() {
  if (state.cooldownTimer) return;
  const node = $('dm-error');
  node.hidden = true;
  node.textContent = '';
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
async function post(body) {
  const frame = { op: 'danmaku', video: VIDEO_ID, ...body };
  let reply = await request(frame);
  if (reply === null) {
    try {
      const view = await api(`/api/videos/${encodeURIComponent(VIDEO_ID)}/danmaku`, { method: 'POST', body, token: state.token });
      reply = { ok: true, danmaku: view };
    } catch (e) {
      const error = { code: e.code, message: e.message };
      if (e.code === 'cooldown') error.retry_after_ms = (e.retryAfterS || 1) * 1000;
      reply = { ok: false, error };
    }
  }
  state.posts += 1;
  if (reply.ok && isObject(reply.danmaku)) {
    state.lastPost = { ok: true, id: reply.danmaku.id, text: reply.danmaku.text };
    overlay.addLive(reply.danmaku, 'own');
    clearPostError();
    const ok = $('dm-ok');
    ok.hidden = false;
    ok.textContent = `Sent at ${videoTime(reply.danmaku.time)}${reply.danmaku.audience === 'members' ? ' (members only)' : ''}.`;
    return { ok: true, danmaku: reply.danmaku };
  }
  const error = isObject(reply.error) ? reply.error : { code: 'error', message: 'the post failed' };
  state.lastPost = { ok: false, code: String(error.code) };
  showPostError(error);
  $('dm-ok').hidden = true;
  return { ok: false, error };
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

// ---------------------------------------------------------------------------------------
// Presence

function setViewers(total) {
  state.viewers = Number.isFinite(total) ? total : null;
  const node = $('viewers');
  node.dataset.count = state.viewers == null ? '' : String(state.viewers);
  node.textContent = state.viewers == null ? '– watching' : `${state.viewers} watching`;
}

async function loadPresence() {
  if (state.memberLocked) {
    setViewers(null);
    return;
  }
  try {
    const p = await api(`/api/channels/${encodeURIComponent(VIDEO_CHANNEL)}/presence`, { token: state.token });
    setViewers(Number(p && p.total));
  } catch {
    setViewers(null);
  }
}

// ---------------------------------------------------------------------------------------
// The video list

async function loadVideos() {
  const load = ++state.videosLoad;
  try {
    const items = await api('/api/videos', { token: state.token });
    if (load !== state.videosLoad) return;
    state.videos = Array.isArray(items) ? items.filter((v) => isObject(v) && typeof v.id === 'string') : [];
    state.videosError = null;
  } catch (e) {
    if (load !== state.videosLoad) return;
    state.videos = [];
    state.videosError = e;
  }
  renderVideos();
}

function renderVideos() {
  const list = $('video-list');
  const status = $('video-list-status');
  const role = currentRole();
  const videos = state.videos || [];
  const current = videos.find((v) => v.id === VIDEO_ID);
  $('video-title').textContent = current && current.title ? current.title : VIDEO_ID;
  if (current && !tierAdmits(current.tier, role)) setMemberLock(true);
  const search = new URLSearchParams(location.search);
  const keep = search.get('src') ? `?src=${encodeURIComponent(search.get('src'))}` : '';
  const rows = videos.map((v) => {
    const tier = typeof v.tier === 'string' ? v.tier : 'free';
    const locked = !tierAdmits(tier, role);
    const isCurrent = v.id === VIDEO_ID;
    let icon = null;
    if (locked) icon = lockIcon(`${tier} tier: members only, your role (${role}) may not watch`);
    else if (tier !== 'free') icon = lockIcon(`${tier} tier: open to you (${role})`, true);
    return el('li', { class: 'chan video-item', dataset: { video: v.id, tier, locked: String(locked), current: String(isCurrent) } },
      el('div', { class: 'chan-main' },
        icon,
        el('a', {
          class: 'video-link',
          href: `/watch/${encodeURIComponent(v.id)}${keep}`,
          title: locked ? 'Members only: sign in as a member to watch' : `Watch ${v.id}`,
          'aria-current': isCurrent ? 'page' : null,
          text: v.title || v.id,
        }),
        el('span', { class: 'muted small', text: v.id }),
        el('span', { class: 'spacer' }),
        tierTag(tier),
        isCurrent ? el('span', { class: 'tag now', text: 'playing' }) : null));
  });
  list.replaceChildren(...rows);
  if (state.videosError) {
    status.hidden = false;
    status.textContent = `Could not load the catalog: ${state.videosError.code}: ${state.videosError.message}`;
  } else if (rows.length === 0) {
    status.hidden = false;
    status.textContent = 'The catalog is empty. An admin adds videos in the admin console (PUT /api/videos/{id}); any video id also plays at /watch/{id}.';
  } else {
    status.hidden = true;
  }
}

// ---------------------------------------------------------------------------------------
// Channels

function subscribe(name, origin) {
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
  if (channel === VIDEO_CHANNEL) state.leftRoom = true;
  state.channelErrors.delete(channel);
  state.positions.delete(channel);
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
    text = err.code === 'member_only' ? 'members only' : `${err.code}: ${err.message}`;
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
    text = role === 'guest' || !sub ? 'guest (read-only)' : `${who} · ${role}`;
  } else if (state.token) {
    const claims = decodeJwt(state.token) || {};
    role = typeof claims.role === 'string' ? claims.role : 'unknown';
    text = `${claims.sub ? claims.sub : 'signing in'} · ${role}?`;
    verified = false;
  } else {
    role = 'guest';
    text = 'guest (read-only)';
  }
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

function renderConn() {
  const node = $('conn-state');
  let kind;
  let text;
  const ws = state.ws;
  if (state.welcomed) {
    kind = 'open';
    text = `live${state.rtt != null ? ` · ${state.rtt} ms` : ''}`;
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
  let replayed = false;
  const left = state.replaying.get(f.channel);
  if (left) {
    replayed = true;
    if (left <= 1) state.replaying.delete(f.channel);
    else state.replaying.set(f.channel, left - 1);
  }
  const pos = state.positions.get(f.channel);
  if (pos && Number.isSafeInteger(f.seq) && f.seq > pos.seq) pos.seq = f.seq;
  if (f.type !== 'presence') {
    logEntry({
      kind: 'event',
      type: `${String(f.type)}${replayed ? ' (replayed)' : ''}`,
      channel: f.channel,
      seq: f.seq,
      ts: Number(f.ts) || null,
      body: pretty(push ? data.payload : data),
    });
  }
  if (f.channel === VIDEO_CHANNEL) {
    if (f.type === 'danmaku_deleted') {
      if (isObject(data) && Number.isSafeInteger(data.id)) overlay.remove(data.id);
      return;
    }
    if (f.type === 'presence') {
      if (isObject(data) && Number.isFinite(data.total)) setViewers(data.total);
      return;
    }
    if (f.type === 'danmaku' && !push) {
      if (!isObject(data)) return;
      // Missed comments replayed on a resubscribe join the timeline without a burst.
      if (replayed) overlay.merge([data]);
      else overlay.addLive(data, 'live');
      return;
    }
    if (f.type === 'danmaku' && push && isObject(data.payload) && typeof data.payload.text === 'string') {
      // An admin's channel push shaped like a comment: draw it, do not store it.
      overlay.addLive({ ...data.payload, id: undefined }, 'live');
      return;
    }
  }
  if (!push) return;
  const payload = data.payload;
  if (isOrderAlert(payload)) {
    addOrderCard(f, payload);
    return;
  }
  const schedule = isObject(data.schedule) && typeof data.schedule.name === 'string' ? data.schedule : null;
  let origin;
  if (f.channel === 'broadcast') origin = 'announcement';
  else if (state.user && f.channel === `user:${state.user.sub}`) origin = 'for you';
  else origin = f.channel;
  showToast({
    title: `${f.type} · ${origin}${schedule ? ` · scheduled “${schedule.name}”` : ''}`,
    body: summarize(payload),
    dataset: { channel: f.channel, event: String(f.type) },
  });
}

function isOrderAlert(p) {
  return isObject(p) && 'type' in p && 'content' in p
    && (typeof p.orderId === 'string' || typeof p.orderId === 'number');
}

function addOrderCard(f, p) {
  const list = $('notifications');
  const content = typeof p.content === 'string' ? p.content : JSON.stringify(p.content);
  const when = Number(f.ts) || Date.now();
  const card = el('li', { class: 'notification', dataset: { orderId: String(p.orderId), channel: f.channel } },
    el('div', { class: 'notification-icon', 'aria-hidden': 'true', text: '¥' }),
    el('div', { class: 'notification-body' },
      el('p', { class: 'notification-title', text: `Order #${p.orderId}` }),
      el('p', { class: 'notification-content', text: content }),
      el('p', { class: 'notification-meta', text: `type ${String(p.type)} · ${f.channel} · ${clockTime(when)}` })),
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
// Wiring

function init() {
  setupVideo();
  buildSwatches();
  loadSettings();
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
  $('composer').addEventListener('submit', onComposerSubmit);
  $('dm-text').addEventListener('input', () => {
    updateCount();
    if ($('dm-error').dataset.code !== 'cooldown') clearPostError();
  });
  $('settings-toggle').addEventListener('click', () => {
    const box = $('settings');
    box.hidden = !box.hidden;
    $('settings-toggle').setAttribute('aria-expanded', String(!box.hidden));
  });
  $('settings').addEventListener('input', () => applySettings());
  $('settings').addEventListener('change', () => applySettings());
  $('settings').addEventListener('submit', (ev) => ev.preventDefault());
  $('settings-reset').addEventListener('click', () => {
    localStorage.removeItem(STORAGE.settings);
    loadSettings();
  });
  $('join-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const input = $('join-input');
    if (!input.value.trim()) return;
    subscribe(input.value, 'input');
    input.value = '';
  });
  $('channels-reload').addEventListener('click', loadChannels);
  $('videos-reload').addEventListener('click', loadVideos);
  $('reconnect').addEventListener('click', () => {
    state.attempt = 0;
    connect();
  });
  $('log-clear').addEventListener('click', (ev) => {
    ev.preventDefault();
    $('event-log').replaceChildren();
    $('log-count').textContent = '0 entries';
  });

  // Keep the retry countdown fresh; reconnect at once when the network comes back.
  setInterval(() => {
    if (state.retryTimer) renderConn();
  }, 1000);
  setInterval(() => {
    if (state.welcomed && state.wanted.get(VIDEO_CHANNEL)?.status === 'joined') loadPresence();
  }, PRESENCE_EVERY_MS);
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
  loadVideos();
  connect();
}

init();

// A small handle for browser tests and the console.
globalThis.danmakuDemo = {
  state,
  overlay,
  video: VIDEO_ID,
  connect,
  subscribe,
  unsubscribe,
  /** Posts like the send box does, with any body (the server still checks it). */
  post,
  /** Draws a comment locally, without the server. */
  drawDanmaku: (d) => overlay.preview(d),
};
