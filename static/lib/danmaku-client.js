// danmaku-client.js: the embeddable client of the danmaku server (WebSocket protocol v1,
// openapi/asyncapi.yaml, plus the few REST calls a player needs). One ES module, no
// dependencies, no build step; runs in browsers and in Node >= 20 (Node 20 needs
// `--experimental-websocket`, or pass `WebSocket` in the options). Types: ./danmaku-client.d.ts.
//
//   const client = new DanmakuClient({ url: 'wss://example.com/ws', getToken });
//   client.on('danmaku', (view, meta) => draw(view));
//   await client.connect();
//   await client.subscribe('video:42');
//   const mine = await client.post('42', { text: '233', time: 12.5 });
//
// What it guarantees: one live socket at a time; reconnects with exponential backoff and
// full jitter; resubscribes with `since` so missed events are replayed, and when the
// server cannot replay them (`recovered: false`) refetches the video's comments over REST
// after the last id it saw, emitted in id order before the live ones that arrived
// meanwhile; comments are delivered once (repeated ids are dropped, save one published
// again after its `danmaku_deleted`: hidden by reports, then approved); a token provider is
// asked again before `exp` and the new token goes to the live socket (`refresh`). Calls
// are never retried: a call whose socket drops rejects with `network_error`.
//
// SECURITY: this module never touches the DOM; the token travels in `access_token` on the
// upgrade (browsers cannot set headers on a WebSocket) and as a Bearer header over REST.

/** Tunables; each one bounds a queue or a wait. */
const LIMITS = {
  maxPending: 256, // ops awaiting a reply; more would only pile up behind a stuck socket
  maxChannels: 256, // wanted subscriptions (the server's own default cap is 64)
  seenPerChannel: 2048, // comment ids remembered per room, to drop repeated deliveries
  maxVideos: 256, // videos whose highest comment id is remembered (refetch cursors)
  bufferPerChannel: 1024, // live events held back while a room's refetch runs
  refetchPageSize: 10000, // the history API's largest page
  refetchMaxPages: 5, // a refetch reads at most this many pages (50 000 comments)
  maxFrameBytes: 16384, // the server's default ws_max_message: a bigger frame closes with 1009
  stableMs: 10000, // a socket up this long resets the backoff (no tight loop on flapping)
};

const VIDEO_PREFIX = 'video:';
const DRAFT_FIELDS = ['text', 'time', 'mode', 'color', 'size', 'audience'];
/** Ops whose lost reply means the socket is unusable (a post may merely be slow to store). */
const LIVENESS_OPS = new Set(['ping', 'subscribe', 'unsubscribe', 'refresh']);

/** Every failure this module reports: a stable `code`, a message for people. */
export class DanmakuError extends Error {
  constructor(code, message, { status, retryAfter, cause } = {}) {
    super(message || code, cause === undefined ? undefined : { cause });
    this.name = 'DanmakuError';
    this.code = String(code);
    /** The HTTP status of a REST failure; undefined for socket replies and network errors. */
    this.status = status;
    /** Seconds to wait before trying again, when the server said (cooldown, 429). */
    this.retryAfter = retryAfter;
  }

  /** The `error` of an `ok: false` reply (`retry_after_ms` only comes with `cooldown`). */
  static fromReply(error) {
    const e = isObject(error) ? error : {};
    const wait = Number(e.retry_after_ms);
    return new DanmakuError(typeof e.code === 'string' ? e.code : 'error',
      typeof e.message === 'string' ? e.message : 'the server refused the op',
      { retryAfter: Number.isFinite(wait) && wait >= 0 ? wait / 1000 : undefined });
  }
}

function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The claims of a JWT, read only to schedule renewals (the server verifies tokens; we never trust them). */
function jwtClaims(token) {
  try {
    const part = String(token).split('.')[1];
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
    const claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))));
    return isObject(claims) ? claims : null;
  } catch {
    return null;
  }
}

/** The page's origin in a browser; undefined elsewhere (Node must be told). */
function pageOrigin() {
  return typeof location !== 'undefined' && location.origin && location.origin !== 'null' ? location.origin : undefined;
}

function ms() {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}

/**
 * The REST helper: JSON in and out, Bearer token, `{code, message}` errors turned into
 * DanmakuError. Resolves with the parsed body (null when empty). Never retries.
 */
export async function request(method, path, body, { baseUrl = pageOrigin(), token, fetch: fetchImpl, timeoutMs = 15000, raw = false } = {}) {
  const doFetch = fetchImpl || globalThis.fetch;
  if (typeof doFetch !== 'function') throw new DanmakuError('no_fetch', 'no fetch implementation: pass `fetch` in the options');
  const url = baseUrl ? new URL(path, baseUrl).href : path;
  const headers = { Accept: raw ? '*/*' : 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  // A hung request must not hold a caller forever: abort it after `timeoutMs`.
  const ctrl = typeof AbortController === 'function' ? new AbortController() : null;
  const timer = ctrl && timeoutMs > 0 ? setTimeout(() => ctrl.abort(), timeoutMs) : null;
  let res;
  let text;
  try {
    res = await doFetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      signal: ctrl ? ctrl.signal : undefined,
    });
    text = await res.text();
  } catch (e) {
    if (ctrl && ctrl.signal.aborted) throw new DanmakuError('timeout', `no answer from the server within ${timeoutMs} ms`);
    throw new DanmakuError('network_error', `could not reach the server (${e && e.message})`, { cause: e });
  } finally {
    clearTimeout(timer);
  }
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!res.ok) {
    const retry = Number(res.headers.get('Retry-After'));
    const message = isObject(json) && typeof json.message === 'string' ? json.message : (text || res.statusText || '').slice(0, 200);
    throw new DanmakuError(isObject(json) && typeof json.code === 'string' ? json.code : `http_${res.status}`, message,
      { status: res.status, retryAfter: Number.isFinite(retry) && retry > 0 ? retry : undefined });
  }
  return raw ? text : json;
}

/** A bounded set of recent ids: remembers the last `cap` added, forgets the oldest. */
class RecentIds {
  constructor(cap) {
    this.cap = cap;
    this.set = new Set();
  }

  /** Adds an id; false when it was already there (a repeated delivery). */
  add(id) {
    if (this.set.has(id)) return false;
    this.set.add(id);
    // Sets iterate in insertion order, so the first one is the oldest.
    if (this.set.size > this.cap) this.set.delete(this.set.values().next().value);
    return true;
  }

  /** Forgets an id (a deleted comment that may be published again). */
  delete(id) {
    this.set.delete(id);
  }
}

export class DanmakuClient {
  constructor(options = {}) {
    const o = options;
    const origin = pageOrigin();
    // The socket URL and the REST origin default to the page's; either one implies the other
    // (an embed on another site gives `url` and talks REST to the same server).
    let url = o.url;
    if (!url && (o.baseUrl || origin)) url = new URL('/ws', o.baseUrl || origin).href.replace(/^http/, 'ws');
    if (!url) throw new DanmakuError('bad_options', 'outside a browser, `url` (or `baseUrl`) is required');
    this._url = new URL(url, origin).href;
    this._baseUrl = o.baseUrl || new URL(this._url).origin.replace(/^ws/, 'http');
    this._WebSocket = o.WebSocket || globalThis.WebSocket;
    this._fetch = o.fetch;
    this._getToken = typeof o.getToken === 'function' ? o.getToken : null;
    this._token = typeof o.token === 'string' && o.token ? o.token : null;
    this._tokenAsked = !this._getToken;
    this._backoff = o.reconnect === false ? null : { minMs: 1000, maxMs: 30000, ...(isObject(o.reconnect) ? o.reconnect : {}) };
    this._timeoutMs = Number(o.requestTimeoutMs) > 0 ? Number(o.requestTimeoutMs) : 10000;
    this._connectTimeoutMs = Number(o.connectTimeoutMs) > 0 ? Number(o.connectTimeoutMs) : 15000;
    this._refreshLeadMs = Number(o.refreshLeadMs) > 0 ? Number(o.refreshLeadMs) : 30000;

    this._listeners = new Map();
    this._state = 'closed';
    this._stopped = true; // true until connect(), and again after close() or a refusal
    this._ws = null;
    this._gen = 0; // bumped per socket: handlers of an older socket see a mismatch and stop
    this._welcome = null;
    this._user = null;
    this._identity = null; // `sub|role` of the last welcome: positions belong to it
    this._welcomedAt = 0;
    this._attempt = 0;
    this._timers = { retry: null, connect: null, ping: null, refresh: null };
    this._pending = new Map(); // op id -> {op, resolve, reject, timer}
    this._nextId = 1;
    this._connectWaiters = [];
    this._subs = new Map(); // channel -> subscription record (see _sub)
    this._maxId = new Map(); // video -> highest comment id seen, the refetch cursor
    this._refreshing = null;
    this._requestAsk = null; // the provider's answer awaited by REST calls, shared
    this._rtt = null;
  }

  // ---- events -------------------------------------------------------------------------

  /** Listens to an event (see the .d.ts for the list); returns the function that stops it. */
  on(type, fn) {
    if (!this._listeners.has(type)) this._listeners.set(type, new Set());
    this._listeners.get(type).add(fn);
    return () => this.off(type, fn);
  }

  off(type, fn) {
    const set = this._listeners.get(type);
    if (set) set.delete(fn);
  }

  _emit(type, ...args) {
    for (const fn of [...(this._listeners.get(type) || [])]) {
      try {
        fn(...args);
      } catch (e) {
        // A listener's bug must not break the protocol state; surface it like EventTarget does.
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }

  _setState(state, info = {}) {
    this._state = state;
    this._emit('state', state, info);
  }

  /** 'connecting' | 'open' | 'reconnecting' | 'closed' */
  get state() {
    return this._state;
  }

  /** `welcome.user` (or the refreshed user) of the live socket; null when there is none. */
  get user() {
    return this._state === 'open' ? this._user : null;
  }

  /** The last app-level ping round trip in ms, or null. */
  get rtt() {
    return this._rtt;
  }

  // ---- connecting -------------------------------------------------------------------------

  /** Opens the socket (if it is not) and resolves with the welcome frame. */
  connect() {
    if (this._state === 'open') return Promise.resolve(this._welcome);
    const waiting = this._waitWelcome();
    // Connecting or waiting to retry already: the welcome to come answers this call too.
    if (this._state === 'closed') {
      this._stopped = false;
      this._open('connect');
    }
    return waiting;
  }

  /** Replaces the socket at once with a fresh backoff (new identity, a Reconnect button). */
  reconnect() {
    this._stopped = false;
    this._attempt = 0;
    if (this._ws) this._teardown({ code: 1000, reason: 'reconnecting' }, 'network_error');
    const waiting = this._waitWelcome();
    this._open('connect');
    return waiting;
  }

  _waitWelcome() {
    return new Promise((resolve, reject) => this._connectWaiters.push({ resolve, reject }));
  }

  /** Closes for good: no reconnect until connect() is called again. */
  close() {
    this._stopped = true;
    clearTimeout(this._timers.retry);
    if (this._ws) this._teardown({ code: 1000, reason: 'client closed' }, 'closed');
    this._gen += 1; // a connect still fetching its token must not open a socket
    const err = new DanmakuError('closed', 'the client was closed');
    this._rejectWaiters(err);
    if (this._state !== 'closed') this._setState('closed', {});
  }

  async _open(reason) {
    clearTimeout(this._timers.retry);
    this._timers.retry = null;
    const gen = ++this._gen;
    this._setState('connecting', { attempt: this._attempt });
    if (gen !== this._gen) return; // a 'state' listener closed the client
    let token = this._token;
    if (this._getToken) {
      try {
        token = await this._askToken(reason);
      } catch (e) {
        if (gen !== this._gen) return;
        this._emit('error', e);
        this._afterClose(gen, { code: 0, reason: 'no token' });
        return;
      }
      if (gen !== this._gen) return; // closed or replaced while the provider ran
      this._token = token;
      this._tokenAsked = true;
    }
    const url = new URL(this._url);
    if (token) url.searchParams.set('access_token', token);
    let ws;
    try {
      if (typeof this._WebSocket !== 'function') throw new Error('no WebSocket implementation: pass `WebSocket` in the options');
      ws = new this._WebSocket(url.href);
    } catch (e) {
      this._emit('error', new DanmakuError('network_error', `cannot open a WebSocket: ${e.message}`, { cause: e }));
      this._afterClose(gen, { code: 0, reason: e.message });
      return;
    }
    this._ws = ws;
    this._welcome = null;
    ws.addEventListener('message', (ev) => {
      if (gen === this._gen) this._onMessage(ev.data, gen);
    });
    ws.addEventListener('close', (ev) => {
      if (gen === this._gen) this._onClose({ code: ev.code, reason: ev.reason || '' });
    });
    // `error` means the connection failed (an unclean close, 1006). Browsers follow it with
    // `close`; Node 20's WebSocket does not after a refused upgrade, so act on it at once.
    ws.addEventListener('error', () => {
      if (gen === this._gen) this._onClose({ code: 1006, reason: '' });
    });
    // A handshake that neither completes nor fails (a black-holed SYN) would hang forever.
    this._timers.connect = setTimeout(() => {
      if (gen === this._gen && !this._welcome) this._onClose({ code: 4000, reason: 'no welcome from the server' });
    }, this._connectTimeoutMs);
  }

  /** What every socket loss does: fail its calls, forget its state, tell the listeners. */
  _teardown(info, failCode) {
    const ws = this._ws;
    this._ws = null;
    this._gen += 1;
    for (const key of ['connect', 'ping', 'refresh']) {
      clearTimeout(this._timers[key]);
      clearInterval(this._timers[key]);
      this._timers[key] = null;
    }
    if (ws) {
      try {
        ws.close(info.code >= 3000 || info.code === 1000 ? info.code : 1000, String(info.reason).slice(0, 120));
      } catch {
        // already closing
      }
    }
    const err = new DanmakuError(failCode, failCode === 'closed'
      ? 'the client was closed before the reply'
      : `the connection closed before the reply (${info.code}${info.reason ? ` ${info.reason}` : ''})`);
    for (const entry of this._pending.values()) {
      clearTimeout(entry.timer);
      entry.reject(err);
    }
    this._pending.clear();
    for (const sub of this._subs.values()) {
      sub.joined = false;
      sub.replayLeft = 0;
    }
    this._emit('close', info);
  }

  _onClose(info) {
    const welcomed = Boolean(this._welcome);
    const stable = welcomed && ms() - this._welcomedAt > LIMITS.stableMs;
    const token = this._token;
    this._teardown(info, 'network_error');
    const gen = this._gen;
    if (stable) this._attempt = 0;
    if (this._stopped) {
      this._setState('closed', info);
      return;
    }
    // Closed before `welcome`: usually a refused upgrade (HTTP 401), which a browser only
    // reports as 1006. Ask the REST API what it thinks of the token.
    if (!welcomed && token) {
      this._diagnose(token, gen, info);
      return;
    }
    this._afterClose(gen, info);
  }

  async _diagnose(token, gen, info) {
    let problem = null;
    try {
      await request('GET', '/api/me', undefined, { baseUrl: this._baseUrl, token, fetch: this._fetch });
    } catch (e) {
      if (e.status === 401) problem = e;
    }
    if (gen !== this._gen || !problem) {
      if (gen === this._gen) this._afterClose(gen, info);
      return;
    }
    // A refused token is final unless the provider comes up with a different one.
    let next = token;
    if (this._getToken) {
      next = await this._askToken('refused', problem).catch(() => token);
      if (gen !== this._gen) return;
    }
    if (next === token) {
      this._stop(problem);
      return;
    }
    this._token = next;
    this._afterClose(gen, info);
  }

  /** Schedules the next attempt, or gives up when reconnecting is off. */
  _afterClose(gen, info) {
    if (gen !== this._gen || this._stopped) return;
    if (!this._backoff) {
      this._stop(new DanmakuError('network_error', `the connection closed (${info.code}${info.reason ? ` ${info.reason}` : ''})`), false);
      return;
    }
    // Full jitter: a uniform wait in [0, min(max, min * 2^attempt)], so that the clients of a
    // restarted server come back spread out instead of in waves.
    const cap = Math.min(this._backoff.maxMs, this._backoff.minMs * 2 ** this._attempt);
    const delayMs = Math.round(Math.random() * cap);
    const attempt = this._attempt;
    this._attempt = Math.min(this._attempt + 1, 30);
    this._timers.retry = setTimeout(() => this._stopped || this._open('reconnect'), delayMs);
    this._setState('reconnecting', { ...info, attempt, delayMs, retryAt: Date.now() + delayMs });
  }

  /** Stops for good after a refusal (or with reconnecting off) and says why. */
  _stop(error, emitError = true) {
    this._stopped = true;
    if (emitError) this._emit('error', error);
    this._rejectWaiters(error);
    this._setState('closed', { error });
  }

  _rejectWaiters(error) {
    for (const w of this._connectWaiters.splice(0)) w.reject(error);
    for (const sub of this._subs.values()) for (const w of sub.waiters.splice(0)) w.reject(error);
  }

  // ---- frames in ------------------------------------------------------------------------------

  _onMessage(raw, gen) {
    let msg;
    try {
      msg = JSON.parse(typeof raw === 'string' ? raw : new TextDecoder().decode(raw));
    } catch {
      this._emit('error', new DanmakuError('bad_frame', `the server sent a frame that is not JSON: ${String(raw).slice(0, 200)}`));
      return;
    }
    // The server batches events into a JSON array of frames, processed in order.
    for (const frame of Array.isArray(msg) ? msg : [msg]) {
      if (gen !== this._gen) return; // a listener closed or replaced the socket mid-batch
      if (!isObject(frame)) {
        this._emit('error', new DanmakuError('bad_frame', 'the server sent a frame that is not an object'));
        continue;
      }
      this._emit('frame', frame);
      switch (frame.type) {
        case 'welcome': this._onWelcome(frame); break;
        case 'reply': this._onReply(frame); break;
        case 'unsubscribed': this._onUnsubscribed(frame); break;
        case 'token_expired':
          this._emit('token_expired', frame);
          if (this._getToken) this._autoRefresh('expired');
          break;
        default:
          if (typeof frame.channel === 'string') this._onEvent(frame);
      }
    }
  }

  _onWelcome(f) {
    clearTimeout(this._timers.connect);
    const reconnect = this._identity !== null;
    this._welcome = f;
    this._user = isObject(f.user) ? f.user : { sub: null, name: 'guest', role: 'guest' };
    this._welcomedAt = ms();
    const identity = `${this._user.sub ?? ''}|${this._user.role}`;
    const sameIdentity = identity === this._identity;
    this._identity = identity;
    // Another identity may see other comments (members-only): old positions do not apply.
    if (!sameIdentity) for (const sub of this._subs.values()) sub.epoch = null;
    this._setState('open', {});
    this._startPing(Number(f.heartbeat_s));
    this._scheduleRefresh();
    // Resubscribe before telling anyone, so a listener's own subscribe() is not sent twice.
    for (const [channel, sub] of this._subs) this._sendSubscribe(channel, sub);
    this._emit('welcome', f, { sameIdentity, reconnect });
    for (const w of this._connectWaiters.splice(0)) w.resolve(f);
  }

  _onReply(f) {
    const entry = this._pending.get(f.id);
    if (!entry) {
      // `id: null`: the server could not read our frame at all; nobody is waiting for it.
      if (f.ok === false) this._emit('error', DanmakuError.fromReply(f.error));
      return;
    }
    this._pending.delete(f.id);
    clearTimeout(entry.timer);
    if (f.ok !== true) return entry.reject(DanmakuError.fromReply(f.error));
    if (entry.onOk) entry.onOk(f);
    return entry.resolve(f);
  }

  _onUnsubscribed(f) {
    const channel = String(f.channel ?? '');
    const sub = this._subs.get(channel);
    if (sub) this._dropSub(channel, sub);
    const error = new DanmakuError(String(f.reason ?? 'unsubscribed'), String(f.message ?? 'the server removed the subscription'));
    this._emit('unsubscribed', { channel, error, resubscribe: false });
  }

  _onEvent(f) {
    const channel = f.channel;
    const sub = this._subs.get(channel);
    if (!sub) {
      // Events of a channel we left may still be queued; only the automatic ones are ours.
      const auto = channel === 'broadcast' || (this._user && this._user.sub && channel === `user:${this._user.sub}`);
      if (!auto) return;
    }
    const meta = { channel, seq: f.seq, ts: f.ts, type: f.type, replayed: false, refetched: false, duplicate: false };
    if (sub) {
      if (sub.replayLeft > 0) {
        sub.replayLeft -= 1;
        meta.replayed = true;
      }
      // An event without `seq` (a bus outage) never moves the recovery position.
      if (Number.isSafeInteger(f.seq) && (sub.seq == null || f.seq > sub.seq)) sub.seq = f.seq;
      if (sub.buffer) {
        // A refetch is running: hold live events back so that the older, refetched
        // comments come first. Bounded: past the cap the oldest held event goes out.
        sub.buffer.push([f, meta]);
        if (sub.buffer.length > LIMITS.bufferPerChannel) this._dispatch(...sub.buffer.shift());
        return;
      }
    }
    this._dispatch(f, meta);
  }

  /** Emits one channel event: always as 'event', then by kind (comments once per id). */
  _dispatch(f, meta) {
    const data = f.data;
    const push = isObject(data) && Object.hasOwn(data, 'payload');
    if (!push && f.type === 'danmaku' && isObject(data) && Number.isSafeInteger(data.id)) {
      meta.duplicate = !this._seen(f.channel, data.id);
    }
    // A deleted comment may come back (hidden by reports, then approved): its id is new again.
    if (!push && f.type === 'danmaku_deleted' && isObject(data) && Number.isSafeInteger(data.id)) {
      const sub = this._subs.get(f.channel);
      if (sub) sub.ids.delete(data.id);
    }
    this._emit('event', f, meta);
    if (meta.duplicate) return;
    if (push) {
      this._emit('push', data.payload, { ...meta, schedule: data.schedule });
      return;
    }
    const typed = {
      danmaku: 'danmaku', danmaku_deleted: 'danmaku_deleted', danmaku_likes: 'danmaku_likes', danmaku_reviewed: 'danmaku_reviewed',
      danmaku_fold: 'danmaku_fold', presence: 'presence',
    }[f.type];
    if (typed && isObject(data)) this._emit(typed, data, meta);
  }

  /** Records a comment id of a room; false when it was seen before. */
  _seen(channel, id) {
    const sub = this._subs.get(channel);
    if (sub && !sub.ids.add(id)) return false;
    if (channel.startsWith(VIDEO_PREFIX)) this._raiseMaxId(channel.slice(VIDEO_PREFIX.length), id);
    return true;
  }

  _raiseMaxId(video, id) {
    const prev = this._maxId.get(video) ?? 0;
    this._maxId.delete(video); // re-inserted last: the Map's order is the recency order
    this._maxId.set(video, Math.max(prev, id));
    if (this._maxId.size > LIMITS.maxVideos) this._maxId.delete(this._maxId.keys().next().value);
  }

  // ---- ops out ------------------------------------------------------------------------------

  /**
   * Sends one op and resolves with its `ok` reply; rejects with DanmakuError. `onOk` runs
   * synchronously with the reply: Node's WebSocket fires the frames of one read back to back
   * without running promise callbacks in between, so state the next frame depends on (a
   * subscription's replay count, a refreshed role) cannot wait for `.then`.
   */
  _call(op, fields = {}, onOk = null) {
    return new Promise((resolve, reject) => {
      const ws = this._ws;
      if (!ws || this._state !== 'open' || ws.readyState !== 1) return reject(new DanmakuError('network_error', 'not connected'));
      if (this._pending.size >= LIMITS.maxPending) {
        return reject(new DanmakuError('too_many_pending', `${LIMITS.maxPending} ops are already waiting for a reply`));
      }
      const id = this._nextId++;
      const text = JSON.stringify({ ...fields, op, id });
      // The server closes the whole socket (1009) on an oversized frame: refuse it here.
      if (new TextEncoder().encode(text).length > LIMITS.maxFrameBytes) {
        return reject(new DanmakuError('frame_too_large', `the ${op} frame is larger than ${LIMITS.maxFrameBytes} bytes`));
      }
      const gen = this._gen;
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new DanmakuError('timeout', `no reply to ${op} within ${this._timeoutMs} ms`));
        // No reply to a cheap op: the socket is dead even if TCP has not noticed yet.
        if (LIVENESS_OPS.has(op) && gen === this._gen) this._onClose({ code: 4000, reason: `no reply to ${op}` });
      }, this._timeoutMs);
      this._pending.set(id, { op, resolve, reject, timer, onOk });
      try {
        ws.send(text);
      } catch (e) {
        clearTimeout(timer);
        this._pending.delete(id);
        reject(new DanmakuError('network_error', `could not send: ${e.message}`, { cause: e }));
      }
    });
  }

  /** Subscribes (now or after the next welcome); resolves with the subscribe reply. */
  subscribe(channel, { afterId } = {}) {
    if (typeof channel !== 'string' || !channel) return Promise.reject(new DanmakuError('invalid_channel', 'a channel name is required'));
    let sub = this._subs.get(channel);
    if (sub && afterId !== undefined) sub.afterId = afterId;
    if (sub && sub.joined) return Promise.resolve(sub.reply);
    if (!sub) {
      if (this._subs.size >= LIMITS.maxChannels) return Promise.reject(new DanmakuError('too_many_subscriptions', `at most ${LIMITS.maxChannels} channels`));
      sub = {
        joined: false, everJoined: false, reply: null, epoch: null, seq: null, replayLeft: 0,
        waiters: [], afterId, buffer: null, refetchGen: 0, ids: new RecentIds(LIMITS.seenPerChannel),
      };
      this._subs.set(channel, sub);
      if (this._state === 'open') this._sendSubscribe(channel, sub);
    }
    return new Promise((resolve, reject) => sub.waiters.push({ resolve, reject }));
  }

  _sendSubscribe(channel, sub) {
    const fields = { channel };
    // Resume from the last position seen, so the server replays what we missed.
    if (typeof sub.epoch === 'string' && Number.isSafeInteger(sub.seq)) fields.since = { seq: sub.seq, epoch: sub.epoch };
    const gen = this._gen;
    this._call('subscribe', fields, (reply) => this._onSubscribed(channel, sub, reply, Boolean(fields.since))).catch(
      (err) => {
        // A lost socket keeps the subscription wanted: the next welcome asks again.
        if (this._subs.get(channel) !== sub || err.code === 'network_error' || err.code === 'timeout' || gen !== this._gen) return;
        this._dropSub(channel, sub);
        for (const w of sub.waiters.splice(0)) w.reject(err);
        if (sub.everJoined) this._emit('unsubscribed', { channel, error: err, resubscribe: true });
      },
    );
  }

  _onSubscribed(channel, sub, reply, resumed) {
    if (this._subs.get(channel) !== sub) return; // left meanwhile (the unsubscribe follows it)
    const recovered = resumed && reply.recovered === true;
    sub.joined = true;
    sub.everJoined = true;
    sub.reply = reply;
    if (typeof reply.epoch === 'string' && Number.isSafeInteger(reply.seq)) {
      // Recovered: the replayed events bring `seq` up to date themselves.
      if (!recovered) sub.seq = reply.seq;
      sub.epoch = reply.epoch;
    }
    sub.replayLeft = recovered && Number.isSafeInteger(reply.replayed) ? reply.replayed : 0;
    const refetch = resumed && !recovered && channel.startsWith(VIDEO_PREFIX);
    if (refetch) sub.buffer = sub.buffer || [];
    this._emit('subscribed', { channel, recovered, reply, refetching: refetch });
    for (const w of sub.waiters.splice(0)) w.resolve(reply);
    if (refetch) this._refetch(channel, sub);
  }

  /**
   * The server could not replay what this room missed: read the comments stored after the
   * last id seen from the history API, emit them in id order (meta.refetched), then release
   * the live events held back meanwhile. Three tries; then an 'error' and the live ones.
   */
  async _refetch(channel, sub) {
    const run = ++sub.refetchGen;
    const video = channel.slice(VIDEO_PREFIX.length);
    const given = typeof sub.afterId === 'function' ? sub.afterId() : sub.afterId;
    const after = Math.max(this._maxId.get(video) ?? 0, Number.isSafeInteger(given) ? given : 0);
    let items = null;
    for (let attempt = 0; attempt < 3 && items === null; attempt += 1) {
      try {
        items = await this._readAfter(video, after);
      } catch (e) {
        if (attempt === 2) this._emit('error', e);
        else await new Promise((r) => setTimeout(r, 1000 * 2 ** attempt));
      }
      if (this._subs.get(channel) !== sub || run !== sub.refetchGen) return;
    }
    for (const view of items || []) {
      if (this._seen(channel, view.id)) this._emit('danmaku', view, { channel, replayed: false, refetched: true, duplicate: false });
    }
    const held = sub.buffer || [];
    sub.buffer = null;
    for (const [f, meta] of held) this._dispatch(f, meta);
  }

  /** Every stored comment of a video with an id above `after`, in id order (bounded). */
  async _readAfter(video, after) {
    const byId = new Map();
    let from;
    // The history API orders by video time, so pages continue from the last page's time.
    for (let page = 0; page < LIMITS.refetchMaxPages; page += 1) {
      const h = await this.request('GET', historyPath(video, { afterId: after, limit: LIMITS.refetchPageSize, from }));
      const list = isObject(h) && Array.isArray(h.items) ? h.items.filter((v) => isObject(v) && Number.isSafeInteger(v.id)) : [];
      for (const v of list) byId.set(v.id, v);
      if (list.length < LIMITS.refetchPageSize) break;
      from = list[list.length - 1].time;
    }
    return [...byId.values()].sort((a, b) => a.id - b.id);
  }

  /** Leaves a channel; resolves with the reply (null when nothing had to be sent). */
  async unsubscribe(channel) {
    const sub = this._subs.get(channel);
    if (sub) {
      this._dropSub(channel, sub);
      for (const w of sub.waiters.splice(0)) w.reject(new DanmakuError('cancelled', `unsubscribed from ${channel} before the reply`));
    }
    if (this._state !== 'open') return null; // the next socket simply will not ask for it
    try {
      return await this._call('unsubscribe', { channel });
    } catch (e) {
      // Not on it (any more) is what we wanted; a lost socket left it anyway.
      if (e.code === 'not_subscribed' || e.code === 'network_error') return null;
      throw e;
    }
  }

  _dropSub(channel, sub) {
    this._subs.delete(channel);
    sub.refetchGen += 1; // a running refetch stops
    sub.buffer = null;
  }

  /**
   * Posts a comment: over the socket (op `danmaku`) when it is open, else over REST; both
   * resolve with the stored view. A refusal rejects with its code and is never retried.
   */
  async post(video, draft = {}) {
    if (typeof video !== 'string' || !video) throw new DanmakuError('invalid_video', 'a video id is required');
    const body = {};
    for (const key of DRAFT_FIELDS) if (draft[key] !== undefined) body[key] = draft[key];
    let view;
    if (this._state === 'open') view = (await this._call('danmaku', { video, ...body })).danmaku;
    else view = await this.request('POST', `/api/videos/${encodeURIComponent(video)}/danmaku`, body);
    // The server never echoes a comment to its poster; a refetch must not bring it back either.
    const sub = this._subs.get(VIDEO_PREFIX + video);
    if (sub && isObject(view) && Number.isSafeInteger(view.id)) sub.ids.add(view.id);
    return view;
  }

  /** Sends a new token on the live socket (same `sub`); resolves with the new user. */
  async refresh(token) {
    return this._refresh(token, false);
  }

  async _refresh(token, auto) {
    if (token === undefined) token = this._getToken ? await this._askToken('refresh') : this._token;
    if (typeof token !== 'string' || !token) throw new DanmakuError('missing_token', 'no token to send');
    await this._call('refresh', { token }, (reply) => {
      this._token = token;
      if (isObject(reply.user)) this._user = reply.user;
      this._identity = `${this._user.sub ?? ''}|${this._user.role}`;
      this._scheduleRefresh();
      this._emit('refreshed', { user: this._user, reply, auto });
    });
    return this._user;
  }

  /** Arms the renewal: `refreshLeadMs` (30 s) before `exp`, or half way for short tokens. */
  _scheduleRefresh() {
    clearTimeout(this._timers.refresh);
    this._timers.refresh = null;
    const claims = this._getToken && this._token ? jwtClaims(this._token) : null;
    if (!claims || !Number.isFinite(claims.exp)) return;
    const left = claims.exp * 1000 - Date.now();
    const delay = Math.max(0, left - Math.min(this._refreshLeadMs, left / 2));
    this._timers.refresh = setTimeout(() => this._autoRefresh('refresh'), Math.min(delay, 2 ** 31 - 1));
  }

  /** Asks the provider for a new token and puts it on the live socket (one at a time). */
  _autoRefresh(reason) {
    if (this._refreshing) return this._refreshing;
    this._refreshing = (async () => {
      const gen = this._gen;
      let token;
      try {
        token = await this._askToken(reason);
      } catch (e) {
        this._emit('error', e);
        return;
      }
      if (gen !== this._gen || this._state !== 'open' || !token || token === this._token) return;
      const claims = jwtClaims(token);
      if (!this._user.sub || (claims && claims.sub !== this._user.sub)) {
        // Another identity (or a guest socket) cannot refresh: open a socket with it instead.
        this._token = token;
        this.reconnect().catch(() => {});
        return;
      }
      try {
        await this._refresh(token, true);
      } catch (e) {
        if (e.code !== 'network_error') this._emit('error', e);
      }
    })().finally(() => {
      this._refreshing = null;
    });
    return this._refreshing;
  }

  /** App-level ping; resolves with the round trip in ms. */
  async ping() {
    const start = ms();
    await this._call('ping');
    this._rtt = Math.round(ms() - start);
    this._emit('pong', { rtt: this._rtt });
    return this._rtt;
  }

  /** Pings at once (a first round trip) and every heartbeat; a lost reply drops the socket. */
  _startPing(heartbeatS) {
    clearInterval(this._timers.ping);
    const every = Math.max(5, Number.isFinite(heartbeatS) && heartbeatS > 0 ? heartbeatS : 25) * 1000;
    const ping = () => this.ping().catch(() => {});
    ping();
    this._timers.ping = setInterval(ping, every);
  }

  /** The provider's token (null: a guest); its failure becomes a `token_unavailable` error. */
  async _askToken(reason, error) {
    try {
      return (await this._getToken(error ? { reason, error } : { reason })) || null;
    } catch (e) {
      throw new DanmakuError('token_unavailable', `the token provider failed: ${e && e.message}`, { cause: e });
    }
  }

  // ---- REST ------------------------------------------------------------------------------

  /** The REST helper with this client's origin, fetch and token (`{raw: true}`: the body as text). */
  async request(method, path, body, { raw = false } = {}) {
    if (!this._tokenAsked || (this._getToken && this._state !== 'open' && tokenExpiring(this._token))) {
      // Calls made together share one ask of the provider (one mint, not one per call).
      if (!this._requestAsk) {
        this._requestAsk = this._askToken('request').finally(() => {
          this._requestAsk = null;
        });
      }
      this._token = await this._requestAsk;
      this._tokenAsked = true;
    }
    return request(method, path, body, { baseUrl: this._baseUrl, token: this._token, fetch: this._fetch, raw });
  }

  /** A video's comments as bilibili XML text (the export players load), as this client may see them. */
  async exportXml(video) {
    return this.request('GET', `/api/videos/${encodeURIComponent(video)}/danmaku.xml`, undefined, { raw: true });
  }

  /** Stored comments of a video (`{video, count, items}`), ordered by video time. */
  async history(video, options = {}) {
    const h = await this.request('GET', historyPath(video, options));
    // What the caller loaded counts as seen: a later refetch starts after it.
    if (isObject(h) && Array.isArray(h.items)) {
      const top = h.items.reduce((m, v) => (isObject(v) && Number.isSafeInteger(v.id) && v.id > m ? v.id : m), 0);
      if (top > 0) this._raiseMaxId(video, top);
    }
    return h;
  }

  like(id) {
    return this.request('POST', `/api/danmaku/${encodeURIComponent(id)}/like`);
  }

  unlike(id) {
    return this.request('DELETE', `/api/danmaku/${encodeURIComponent(id)}/like`);
  }

  /** Reports someone else's comment (`{id, new}`; `new: false` when this user already had). */
  report(id, { reason } = {}) {
    const body = typeof reason === 'string' && reason.trim() ? { reason: reason.trim() } : {};
    return this.request('POST', `/api/danmaku/${encodeURIComponent(id)}/report`, body);
  }

  heatmap(video, { buckets, duration } = {}) {
    return this.request('GET', withQuery(`/api/videos/${encodeURIComponent(video)}/heatmap`, { buckets, duration }));
  }
}

/** `path?k=v&...` with the defined parameters only. */
function withQuery(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, String(v));
  const qs = q.toString();
  return qs ? `${path}?${qs}` : path;
}

function historyPath(video, { from, to, limit, afterId } = {}) {
  return withQuery(`/api/videos/${encodeURIComponent(video)}/danmaku`, { from, to, limit, after_id: afterId });
}

/** Whether a token expires within 5 s (REST calls between sockets ask the provider again). */
function tokenExpiring(token) {
  const claims = token ? jwtClaims(token) : null;
  return Boolean(claims && Number.isFinite(claims.exp) && claims.exp * 1000 - Date.now() < 5000);
}
