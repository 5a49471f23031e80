// Video page: the WebSocket to /ws and protocol v1 (openapi/asyncapi.yaml). Owns
// connect, the welcome, subscribe / resubscribe with recovery (`since`), reconnect with
// backoff and jitter, batched frames (a JSON array of frames), replies matched by `id`,
// the app-level ping and the `refresh` op. The first frame is `welcome`; client ops are
// subscribe / unsubscribe / refresh / ping / danmaku with an `id` echoed in `reply`;
// channel events are {type, channel, seq, ts, data}; pushes carry data = {payload}.
//
// No DOM here: the page listens with `on(type, fn)` (static/app.js wires it) and gets
// its token ready through `setAuth`. Listeners run synchronously, in order, inside the
// frame handler. This is the seed of the planned static/lib/danmaku-client.js; for now
// it keeps its fields on the page's shared `state` (static/page/state.js).
//
// Events: status · log {kind, type, channel, seq, ts, body} · reset · welcome
// {sameIdentity} · closed · refused {code, message} · subscribed {meta, reply} ·
// subscribe_refused / unsubscribe_refused {channel, error, origin} · refreshed {meta} ·
// refresh_refused {meta, error} · channels · unsubscribed {channel, error} ·
// token_expired (the frame) · event {frame, replayed, push}.

import { api, clip, isObject, pretty } from '../lib/util.js';
import { VIDEO_CHANNEL, identityKey, state } from './state.js';

const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30000;

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
// Events and hooks

const listeners = new Map();

/** Listens to a connection event (see the list above); the page renders from them. */
export function on(type, fn) {
  if (!listeners.has(type)) listeners.set(type, []);
  listeners.get(type).push(fn);
}

function emit(type, detail) {
  for (const fn of listeners.get(type) || []) fn(detail);
}

function logSystem(type, body) {
  emit('log', { kind: 'system', type, body });
}

/** How tokens are renewed: the sign-in side knows, the protocol side does not. */
const auth = {
  /** Runs before each socket opens, e.g. to re-mint a token about to expire. */
  beforeOpen: async () => {},
  /** Runs after a refusal {code, message}; resolves true when a new token is stored. */
  renew: async () => false,
};

/** Sets the `auth` hooks (static/page/session.js provides them). */
export function setAuth(hooks) {
  Object.assign(auth, hooks);
}

/** Channels the server subscribes every socket to by itself. */
export function autoChannels() {
  const list = ['broadcast'];
  if (state.user && state.user.sub) list.push(`user:${state.user.sub}`);
  return list;
}

/** Whether a channel is joined automatically (so never asked for). */
export function isAutoChannel(name) {
  return autoChannels().includes(name) || name === 'broadcast';
}

// ---------------------------------------------------------------------------------------
// Connect, close, reconnect

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

/** Opens a new socket with the current token, replacing any open one. */
export async function connect() {
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
  // The page's own room is joined again on every connection (a new identity may be
  // admitted where the last one was refused), unless the viewer left it on purpose.
  if (!state.wanted.has(VIDEO_CHANNEL) && !state.leftRoom) {
    state.wanted.set(VIDEO_CHANNEL, { status: 'pending', tier: null });
  }
  for (const entry of state.wanted.values()) entry.status = 'pending';
  emit('reset');

  await auth.beforeOpen();
  if (gen !== state.gen) return;
  open(gen);
}

function open(gen) {
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
    if (gen === state.gen) emit('status');
  });
  ws.addEventListener('message', (ev) => {
    if (gen === state.gen) onMessage(ev.data);
  });
  // An `error` event is always followed by `close`; close carries the details.
  ws.addEventListener('close', (ev) => {
    if (gen === state.gen) onClose(ev, gen);
  });
}

/** Connects again at once with a fresh backoff (sign-in, the Reconnect button). */
export function reconnectNow() {
  state.attempt = 0;
  connect();
}

/** Reconnects at once when the network comes back while a retry is waiting. */
export function reconnectWhenOnline() {
  window.addEventListener('online', () => {
    if (state.retryTimer) reconnectNow();
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
  emit('closed');
  logSystem('closed', `code ${ev.code}${reason ? ` · ${reason}` : ''}`);

  // A socket that closes before `welcome` was usually refused at the upgrade (HTTP 401),
  // which browsers report only as 1006. Ask the REST API what it thinks of the token.
  if (!wasWelcomed && state.token) {
    const token = state.token;
    const problem = await diagnoseToken(token);
    if (gen !== state.gen) return;
    if (problem) {
      if (await auth.renew(problem)) {
        scheduleReconnect();
        return;
      }
      state.stopped = true;
      state.lastClose = { code: ev.code, reason: `token refused (${problem.code})` };
      emit('refused', problem);
      emit('status');
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
  emit('status');
}

// ---------------------------------------------------------------------------------------
// Frames in

function onMessage(raw) {
  let msg;
  try {
    msg = JSON.parse(raw);
  } catch {
    emit('log', { kind: 'error', type: 'bad frame', body: clip(String(raw), 2000) });
    return;
  }
  // The server may batch several frames into one JSON array.
  const frames = Array.isArray(msg) ? msg : [msg];
  for (const frame of frames) {
    if (!isObject(frame)) {
      emit('log', { kind: 'error', type: 'bad frame', body: pretty(frame) });
      continue;
    }
    try {
      handleFrame(frame);
    } catch (e) {
      emit('log', { kind: 'error', type: 'client error', body: `${e.message}\n\n${pretty(frame)}` });
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
      emit('log', { kind: 'protocol', type: 'token_expired', body: pretty(f) });
      return emit('token_expired', f);
    default:
      if (typeof f.channel === 'string') return onEvent(f);
  }
  emit('log', { kind: 'protocol', type: String(f.type ?? 'unknown'), body: pretty(f) });
  return undefined;
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
  emit('log', { kind: 'protocol', type: 'welcome', body: pretty(f) });
  emit('status');
  startHeartbeat();
  const sameIdentity = state.historyFor === identityKey();
  resubscribe(reconnect, sameIdentity);
  // A new identity sees other comments (members-only): old positions do not apply.
  if (!sameIdentity) state.positions.clear();
  emit('welcome', { sameIdentity });
}

/** Asks again for every wanted channel, from the last position when it can resume. */
function resubscribe(reconnect, sameIdentity) {
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
}

function onReply(f) {
  const meta = state.pending.get(f.id);
  state.pending.delete(f.id);
  if (meta && meta.op === 'ping') {
    if (f.ok) state.rtt = Math.round(performance.now() - meta.sentAt);
    emit('status');
    return;
  }
  emit('log', {
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
      onSubscribeReply(meta, f, err);
      break;
    case 'unsubscribe':
      if (f.ok || err.code === 'not_subscribed') state.wanted.delete(meta.channel);
      else emit('unsubscribe_refused', { channel: meta.channel, error: err, origin: meta.origin });
      break;
    case 'refresh':
      if (f.ok) {
        if (isObject(f.user)) state.user = f.user;
        emit('refreshed', { meta });
      } else {
        emit('refresh_refused', { meta, error: err });
      }
      break;
    default:
      break;
  }
  emit('channels');
}

function onSubscribeReply(meta, f, err) {
  if (f.ok || err.code === 'already_subscribed') {
    state.wanted.set(meta.channel, { status: 'joined', tier: f.tier ?? null });
    state.channelErrors.delete(meta.channel);
    remember(meta.channel, f);
    emit('subscribed', { meta, reply: f });
  } else {
    state.wanted.delete(meta.channel);
    emit('subscribe_refused', { channel: meta.channel, error: err, origin: meta.origin });
  }
}

/** A subscription is active: remember its position and how many events it replays. */
function remember(channel, f) {
  if (typeof f.epoch === 'string' && Number.isSafeInteger(f.seq)) {
    const prev = state.positions.get(channel);
    // On a recovered resubscribe the replayed events bring `seq` up to date themselves.
    const seq = f.recovered === true && prev ? prev.seq : f.seq;
    state.positions.set(channel, { epoch: f.epoch, seq });
  }
  if (Number.isSafeInteger(f.replayed) && f.replayed > 0) {
    state.replaying.set(channel, f.replayed);
  }
}

function onUnsubscribed(f) {
  const channel = String(f.channel ?? '');
  state.wanted.delete(channel);
  const err = { code: String(f.reason ?? 'unsubscribed'), message: String(f.message ?? '') };
  state.channelErrors.set(channel, err);
  emit('log', { kind: 'reply-error', type: 'unsubscribed', channel, body: pretty(f) });
  emit('unsubscribed', { channel, error: err });
  emit('channels');
}

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
    emit('log', {
      kind: 'event',
      type: `${String(f.type)}${replayed ? ' (replayed)' : ''}`,
      channel: f.channel,
      seq: f.seq,
      ts: Number(f.ts) || null,
      body: pretty(push ? data.payload : data),
    });
  }
  emit('event', { frame: f, replayed, push });
}

// ---------------------------------------------------------------------------------------
// Ops out

/** Sends an op with a fresh id; returns the id, or null when there is no open socket. */
export function send(frame, meta = {}) {
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
export function request(frame) {
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

/** Marks a channel wanted and asks for it; without an open socket, after the next welcome. */
export function join(channel, origin) {
  state.wanted.set(channel, { status: 'pending', tier: null });
  send({ op: 'subscribe', channel }, { channel, origin });
}

/** Leaves a channel: asks the server when a socket is open, else just forgets it. */
export function leave(channel) {
  state.positions.delete(channel);
  if (send({ op: 'unsubscribe', channel }, { channel, origin: 'list' }) === null) {
    state.wanted.delete(channel);
  } else {
    state.wanted.set(channel, { ...state.wanted.get(channel), status: 'leaving' });
  }
}

/** Sends a new token on the open socket; `meta.prev` is restored if it is refused. */
export function sendRefresh(token, meta) {
  return send({ op: 'refresh', token }, meta);
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
