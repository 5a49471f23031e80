// Video page: the connection, a thin adapter over DanmakuClient (static/lib/danmaku-client.js),
// the one implementation of protocol v1 (connect, welcome, subscribe with recovery,
// reconnect with backoff and jitter, batched frames, replies, ping, refresh). This file
// only translates: it mirrors the client's state onto the page's shared `state`
// (static/page/state.js), turns the client's events into the page's, and keeps the
// functions the page modules import.
//
// No DOM here: the page listens with `on(type, fn)` (static/app.js wires it) and gets
// its token ready through `setAuth`. Listeners run synchronously, in order.
//
// Events: status · log {kind, type, channel, seq, ts, body} · reset · welcome
// {sameIdentity} · closed · refused {code, message} · subscribed {meta, reply} ·
// subscribe_refused / unsubscribe_refused {channel, error, origin} · refreshed {meta} ·
// refresh_refused {meta, error} · channels · unsubscribed {channel, error} ·
// token_expired (the frame) · event {frame, replayed, push}.

import { DanmakuClient } from '../lib/danmaku-client.js';
import { isObject, pretty } from '../lib/util.js';
import { VIDEO_CHANNEL, identityKey, state } from './state.js';
import { t, tValue } from '../lib/i18n.js';
// Only for the refetch cursor: the highest comment id the overlay holds (history included).
import { overlay } from './overlay-wiring.js';

/** Close codes the server uses (src/hub/conn.rs) plus the browser's own; named in the catalogs as `conn.close.<code>`. */
const CLOSE_CODES = new Set([1000, 1001, 1003, 1005, 1006, 1008, 1009, 1011, 4001, 4002, 4008]);

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

/**
 * The client's token provider: before a socket opens and before the token's `exp` the
 * session may re-mint (`beforeOpen`); after a refusal it may renew. The client compares
 * what comes back with the token it had: the same one after a refusal means give up.
 */
async function provideToken({ reason, error } = {}) {
  if (reason === 'refused') await auth.renew({ code: error.code, message: error.message });
  else await auth.beforeOpen();
  if (reason === 'connect' || reason === 'reconnect') {
    logSystem('connecting', state.token ? t('log.opening_token') : t('log.opening_guest'));
  }
  return state.token;
}

const client = new DanmakuClient({ getToken: provideToken, reconnect: { minMs: 1000, maxMs: 30000 } });

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

/** `{code, message}` (plus `retry_after_ms`) of a DanmakuError, as the page shows errors. */
function errorBody(e) {
  const body = { code: String(e.code || 'error'), message: String(e.message || '') };
  if (Number.isFinite(e.retryAfter)) body.retry_after_ms = Math.round(e.retryAfter * 1000);
  return body;
}

// ---------------------------------------------------------------------------------------
// The client's state, mirrored on the page's

/** Where each channel was joined from ('input', 'list', 'room'), for inline errors. */
const origins = new Map();
/** Channels handed to the client; each gets exactly one subscribe() and one outcome. */
const asked = new Set();
/** Channels joined on some socket since they were asked for (later joins are resubscribes). */
const joinedOnce = new Set();

client.on('state', (s, info) => {
  state.phase = s;
  if (s === 'connecting') onConnecting();
  if (s === 'reconnecting') {
    // Truthy while a retry waits: the status line counts down to `retryAt`.
    state.retryTimer = true;
    state.retryAt = info.retryAt;
  }
  if (s === 'closed') {
    state.retryTimer = null;
    state.welcomed = false;
    // The token was refused at the upgrade and could not be renewed: no retry.
    if (info.error && info.error.status === 401) {
      state.stopped = true;
      state.lastClose = { code: state.lastClose ? state.lastClose.code : 1006, reason: t('conn.token_refused', { code: info.error.code }) };
      emit('refused', { code: info.error.code, message: info.error.message });
    }
  }
  emit('status');
});

/** A new socket is being opened: what belonged to the last one is reset. */
function onConnecting() {
  state.gen += 1;
  state.user = null;
  state.welcomed = false;
  state.conn = null;
  state.rtt = null;
  state.lastClose = null;
  state.retryTimer = null;
  state.stopped = false;
  // Errors belong to the previous socket (maybe another identity); resubscribing after the
  // welcome reports any that still apply.
  state.channelErrors.clear();
  // The page's own room is joined again on every connection (a new identity may be
  // admitted where the last one was refused), unless the viewer left it on purpose.
  if (!state.wanted.has(VIDEO_CHANNEL) && !state.leftRoom) state.wanted.set(VIDEO_CHANNEL, { status: 'pending', tier: null });
  for (const [name, entry] of state.wanted) {
    if (entry.status === 'leaving') continue; // its unsubscribe settles it
    entry.status = 'pending';
    if (!asked.has(name)) ask(name, origins.get(name) || 'room');
  }
  emit('reset');
}

client.on('close', ({ code, reason }) => {
  state.welcomed = false;
  state.lastClose = { code, reason: reason || (CLOSE_CODES.has(code) ? tValue('conn.close.', code) : '') };
  for (const entry of state.wanted.values()) if (entry.status !== 'leaving') entry.status = 'pending';
  emit('closed');
  logSystem('closed', t('log.closed', { code, reason: state.lastClose.reason ? ` · ${state.lastClose.reason}` : '' }));
});

client.on('welcome', (f) => {
  state.welcomed = true;
  state.everWelcomed = true;
  state.conn = f.conn ?? null;
  state.user = client.user;
  state.heartbeatS = Number(f.heartbeat_s) || null;
  state.lastClose = null;
  // Automatic channels are never asked for; an old entry for one is dropped.
  for (const name of [...state.wanted.keys()]) if (isAutoChannel(name)) state.wanted.delete(name);
  emit('status');
  emit('welcome', { sameIdentity: state.historyFor === identityKey() });
});

client.on('pong', ({ rtt }) => {
  state.rtt = rtt;
  emit('status');
});

client.on('subscribed', ({ channel, reply }) => {
  state.wanted.set(channel, { status: 'joined', tier: reply.tier ?? null });
  state.channelErrors.delete(channel);
  const first = !joinedOnce.has(channel);
  joinedOnce.add(channel);
  // `reconnect: false`: the client itself recovers what the room missed (a replay, or a
  // refetch emitted as replayed comments), so the page has nothing to catch up.
  const meta = { channel, origin: first ? origins.get(channel) || 'room' : 'resubscribe', reconnect: false };
  emit('subscribed', { meta, reply });
  emit('channels');
});

client.on('unsubscribed', ({ channel, error, resubscribe }) => {
  asked.delete(channel);
  state.wanted.delete(channel);
  const err = errorBody(error);
  if (resubscribe) {
    // Refused on a reconnect (another identity, say): shown like any refused join.
    emit('subscribe_refused', { channel, error: err, origin: 'resubscribe' });
  } else {
    state.channelErrors.set(channel, err);
    emit('unsubscribed', { channel, error: err });
  }
  emit('channels');
});

client.on('refreshed', ({ user, auto }) => {
  state.user = user;
  // Refreshes the page asked for report through sendRefresh; the client's own are quiet.
  if (auto) emit('refreshed', { meta: { quiet: true } });
});

client.on('token_expired', (f) => emit('token_expired', f));

// ---------------------------------------------------------------------------------------
// Frames and events, for the log and the page

client.on('frame', (f) => {
  const notice = ['reply', 'welcome', 'unsubscribed', 'token_expired'].includes(f.type);
  // Channel events are logged by 'event' below; ping replies would only flood the log.
  if ((!notice && typeof f.channel === 'string') || (f.type === 'reply' && f.op === 'ping')) return;
  let kind = 'protocol';
  if (f.type === 'reply') kind = f.ok ? 'reply' : 'reply-error';
  if (f.type === 'unsubscribed') kind = 'reply-error';
  const type = f.type === 'reply' ? `reply${f.op ? ` · ${f.op}` : ''}` : String(f.type ?? 'unknown');
  emit('log', { kind, type, channel: f.channel, body: pretty(f) });
});

client.on('event', (frame, meta) => {
  if (meta.duplicate) return; // the same comment again (a bus outage repeat): drawn once
  const push = isObject(frame.data) && Object.hasOwn(frame.data, 'payload');
  pageEvent(frame, meta.replayed, push);
});

// Comments the server could not replay, refetched from the history API: they join the
// timeline like replayed ones (no burst on screen).
client.on('danmaku', (view, meta) => {
  if (meta.refetched) pageEvent({ type: 'danmaku', channel: meta.channel, data: view }, true, false);
});

function pageEvent(frame, replayed, push) {
  if (frame.type !== 'presence') {
    emit('log', {
      kind: 'event',
      type: `${String(frame.type)}${replayed ? ' (replayed)' : ''}`,
      channel: frame.channel,
      seq: frame.seq,
      ts: Number(frame.ts) || null,
      body: pretty(push ? frame.data.payload : frame.data),
    });
  }
  emit('event', { frame, replayed, push });
}

client.on('error', (e) => {
  if (e.code === 'bad_frame') emit('log', { kind: 'error', type: 'bad frame', body: e.message });
  else logSystem('error', `${e.code}: ${e.message}`);
});

// ---------------------------------------------------------------------------------------
// Connect, close, reconnect

/** Opens a new socket with the current token, replacing any open one. */
export function connect() {
  return client.reconnect().catch(() => {
    // A refusal is reported through 'refused'; a close() through the status.
  });
}

/** Connects again at once with a fresh backoff (sign-in, the Reconnect button). */
export function reconnectNow() {
  connect();
}

/** Reconnects at once when the network comes back while a retry is waiting. */
export function reconnectWhenOnline() {
  window.addEventListener('online', () => {
    if (state.retryTimer) reconnectNow();
  });
}

// ---------------------------------------------------------------------------------------
// Ops out

/** Hands a channel to the client once; its outcome arrives as 'subscribed' or a refusal. */
function ask(channel, origin) {
  asked.add(channel);
  origins.set(channel, origin);
  const afterId = channel === VIDEO_CHANNEL ? () => (overlay ? overlay.maxId() : 0) : undefined;
  client.subscribe(channel, { afterId }).catch((e) => {
    asked.delete(channel);
    // Left, closed, or the token was refused (reported once, by 'refused'): asked again later.
    if (e.code === 'cancelled' || e.code === 'closed' || e.status === 401) return;
    state.wanted.delete(channel);
    emit('subscribe_refused', { channel, error: errorBody(e), origin });
    emit('channels');
  });
}

/** Marks a channel wanted and asks for it; without an open socket, after the next welcome. */
export function join(channel, origin) {
  state.wanted.set(channel, { status: 'pending', tier: null });
  joinedOnce.delete(channel);
  if (asked.has(channel)) origins.set(channel, origin);
  else ask(channel, origin);
}

/** Leaves a channel: asks the server when a socket is open, else just forgets it. */
export function leave(channel) {
  asked.delete(channel);
  if (!state.welcomed) {
    state.wanted.delete(channel);
    client.unsubscribe(channel).catch(() => {});
    return;
  }
  state.wanted.set(channel, { ...state.wanted.get(channel), status: 'leaving' });
  client.unsubscribe(channel).then(
    () => state.wanted.delete(channel),
    (e) => emit('unsubscribe_refused', { channel, error: errorBody(e), origin: 'list' }),
  ).finally(() => emit('channels'));
}

/**
 * Sends an op the way the page used to: subscribe / unsubscribe / refresh / ping / danmaku
 * go to the client's own methods. Returns null when there is no open socket, else true.
 */
export function send(frame, meta = {}) {
  if (!state.welcomed) return null;
  if (frame.op === 'subscribe') join(frame.channel, meta.origin || 'input');
  else if (frame.op === 'unsubscribe') leave(frame.channel);
  else if (frame.op === 'refresh') sendRefresh(frame.token, meta);
  else if (frame.op === 'ping') client.ping().catch(() => {});
  else if (frame.op === 'danmaku') request(frame);
  else return null;
  return true;
}

/**
 * Sends an op and resolves with a reply-shaped result ({ok: true, ...} or {ok: false,
 * error}); null when there is no open socket (the composer then posts over REST).
 */
export async function request(frame) {
  if (!state.welcomed) return null;
  try {
    if (frame.op === 'danmaku') {
      const { op, id, video, ...body } = frame;
      return { type: 'reply', ok: true, op, danmaku: await client.post(video, body) };
    }
    if (frame.op === 'ping') return { type: 'reply', ok: true, op: 'ping', rtt: await client.ping() };
    if (frame.op === 'refresh') return { type: 'reply', ok: true, op: 'refresh', user: await client.refresh(frame.token) };
  } catch (e) {
    return { type: 'reply', ok: false, error: errorBody(e) };
  }
  return { type: 'reply', ok: false, error: { code: 'unknown_op', message: t('conn.unknown_op', { op: frame.op }) } };
}

/** Sends a new token on the open socket; `meta.prev` is restored if it is refused. */
export function sendRefresh(token, meta) {
  if (!state.welcomed) return null;
  client.refresh(token).then(
    () => emit('refreshed', { meta }),
    (e) => emit('refresh_refused', { meta, error: errorBody(e) }),
  ).finally(() => emit('channels'));
  return true;
}
