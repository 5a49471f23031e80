// Tests of static/lib/danmaku-client.js (the embeddable client) in Node's test runner,
// against the real server binary: `serve --demo --bind 127.0.0.1:0` on a fresh data
// directory, restarted in place (same port, same data) where a test needs it.
//
// No npm dependencies: Node 20's WebSocket (`--experimental-websocket`) and fetch. Every
// wait is for a condition (an event, a state, a REST answer), never a fixed sleep; the
// few "this must not happen" checks wait for a control that proves it would have.
//
// Run: tests/client/run.sh (uses ${DANMAKU_BIN:-target/debug/danmaku}).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DanmakuClient, DanmakuError, request } from '../../static/lib/danmaku-client.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = resolve(ROOT, process.env.DANMAKU_BIN || 'target/debug/danmaku');
const RUN = Date.now().toString(36);
/** Seconds a socket lives past `exp` without a refresh (short, so expiry tests are quick). */
const GRACE_S = 2;

const work = mkdtempSync(join(tmpdir(), 'danmaku-client-tests-'));
const dataDir = join(work, 'data');
const logPath = join(work, 'server.log');
let server = null;
let base;
let wsUrl;
const tokens = {};
const clients = [];

// ---------------------------------------------------------------------------------------
// Harness

/** Starts the server and resolves with its base URL, read from its "listening" log line. */
function startServer(bind = '127.0.0.1:0') {
  const log = createWriteStream(logPath, { flags: 'a' });
  const child = spawn(BIN, ['serve', '--demo', '--bind', bind, '--data-dir', dataDir, '--token-grace-s', String(GRACE_S), '--jwt-leeway-s', '0',
    // Spam-wave folding on, as in production (the default; said here so the fold test does not hang on it).
    '--fold-window-ms', '5000'], {
    env: { ...process.env, NO_COLOR: '1', DANMAKU_LOG: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.pipe(log);
  return new Promise((resolveAddr, reject) => {
    let buffered = '';
    const timer = setTimeout(() => reject(new Error(`the server did not log "listening" within 30 s:\n${buffered}`)), 30_000);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the server exited early (code ${code}, signal ${signal}):\n${buffered}`));
    });
    child.stderr.on('data', (chunk) => {
      log.write(chunk);
      if (buffered === null) return;
      buffered += chunk.toString().replace(/\x1b\[[0-9;]*m/g, '');
      const m = buffered.match(/listening addr=(\d+\.\d+\.\d+\.\d+:\d+)/);
      if (m) {
        clearTimeout(timer);
        buffered = null;
        server = child;
        resolveAddr(`http://${m[1]}`);
      }
    });
  });
}

async function stopServer(signal) {
  const child = server;
  server = null;
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  await exited;
}

async function rest(path, { method = 'GET', body, token } = {}) {
  const headers = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, json, text };
}

/** A 12 h demo token (POST /api/demo/token). */
async function mint(sub, role) {
  const r = await rest('/api/demo/token', { method: 'POST', body: { sub, role, name: sub } });
  assert.equal(r.status, 200, r.text);
  return r.json.token;
}

/** A short token signed with the server's own key (`danmaku token`, same data directory). */
async function mintShort(sub, role, ttl) {
  const { stdout } = await promisify(execFile)(BIN, ['token', '--sub', sub, '--role', role, '--name', sub, '--ttl', ttl, '--data-dir', dataDir]);
  return stdout.trim();
}

function expOf(token) {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).exp;
}

/** Polls a condition every 20 ms until it holds; fails with `what` after `timeout`. */
async function waitFor(cond, what, timeout = 15_000) {
  const start = Date.now();
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() - start > timeout) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A WebSocket that records what crosses it; `intercept(frame, socket)` may swallow a send. */
function recordingSocket(rec) {
  return class RecordingWebSocket extends WebSocket {
    constructor(url) {
      super(url);
      rec.sockets.push(this);
      this.addEventListener('message', (ev) => rec.raw.push(JSON.parse(ev.data)));
    }

    send(data) {
      const frame = JSON.parse(data);
      rec.sent.push(frame);
      if (rec.intercept && rec.intercept(frame, this)) return;
      super.send(data);
    }
  };
}

/** A client on the test server with recorders for its events; closed after the suite. */
function makeClient(options = {}) {
  const rec = { sockets: [], raw: [], sent: [], intercept: null };
  const client = new DanmakuClient({ url: wsUrl, WebSocket: recordingSocket(rec), reconnect: { minMs: 50, maxMs: 400 }, ...options });
  const seen = { states: [], danmaku: [], welcomes: [], errors: [], closes: [], subscribed: [], pushes: [], unsubscribed: [], likes: [], expired: [], refreshed: [], reviewed: [], folds: [] };
  client.on('state', (s) => seen.states.push(s));
  client.on('danmaku', (view, meta) => seen.danmaku.push({ view, meta }));
  client.on('welcome', (w) => seen.welcomes.push(w));
  client.on('error', (e) => seen.errors.push(e));
  client.on('close', (c) => seen.closes.push(c));
  client.on('subscribed', (s) => seen.subscribed.push(s));
  client.on('push', (payload, meta) => seen.pushes.push({ payload, meta }));
  client.on('unsubscribed', (u) => seen.unsubscribed.push(u));
  client.on('danmaku_likes', (data, meta) => seen.likes.push({ data, meta }));
  client.on('token_expired', (f) => seen.expired.push(f));
  client.on('refreshed', (r) => seen.refreshed.push(r));
  client.on('danmaku_reviewed', (data, meta) => seen.reviewed.push({ data, meta }));
  client.on('danmaku_fold', (data, meta) => seen.folds.push({ data, meta }));
  clients.push(client);
  return { client, rec, seen };
}

/** A gate a token provider can wait on, to keep a client away while a test acts. */
function gate() {
  let release = () => {};
  let wait = Promise.resolve();
  return {
    close() {
      wait = new Promise((r) => {
        release = r;
      });
    },
    open: () => release(),
    wait: () => wait,
  };
}

/** Posts as the admin over REST (no cooldown) and returns the stored view. */
async function seed(video, text, time = 1) {
  const r = await rest(`/api/videos/${video}/danmaku`, { method: 'POST', token: tokens.admin, body: { text, time } });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

const texts = (seen) => seen.danmaku.map((d) => d.view.text);

before(async () => {
  if (!existsSync(BIN)) throw new Error(`the server binary is missing at ${BIN}: build it (cargo build) or set DANMAKU_BIN`);
  if (typeof WebSocket !== 'function') throw new Error('no global WebSocket: run Node 20 with --experimental-websocket (tests/client/run.sh does)');
  base = await startServer();
  wsUrl = `${base.replace(/^http/, 'ws')}/ws`;
  tokens.admin = await mint('admin', 'admin');
});

after(async () => {
  for (const c of clients) c.close();
  await stopServer('SIGTERM');
  // The data goes; the server's log stays for a failure's post-mortem.
  rmSync(dataDir, { recursive: true, force: true });
  console.log(`server log: ${logPath}`);
});

// ---------------------------------------------------------------------------------------
// Scenarios

describe('DanmakuClient against the real server', () => {
  test('connect resolves with the welcome; a guest connects without a token; the app-level ping measures a round trip', async () => {
    const { client, seen } = makeClient({ token: await mint(`alice-${RUN}`, 'member') });
    const pongs = [];
    client.on('pong', (p) => pongs.push(p.rtt));
    const welcome = await client.connect();
    assert.equal(welcome.type, 'welcome');
    assert.equal(welcome.protocol, 1);
    assert.deepEqual(welcome.user, { sub: `alice-${RUN}`, name: `alice-${RUN}`, role: 'member' });
    assert.equal(client.state, 'open');
    assert.deepEqual(seen.states, ['connecting', 'open']);
    assert.deepEqual(client.user, welcome.user);
    await waitFor(() => pongs.length > 0, 'the first pong');
    assert.ok(Number.isInteger(client.rtt) && client.rtt >= 0);
    assert.equal(await client.connect(), welcome, 'connect() on an open client resolves with the same welcome');

    const guest = makeClient();
    const g = await guest.client.connect();
    assert.deepEqual(g.user, { sub: null, name: 'guest', role: 'guest' });
  });

  test('subscribe, then another client\'s comment arrives live once; the poster gets its ack instead of an echo', async () => {
    const video = `live-${RUN}`;
    const alice = makeClient({ token: await mint(`alice-live-${RUN}`, 'member') });
    const bob = makeClient({ token: await mint(`bob-live-${RUN}`, 'free') });
    await Promise.all([alice.client.connect(), bob.client.connect()]);
    const reply = await bob.client.subscribe(`video:${video}`);
    assert.equal(reply.ok, true);
    assert.equal(reply.channel, `video:${video}`);
    assert.equal(typeof reply.epoch, 'string');
    await alice.client.subscribe(`video:${video}`);
    assert.equal(await bob.client.subscribe(`video:${video}`), reply, 'subscribing again resolves with the same reply');

    const view = await alice.client.post(video, { text: '  first!\n  ', time: 12.5, mode: 'top', color: '#FF6699', size: 'large' });
    assert.equal(view.text, 'first!', 'the ack carries the comment as stored (normalised)');
    assert.equal(view.color, '#ff6699');
    assert.ok(Number.isSafeInteger(view.id));
    await waitFor(() => bob.seen.danmaku.length === 1, 'bob to receive alice\'s comment');
    const got = bob.seen.danmaku[0];
    assert.deepEqual(got.view, view);
    assert.equal(got.meta.channel, `video:${video}`);
    assert.equal(got.meta.replayed, false);
    assert.equal(got.meta.refetched, false);
    assert.ok(Number.isSafeInteger(got.meta.seq));

    // A sentinel from someone else: once alice has it, an echo of her own would have come first.
    const sentinel = await seed(video, 'sentinel');
    await waitFor(() => alice.seen.danmaku.some((d) => d.view.id === sentinel.id), 'alice to receive the sentinel');
    assert.deepEqual(texts(alice.seen), ['sentinel'], 'alice received an echo of her own comment');
    await waitFor(() => bob.seen.danmaku.length === 2, 'bob to receive the sentinel');
    assert.deepEqual(texts(bob.seen), ['first!', 'sentinel']);
  });

  test('refused posts reject with a typed DanmakuError and are never retried', async () => {
    const video = `refused-${RUN}`;
    const bob = makeClient({ token: await mint(`bob-refused-${RUN}`, 'free') });
    await bob.client.connect();
    const tooLong = await bob.client.post(video, { text: 'x'.repeat(31) }).then(() => null, (e) => e);
    assert.ok(tooLong instanceof DanmakuError, `expected a DanmakuError, got ${tooLong}`);
    assert.equal(tooLong.code, 'text_too_long');
    assert.equal(tooLong.status, undefined, 'a socket reply has no HTTP status');
    assert.match(tooLong.message, /30/);

    await bob.client.post(video, { text: 'plain' });
    const cooldown = await bob.client.post(video, { text: 'too soon' }).then(() => null, (e) => e);
    assert.equal(cooldown.code, 'cooldown');
    assert.ok(cooldown.retryAfter > 0 && cooldown.retryAfter <= 3, `retryAfter ${cooldown.retryAfter} s`);

    // A round trip after them: any retry would have been sent before this ping's reply came.
    await bob.client.ping();
    const posts = bob.rec.sent.filter((f) => f.op === 'danmaku').map((f) => f.text);
    assert.deepEqual(posts, ['x'.repeat(31), 'plain', 'too soon'], 'a refused post was sent again');
    const stored = await rest(`/api/videos/${video}/danmaku`);
    assert.deepEqual(stored.json.items.map((d) => d.text), ['plain']);

    const guest = makeClient();
    await guest.client.connect();
    const login = await guest.client.post(video, { text: 'hi' }).then(() => null, (e) => e);
    assert.equal(login.code, 'login_required');
  });

  test('REST: typed errors with status and retryAfter; post() falls back to REST without a socket; history after an id', async () => {
    const video = `rest-${RUN}`;
    const unauth = await request('GET', '/api/me', undefined, { baseUrl: base }).then(() => null, (e) => e);
    assert.ok(unauth instanceof DanmakuError);
    assert.equal(unauth.status, 401);
    assert.equal(typeof unauth.code, 'string');

    const { client, rec } = makeClient({ token: await mint(`carol-rest-${RUN}`, 'free') });
    assert.equal(client.state, 'closed');
    const view = await client.post(video, { text: 'over rest', time: 2 });
    assert.equal(view.text, 'over rest');
    assert.equal(rec.sockets.length, 0, 'post() opened a socket');
    const cooldown = await client.post(video, { text: 'again' }).then(() => null, (e) => e);
    assert.equal(cooldown.code, 'cooldown');
    assert.equal(cooldown.status, 429);
    assert.ok(cooldown.retryAfter >= 1, `retryAfter ${cooldown.retryAfter}`);

    const later = await seed(video, 'later', 0.5);
    const h = await client.history(video, { afterId: view.id });
    assert.deepEqual(h.items.map((d) => d.id), [later.id]);
    const me = await client.request('GET', '/api/me');
    assert.equal(me.sub, `carol-rest-${RUN}`);
  });

  test('server pushes to the user\'s automatic channel arrive as \'push\' with the payload unchanged', async () => {
    const sub = `dave-push-${RUN}`;
    const { client, seen } = makeClient({ token: await mint(sub, 'member') });
    await client.connect();
    const payload = { type: 1, orderId: 7, content: 'order 7 paid' };
    const r = await rest(`/api/push/users/${sub}`, { method: 'POST', token: tokens.admin, body: { event: 'order', payload } });
    assert.equal(r.status, 200, r.text);
    await waitFor(() => seen.pushes.length === 1, 'the push');
    assert.deepEqual(seen.pushes[0].payload, payload);
    assert.equal(seen.pushes[0].meta.channel, `user:${sub}`);
    assert.equal(seen.pushes[0].meta.type, 'order');
  });

  test('batched frames: a replay after a reconnect arrives as JSON arrays and is unpacked in order, marked replayed', async () => {
    const video = `batch-${RUN}`;
    const hold = gate();
    const token = await mint(`erin-batch-${RUN}`, 'member');
    const { client, rec, seen } = makeClient({ getToken: async () => { await hold.wait(); return token; } });
    await client.connect();
    await client.subscribe(`video:${video}`);
    const first = await seed(video, 'before');
    await waitFor(() => seen.danmaku.length === 1, 'the first comment');

    // Drop the socket and keep the client away while five comments are posted.
    hold.close();
    rec.sockets.at(-1).close();
    await waitFor(() => seen.closes.length === 1, 'the close');
    const missed = [];
    for (let i = 1; i <= 5; i += 1) missed.push(await seed(video, `missed ${i}`, i));
    hold.open();
    await waitFor(() => seen.danmaku.length === 6, 'the five missed comments', 10_000);

    const resumed = rec.sent.filter((f) => f.op === 'subscribe').at(-1);
    assert.ok(resumed.since && resumed.since.epoch === seen.subscribed[0].reply.epoch, `resubscribed without since: ${JSON.stringify(resumed)}`);
    assert.equal(seen.subscribed.at(-1).recovered, true);
    // Presence changes are numbered events too, so the replay may hold more than the comments.
    assert.ok(seen.subscribed.at(-1).reply.replayed >= 5, JSON.stringify(seen.subscribed.at(-1).reply));
    assert.deepEqual(seen.danmaku.map((d) => d.view.id), [first.id, ...missed.map((m) => m.id)]);
    assert.ok(seen.danmaku.slice(1).every((d) => d.meta.replayed && !d.meta.refetched), JSON.stringify(seen.danmaku.map((d) => d.meta)) + JSON.stringify(rec.raw.slice(-8)));
    const arrays = rec.raw.filter((m) => Array.isArray(m));
    assert.ok(arrays.some((a) => a.filter((f) => f.type === 'danmaku').length >= 2), 'no batch (JSON array) of comments arrived');
    const batched = arrays.flat().filter((f) => f.type === 'danmaku').map((f) => f.data.id);
    assert.deepEqual(batched, missed.map((m) => m.id), 'the unpacked events are not the replayed comments in order');
  });

  test('a server restart: the client reconnects and gets the comments posted while it was away exactly once, in order', async () => {
    const video = `restart-${RUN}`;
    const hold = gate();
    const token = await mint(`frank-restart-${RUN}`, 'member');
    // The refetch's answer is held until a live comment has arrived behind it.
    const holdRefetch = gate();
    const refetches = [];
    const slowFetch = async (url, init) => {
      const res = await fetch(url, init);
      if (/\/danmaku\?.*after_id=/.test(String(url))) {
        refetches.push(String(url));
        await holdRefetch.wait();
      }
      return res;
    };
    const { client, rec, seen } = makeClient({ fetch: slowFetch, getToken: async () => { await hold.wait(); return token; } });
    await client.connect();
    await client.subscribe(`video:${video}`);
    const c1 = await seed(video, 'c1', 5);
    const c2 = await seed(video, 'c2', 1);
    await waitFor(() => seen.danmaku.length === 2, 'c1 and c2 live');
    // Its own comment (acknowledged, never echoed) is in the history the refetch reads.
    const own = await client.post(video, { text: 'own', time: 3 });
    assert.ok(own.id > c2.id);

    hold.close();
    holdRefetch.close();
    const port = new URL(base).port;
    await stopServer('SIGKILL');
    await waitFor(() => seen.closes.length === 1, 'the client to see the socket close');
    assert.equal(await startServer(`127.0.0.1:${port}`), base);
    // While the client is away: two comments, at video times before and after the others.
    const c3 = await seed(video, 'c3', 0.5);
    const c4 = await seed(video, 'c4', 9);
    hold.open();
    await waitFor(() => refetches.length === 1, 'the refetch after the reconnect', 20_000);
    assert.match(refetches[0], new RegExp(`after_id=${c2.id}(&|$)`), 'the refetch does not start after the last id seen');
    // A live comment arrives while the refetch is answered: it must come after c3 and c4.
    const c5 = await seed(video, 'c5', 2);
    await waitFor(() => rec.raw.flat().some((f) => f.type === 'danmaku' && f.data.id === c5.id), 'c5 on the socket');
    assert.deepEqual(texts(seen), ['c1', 'c2'], 'a live comment overtook the refetch');
    holdRefetch.open();
    await waitFor(() => seen.danmaku.length >= 5, 'c3, c4 and c5 after the reconnect');

    assert.deepEqual(texts(seen), ['c1', 'c2', 'c3', 'c4', 'c5'], 'missing, repeated or out of order (or the own comment came back)');
    assert.deepEqual(seen.danmaku.map((d) => d.view.id), [c1.id, c2.id, c3.id, c4.id, c5.id]);
    // A restart loses the replay window (new epoch): the client refetched over REST.
    const resumed = rec.sent.filter((f) => f.op === 'subscribe').at(-1);
    assert.ok(resumed.since, 'the resubscribe carried no since');
    assert.equal(seen.subscribed.at(-1).recovered, false);
    assert.deepEqual(seen.danmaku.map((d) => d.meta.refetched), [false, false, true, true, false]);
    // A sentinel after everything: nothing else (a late duplicate) was on its way.
    const c6 = await seed(video, 'c6', 4);
    await waitFor(() => seen.danmaku.some((d) => d.view.id === c6.id), 'c6 live');
    assert.deepEqual(texts(seen), ['c1', 'c2', 'c3', 'c4', 'c5', 'c6']);
    assert.equal(client.state, 'open');
    assert.ok(seen.states.includes('reconnecting'));
    assert.equal(seen.welcomes.length, 2);
  });

  test('token refresh: a short token is re-minted before exp and sent on the live socket, which outlives the first exp', async () => {
    const sub = `grace-refresh-${RUN}`;
    const minted = [];
    const { client, rec, seen } = makeClient({
      refreshLeadMs: 30_000,
      getToken: async () => {
        const t = await mintShort(sub, 'member', '6s');
        minted.push(t);
        return t;
      },
    });
    const welcome = await client.connect();
    const firstExp = expOf(minted[0]);
    await waitFor(() => seen.refreshed.length >= 1, 'the automatic refresh', 10_000);
    assert.equal(seen.refreshed[0].auto, true);
    assert.equal(seen.refreshed[0].user.sub, sub);
    const refresh = rec.sent.find((f) => f.op === 'refresh');
    assert.equal(refresh.token, minted[1], 'the refresh op did not carry the new token');
    assert.ok(Date.now() < firstExp * 1000, 'the refresh came after exp');

    // Past the first token's exp and its grace: the same socket still answers.
    await waitFor(() => Date.now() > (firstExp + GRACE_S) * 1000 + 1500, 'the first token\'s deadline to pass', 15_000);
    await client.ping();
    assert.equal(rec.sockets.length, 1, 'the client had to reconnect');
    assert.equal(seen.welcomes.length, 1);
    assert.equal(seen.welcomes[0], welcome);
    assert.deepEqual(seen.expired, [], 'the server said the token expired');
  });

  test('token expiry control: a static short token gets token_expired, the 4001 close, and the client stops on the refused token', async () => {
    const { client, seen } = makeClient({ token: await mintShort(`grace-static-${RUN}`, 'member', '2s') });
    await client.connect();
    await waitFor(() => seen.expired.length === 1, 'token_expired', 10_000);
    assert.equal(seen.expired[0].grace_s, GRACE_S);
    await waitFor(() => seen.closes.some((c) => c.code === 4001), 'the 4001 close', 10_000);
    await waitFor(() => client.state === 'closed', 'the client to stop', 15_000);
    const err = seen.errors.at(-1);
    assert.ok(err instanceof DanmakuError);
    assert.equal(err.status, 401);
    assert.equal(err.code, 'token_expired');
  });

  test('a refused token stops the client unless the provider renews it', async () => {
    const good = await mint(`gina-refused-${RUN}`, 'member');
    const forged = `${good.slice(0, -4)}AAAA`;
    const stuck = makeClient({ token: forged });
    const err = await stuck.client.connect().then(() => null, (e) => e);
    assert.ok(err instanceof DanmakuError);
    assert.equal(err.status, 401);
    assert.equal(stuck.client.state, 'closed');
    assert.equal(stuck.rec.sockets.length, 1, 'the client retried a refused token');

    const reasons = [];
    const renewed = makeClient({ getToken: async ({ reason }) => { reasons.push(reason); return reasons.includes('refused') ? good : forged; } });
    const w = await renewed.client.connect();
    assert.equal(w.user.sub, `gina-refused-${RUN}`);
    assert.deepEqual(reasons.slice(0, 2), ['connect', 'refused']);
  });

  test('refresh(token) to a lower role: the server drops a member-tier channel and the client reports \'unsubscribed\'', async () => {
    const sub = `hank-downgrade-${RUN}`;
    const channel = `members-news-${RUN}`;
    const r = await rest(`/api/channels/${channel}`, { method: 'PUT', token: tokens.admin, body: { tier: 'member' } });
    assert.ok(r.status === 200 || r.status === 201, r.text);
    const { client, seen } = makeClient({ token: await mint(sub, 'member') });
    await client.connect();
    await client.subscribe(channel);
    const user = await client.refresh(await mint(sub, 'free'));
    assert.equal(user.role, 'free');
    assert.equal(seen.unsubscribed.length, 1, 'the unsubscribed frame comes before the refresh reply');
    assert.equal(seen.unsubscribed[0].channel, channel);
    assert.equal(seen.unsubscribed[0].error.code, 'forbidden');
    const other = await client.refresh(await mint(`someone-else-${RUN}`, 'free')).then(() => null, (e) => e);
    assert.equal(other.code, 'sub_mismatch');
    assert.equal(client.user.role, 'free');
  });

  test('pending calls reject with network_error when the socket drops, and are not sent again after the reconnect', async () => {
    const video = `drop-${RUN}`;
    const { client, rec, seen } = makeClient({ token: await mint(`ivan-drop-${RUN}`, 'member') });
    await client.connect();
    // The network dies just as the post goes out: the frame never reaches the server.
    rec.intercept = (frame, socket) => {
      if (frame.op !== 'danmaku') return false;
      rec.intercept = null;
      socket.close();
      return true;
    };
    const err = await client.post(video, { text: 'lost in transit' }).then(() => null, (e) => e);
    assert.ok(err instanceof DanmakuError);
    assert.equal(err.code, 'network_error');
    await waitFor(() => seen.welcomes.length === 2, 'the reconnect');
    await client.ping();
    assert.equal(rec.sent.filter((f) => f.op === 'danmaku').length, 1, 'the post was sent again');
    const stored = await rest(`/api/videos/${video}/danmaku`);
    assert.deepEqual(stored.json.items, []);
    const notConnected = makeClient();
    const e2 = await notConnected.client.ping().then(() => null, (e) => e);
    assert.equal(e2.code, 'network_error');
  });

  test('close() stops reconnecting (a control client dropped at the same time comes back)', async () => {
    // Both retry within 1 ms: once the control has reconnected, the other one's retry is past due.
    const closing = makeClient({ token: await mint(`jill-close-${RUN}`, 'member'), reconnect: { minMs: 1, maxMs: 1 } });
    const control = makeClient({ token: await mint(`jack-close-${RUN}`, 'member'), reconnect: { minMs: 1, maxMs: 1 } });
    await Promise.all([closing.client.connect(), control.client.connect()]);
    // Closed while it waits to retry, with a subscription asked for in the meantime.
    let pending = null;
    closing.client.on('state', (s) => {
      if (s !== 'reconnecting' || pending) return;
      pending = closing.client.subscribe(`video:close-${RUN}`).then(() => null, (e) => e);
      closing.client.close();
    });
    closing.rec.sockets[0].close();
    control.rec.sockets[0].close();
    await waitFor(() => control.seen.welcomes.length === 2, 'the control client to reconnect');
    await waitFor(() => closing.client.state === 'closed', 'the closed client to settle');
    assert.equal(closing.rec.sockets.length, 1, 'the closed client opened another socket');
    assert.deepEqual(closing.seen.states, ['connecting', 'open', 'reconnecting', 'closed']);
    const err = await pending;
    assert.equal(err && err.code, 'closed');
    const c = await closing.client.connect().then(() => null, (e) => e);
    assert.equal(c, null, 'connect() after close() should open again');
    assert.equal(closing.client.state, 'open');
  });

  test('the server serves the module at /lib/danmaku-client.js, byte for byte', async () => {
    const res = await fetch(`${base}/lib/danmaku-client.js`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /javascript/);
    assert.equal(await res.text(), readFileSync(join(ROOT, 'static/lib/danmaku-client.js'), 'utf8'));
  });
});

// ---------------------------------------------------------------------------------------
// Likes and heatmap (issue 14).

describe('engagement endpoints (likes, heatmap)', () => {
  test('engagement: like/unlike over REST, danmaku_likes live, heatmap counts, typed errors', async () => {
    const video = `likes-${RUN}`;
    const watcher = makeClient({ token: await mint(`kim-likes-${RUN}`, 'member') });
    const liker = makeClient({ token: await mint(`lee-likes-${RUN}`, 'free') });
    await Promise.all([watcher.client.connect(), liker.client.connect()]);
    await watcher.client.subscribe(`video:${video}`);
    const c = await seed(video, 'like me', 3);
    await waitFor(() => watcher.seen.danmaku.length === 1, 'the comment');
    assert.equal(watcher.seen.danmaku[0].view.likes, 0);

    assert.deepEqual(await liker.client.like(c.id), { id: c.id, likes: 1, liked: true });
    assert.deepEqual(await liker.client.like(c.id), { id: c.id, likes: 1, liked: true }, 'like is idempotent');
    await waitFor(() => watcher.seen.likes.some((l) => l.data.likes === 1), 'danmaku_likes with 1');
    assert.deepEqual(watcher.seen.likes.at(-1).data, { id: c.id, video, likes: 1 });
    const mine = await liker.client.history(video);
    assert.equal(mine.items[0].liked, true);
    assert.deepEqual(await liker.client.unlike(c.id), { id: c.id, likes: 0, liked: false });
    await waitFor(() => watcher.seen.likes.at(-1).data.likes === 0, 'danmaku_likes with 0');

    const guest = makeClient();
    const forbidden = await guest.client.like(c.id).then(() => null, (e) => e);
    assert.ok([401, 403].includes(forbidden.status), `a guest's like: ${forbidden.status} ${forbidden.code}`);
    const unknown = await liker.client.like(987654321).then(() => null, (e) => e);
    assert.equal(unknown.status, 404);
    assert.equal(unknown.code, 'unknown_danmaku');

    await seed(video, 'at 7', 7);
    await seed(video, 'at 7.5', 7.5);
    const h = await liker.client.heatmap(video, { buckets: 10, duration: 10 });
    assert.equal(h.video, video);
    assert.equal(h.counts.length, 10);
    assert.equal(h.total, 3);
    assert.equal(h.counts[3], 1);
    assert.equal(h.counts[7], 2);
    assert.deepEqual(h.peaks[0], { time: 7.5, count: 2 });
    const bad = await liker.client.heatmap(video, { buckets: 0 }).then(() => null, (e) => e);
    assert.equal(bad.status, 422);
    assert.equal(bad.code, 'invalid_buckets');
  });

  test('exportXml: the bilibili XML as text, read with the client\'s token (a member gets members-only comments, a guest does not); refusals typed', async () => {
    const video = `xml-${RUN}`;
    const secret = `members xml ${RUN}`;
    await seed(video, `everyone xml ${RUN}`, 1);
    const r = await rest(`/api/videos/${video}/danmaku`, { method: 'POST', token: tokens.admin, body: { text: secret, time: 2, audience: 'members' } });
    assert.equal(r.status, 201, r.text);
    const memberToken = await mint(`mia-xml-${RUN}`, 'member');
    const member = makeClient({ token: memberToken });
    const guest = makeClient();
    const forMember = await member.client.exportXml(video);
    assert.equal(typeof forMember, 'string');
    assert.match(forMember, /^<\?xml/);
    assert.ok(forMember.includes(secret), 'the member\'s XML lacks the members-only comment');
    assert.equal(forMember, (await rest(`/api/videos/${video}/danmaku.xml`, { token: memberToken })).text, 'the same bytes as a plain GET with that token');
    const forGuest = await guest.client.exportXml(video);
    assert.ok(forGuest.includes(`everyone xml ${RUN}`));
    assert.ok(!forGuest.includes(secret), 'a guest\'s XML has the members-only comment');
    const invalid = await guest.client.exportXml('bad id!').then(() => null, (e) => e);
    assert.ok(invalid && invalid.status >= 400 && invalid.status < 500, `a bad video id: ${invalid && invalid.status}`);
    assert.equal(typeof invalid.code, 'string');
  });
});

describe('review (held comments)', () => {
  test('a held post resolves with state held; admins get the marked copy, the author and admins danmaku_reviewed, the audience the comment after approval', async () => {
    const video = `held-${RUN}`;
    const made = await rest(`/api/videos/${video}`, { method: 'PUT', token: tokens.admin, body: { title: 'held', tier: 'free' } });
    assert.ok(made.status === 200 || made.status === 201, made.text);
    const hold = await rest(`/api/videos/${video}/hold`, { method: 'PUT', token: tokens.admin, body: { roles: ['free'] } });
    assert.equal(hold.status, 200, hold.text);
    const author = makeClient({ token: await mint(`hal-held-${RUN}`, 'free') });
    const viewer = makeClient({ token: await mint(`vic-held-${RUN}`, 'member') });
    const admin = makeClient({ token: tokens.admin });
    await Promise.all([author.client.connect(), viewer.client.connect(), admin.client.connect()]);
    await Promise.all([author, viewer, admin].map((c) => c.client.subscribe(`video:${video}`)));

    const view = await author.client.post(video, { text: `wait for me ${RUN}`, time: 2 });
    assert.equal(view.state, 'held', 'the reply says the comment waits for review');
    await waitFor(() => admin.seen.danmaku.some((d) => d.view.id === view.id), 'the admin\'s marked copy');
    assert.equal(admin.seen.danmaku.find((d) => d.view.id === view.id).view.state, 'held');

    const r = await rest(`/api/danmaku/${view.id}/approve`, { method: 'POST', token: tokens.admin });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { id: view.id, state: 'visible' });
    await waitFor(() => viewer.seen.danmaku.some((d) => d.view.id === view.id), 'the approved comment for the audience');
    assert.equal(viewer.seen.danmaku.find((d) => d.view.id === view.id).view.state, undefined);
    for (const c of [author, admin]) {
      await waitFor(() => c.seen.reviewed.length === 1, 'danmaku_reviewed');
      assert.deepEqual(c.seen.reviewed[0].data, { id: view.id, video, state: 'visible' });
      assert.equal(c.seen.reviewed[0].meta.channel, `video:${video}`);
    }
    assert.deepEqual(viewer.seen.reviewed, [], 'the audience is not told about the review');
    assert.ok(!author.seen.danmaku.some((d) => d.view.id === view.id), 'the author got its own comment again');
  });
});

describe('spam waves and reports', () => {
  test('a wave of the same text from free users: one danmaku, then danmaku_fold with the count on the first; the copies are not published', async () => {
    const video = `fold-${RUN}`;
    const watcher = makeClient({ token: await mint(`wes-fold-${RUN}`, 'member') });
    const posters = await Promise.all(['a', 'b', 'c'].map(async (n) => makeClient({ token: await mint(`${n}-fold-${RUN}`, 'free') })));
    await Promise.all([watcher, ...posters].map((c) => c.client.connect()));
    await watcher.client.subscribe(`video:${video}`);
    const waves = ['2333', '23333', '\uff12\uff13\uff13\uff13\uff13'];
    const views = [];
    for (const [i, p] of posters.entries()) views.push(await p.client.post(video, { text: waves[i], time: 1 + i }));
    const first = views[0];
    assert.ok(views.every((v) => Number.isSafeInteger(v.id)), 'every copy is stored and acknowledged');
    await waitFor(() => watcher.seen.folds.some((f) => f.data.count >= 3), 'danmaku_fold with a count of 3');
    const fold = watcher.seen.folds.at(-1);
    assert.deepEqual(fold.data, { id: first.id, video, count: 3 });
    assert.equal(fold.meta.channel, `video:${video}`);
    // A control comment after the wave proves the copies would have arrived by now.
    await seed(video, `control ${RUN}`, 9);
    await waitFor(() => texts(watcher.seen).includes(`control ${RUN}`), 'the control comment');
    assert.deepEqual(watcher.seen.danmaku.map((d) => d.view.id), [first.id, watcher.seen.danmaku.at(-1).view.id], 'only the first of the wave was published');
  });

  test('report(): {id, new}, new false the second time; typed refusals (own comment, unknown, guest)', async () => {
    const video = `report-${RUN}`;
    const c = await seed(video, `report me ${RUN}`, 2);
    const reporter = makeClient({ token: await mint(`rita-report-${RUN}`, 'free') });
    assert.deepEqual(await reporter.client.report(c.id, { reason: 'spam' }), { id: c.id, new: true });
    assert.deepEqual(await reporter.client.report(c.id), { id: c.id, new: false });
    const own = await reporter.client.post(video, { text: `mine ${RUN}`, time: 3 });
    const refused = await reporter.client.report(own.id).then(() => null, (e) => e);
    assert.equal(refused.status, 403);
    assert.equal(refused.code, 'own_comment');
    const unknown = await reporter.client.report(987654321).then(() => null, (e) => e);
    assert.equal(unknown.status, 404);
    assert.equal(unknown.code, 'unknown_danmaku');
    const guest = await makeClient().client.report(c.id).then(() => null, (e) => e);
    assert.equal(guest.status, 401);
  });

  test('a comment hidden by reports goes out as danmaku_deleted; approved, it arrives again as danmaku (its id is not a duplicate)', async () => {
    const video = `reported-${RUN}`;
    const watcher = makeClient({ token: await mint(`wil-reported-${RUN}`, 'member') });
    const deleted = [];
    watcher.client.on('danmaku_deleted', (data) => deleted.push(data));
    await watcher.client.connect();
    await watcher.client.subscribe(`video:${video}`);
    const author = makeClient({ token: await mint(`amy-reported-${RUN}`, 'free') });
    const c = await author.client.post(video, { text: `reported ${RUN}`, time: 1 });
    await waitFor(() => watcher.seen.danmaku.some((d) => d.view.id === c.id), 'the comment');
    for (const n of ['a', 'b', 'c']) {
      const reporter = makeClient({ token: await mint(`${n}-reporter-${RUN}`, 'free') });
      assert.deepEqual(await reporter.client.report(c.id, { reason: `no ${n}` }), { id: c.id, new: true });
    }
    await waitFor(() => deleted.some((d) => d.id === c.id), 'danmaku_deleted at the threshold');
    const r = await rest(`/api/danmaku/${c.id}/approve`, { method: 'POST', token: tokens.admin });
    assert.equal(r.status, 200, r.text);
    await waitFor(() => watcher.seen.danmaku.filter((d) => d.view.id === c.id).length === 2, 'the approved comment again');
    const again = watcher.seen.danmaku.filter((d) => d.view.id === c.id)[1];
    assert.equal(again.meta.duplicate, false);
    assert.equal(again.view.state, undefined);
  });
});
