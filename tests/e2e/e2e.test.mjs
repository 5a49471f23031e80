// End-to-end tests of the danmaku pages in headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core), against the real server binary.
//
// The suite starts `target/debug/danmaku serve --demo --bind 127.0.0.1:0` on a fresh data
// directory, reads the bound address from its log, and drives the video page, the admin
// console and Swagger UI the way people use them. It never sleeps to wait for something:
// it waits for DOM conditions. Each scenario saves screenshots under target/e2e/.
//
// Run: tests/e2e/run.sh (installs what is missing, builds, runs), or, with the binary
// built and node_modules installed: cd tests/e2e && npm test

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = process.env.DANMAKU_BIN || join(ROOT, 'target/debug/danmaku');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const SHOTS = join(ROOT, 'target/e2e');
/** A unique tag per run, so texts never collide with anything else on the page. */
const RUN = Date.now().toString(36);
const HOSTILE = '<img src=x onerror=alert(1)>';

let server;
let base;
let context;
let dataDir;
let profileDir;
const tokens = {};
const pages = {};
const dialogs = [];
let shotCount = 0;

// ---------------------------------------------------------------------------------------
// Harness

/** Starts the server binary and resolves with its base URL, read from the log. */
function startServer(bind = '127.0.0.1:0') {
  dataDir = dataDir || mkdtempSync(join(tmpdir(), 'danmaku-e2e-data-'));
  const log = createWriteStream(join(SHOTS, 'server.log'), { flags: 'a' });
  const child = spawn(BIN, ['serve', '--demo', '--bind', bind, '--data-dir', dataDir], {
    env: { ...process.env, NO_COLOR: '1', DANMAKU_LOG: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.pipe(log);
  return new Promise((resolveAddr, reject) => {
    let buffered = '';
    const timer = setTimeout(() => reject(new Error(`the server did not log "listening" within 30 s:\n${buffered}`)), 30_000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the server exited early (code ${code}, signal ${signal}):\n${buffered}`));
    });
    child.stderr.on('data', (chunk) => {
      log.write(chunk);
      if (buffered === null) return;
      // Strip ANSI colours in case the log is coloured anyway.
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

async function mint(sub, role) {
  const r = await rest('/api/demo/token', { method: 'POST', body: { sub, role, name: sub } });
  assert.equal(r.status, 200, r.text);
  return r.json.token;
}

/** Records, from the first script on, every comment and toast a page ever rendered. */
function recorder() {
  const seen = { danmaku: [], toasts: [] };
  window.__seen = seen;
  const visit = (n) => {
    if (n.nodeType !== 1) return;
    if (n.classList.contains('danmaku')) {
      seen.danmaku.push({
        text: n.textContent,
        id: n.dataset.id,
        source: n.dataset.source,
        mode: n.dataset.mode,
        at: Date.now(),
      });
    } else if (n.classList.contains('toast')) {
      seen.toasts.push({ text: n.textContent, channel: n.dataset.channel, at: Date.now() });
    }
  };
  new MutationObserver((records) => {
    for (const r of records) for (const n of r.addedNodes) visit(n);
  }).observe(document, { childList: true, subtree: true });
}

/** Console messages where a page broke its Content-Security-Policy (checked last). */
const cspViolations = [];

async function newPage(name) {
  const page = await context.newPage();
  page.on('dialog', (d) => {
    dialogs.push({ page: name, type: d.type(), message: d.message() });
    d.dismiss().catch(() => {});
  });
  page.on('pageerror', (e) => {
    console.error(`[${name}] page error: ${e.message}`);
  });
  page.on('console', (m) => {
    if (/Content Security Policy/.test(m.text())) cspViolations.push(`[${name}] ${m.text()}`);
    if (m.type() === 'error' && !/status of (403|404)/.test(m.text())) console.error(`[${name}] console: ${m.text()}`);
  });
  return page;
}

/** Opens the video page and signs in with a demo button (or stays a guest). */
async function openVideo(name, user, path = '/watch/demo') {
  const page = await newPage(name);
  await page.goto(base + path);
  if (user !== 'guest') await page.click(`#login-${user}`);
  await waitSignedIn(page, user);
  pages[name] = page;
  return page;
}

async function waitSignedIn(page, user) {
  const role = { alice: 'member', bob: 'free', admin: 'admin', guest: 'guest' }[user];
  await page.waitForFunction((r) => {
    const s = window.danmakuDemo && window.danmakuDemo.state;
    return s && s.welcomed && s.user && s.user.role === r
      && document.querySelector('#room-status').dataset.status === 'joined'
      && s.historyFor === `${s.user.sub ?? ''}|${s.user.role}`;
  }, role);
}

async function shot(page, name) {
  shotCount += 1;
  await page.mouse.move(0, 0); // no hover effects in the picture
  const file = join(SHOTS, `${String(shotCount).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

/** Waits until the page's overlay shows a comment with exactly this text. */
function waitComment(page, text, timeout = 5000) {
  return page.waitForFunction(
    (t) => [...document.querySelectorAll('#overlay .danmaku')].some((n) => n.textContent === t),
    text,
    { timeout },
  );
}

/** Waits until a comment has fully entered the screen (for readable screenshots). */
function waitOnScreen(page, text) {
  return page.waitForFunction((t) => {
    const n = [...document.querySelectorAll('#overlay .danmaku')].find((x) => x.textContent === t);
    if (!n) return false;
    const o = document.querySelector('#overlay').getBoundingClientRect();
    return n.getBoundingClientRect().right <= o.right - 24;
  }, text, { timeout: 10_000 });
}

/** How many times the page ever drew a comment with this text. */
function timesDrawn(page, text) {
  return page.evaluate((t) => window.__seen.danmaku.filter((d) => d.text === t).length, text);
}

/** When (Date.now()) the page first drew a comment with this text, or null. */
function firstDrawnAt(page, text) {
  return page.evaluate((t) => {
    const hit = window.__seen.danmaku.find((d) => d.text === t);
    return hit ? hit.at : null;
  }, text);
}

/**
 * Posts through the send box like a person: picks the options, types, clicks Send, and
 * waits for the outcome. A cooldown refusal is waited out (the countdown clears the
 * error) and retried. Resolves with {ok, code, id, clickedAt} (Date.now() at the click).
 */
async function postUI(page, { text, mode = 'scroll', color = '#ffffff', audience = 'everyone', size = 'normal' }, retryCooldown = true) {
  const styled = await page.evaluate(() => !document.querySelector('#dm-audience').disabled);
  if (styled) {
    await page.check(`input[name="dm-mode"][value="${mode}"]`);
    await page.check(`input[name="dm-swatch"][value="${color}"]`);
    await page.selectOption('#dm-audience', audience);
  }
  await page.selectOption('#dm-size', size);
  await page.fill('#dm-text', text);
  for (;;) {
    await page.waitForFunction(() => !document.querySelector('#dm-send').disabled);
    const before = await page.evaluate(() => window.danmakuDemo.state.posts);
    const clickedAt = Date.now();
    await page.click('#dm-send');
    await page.waitForFunction((n) => window.danmakuDemo.state.posts > n, before);
    const result = await page.evaluate(() => window.danmakuDemo.state.lastPost);
    if (result.ok || result.code !== 'cooldown' || !retryCooldown) return { ...result, clickedAt };
    // The countdown hides the error when the wait is over.
    await page.waitForFunction(() => document.querySelector('#dm-error').hidden, null, { timeout: 10_000 });
  }
}

// ---------------------------------------------------------------------------------------
// Setup

before(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is missing at ${CHROMIUM}. Install Debian's chromium (apt-get install -y chromium), or run tests/e2e/run.sh, which does.`);
  }
  if (!existsSync(BIN)) {
    throw new Error(`The server binary is missing at ${BIN}: run cargo build first (tests/e2e/run.sh does).`);
  }
  // tests/e2e/run.sh empties SHOTS once for all the suite's files.
  mkdirSync(SHOTS, { recursive: true });
  base = await startServer();
  profileDir = mkdtempSync(join(tmpdir(), 'danmaku-e2e-chromium-'));
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 860 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  await context.addInitScript(recorder);

  tokens.admin = await mint('admin', 'admin');
  tokens.carol = await mint('carol', 'member');
  // The catalog: a free demo video and a members-only premiere.
  for (const [id, title, tier] of [['demo', 'Demo clip', 'free'], ['premiere', 'Members premiere', 'member']]) {
    const r = await rest(`/api/videos/${id}`, { method: 'PUT', token: tokens.admin, body: { title, tier } });
    assert.ok(r.status === 201 || r.status === 200, r.text);
  }
  // A few stored comments in the first seconds, replayed when the players start.
  const seeds = [
    [0.4, 'first!', 'scroll', '#ffffff', 'normal'],
    [0.9, 'here it comes!!', 'scroll', '#ffd302', 'large'],
    [1.3, '2333333', 'scroll', '#ffffff', 'small'],
    [1.8, 'the clock is ticking', 'scroll', '#89d5ff', 'normal'],
    [2.4, 'hello from the history API', 'scroll', '#ffffff', 'normal'],
    [2.9, 'subtitles live at the bottom', 'bottom', '#00cd00', 'normal'],
    [3.3, 'nice', 'scroll', '#ff7204', 'normal'],
  ];
  for (const [time, text, mode, color, size] of seeds) {
    const r = await rest('/api/videos/demo/danmaku', { method: 'POST', token: tokens.admin, body: { time, text, mode, color, size } });
    assert.equal(r.status, 201, r.text);
  }
});

after(async () => {
  if (context) await context.close().catch(() => {});
  if (server) {
    server.kill('SIGTERM');
    await new Promise((r) => {
      server.once('exit', r);
      setTimeout(r, 5000);
    });
  }
  for (const dir of [dataDir, profileDir]) if (dir) rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------
// Scenarios

describe('danmaku in the browser', () => {
  test('1. member and free: a red top comment reaches both pages at once; a members-only one never reaches bob', async () => {
    const alice = await openVideo('alice', 'alice');
    const bob = await openVideo('bob', 'bob');
    // Both players run, so the replay path is live while comments arrive.
    for (const p of [alice, bob]) await p.evaluate(() => document.querySelector('video').play());
    await alice.waitForFunction(() => document.querySelector('#video').currentTime > 0.3);
    // Presence: both pages count two viewers on video:demo.
    for (const p of [alice, bob]) await p.waitForFunction(() => document.querySelector('#viewers').dataset.count === '2', null, { timeout: 10_000 });

    const red = `red top from alice ${RUN}`;
    const r = await postUI(alice, { text: red, mode: 'top', color: '#fe0302', size: 'large' });
    assert.ok(r.ok, `alice's post was refused: ${r.code}`);
    await Promise.all([waitComment(alice, red), waitComment(bob, red)]);
    for (const [name, p] of [['alice', alice], ['bob', bob]]) {
      const at = await firstDrawnAt(p, red);
      assert.ok(at - r.clickedAt < 1000, `${name} rendered the comment ${at - r.clickedAt} ms after the click (limit 1000 ms)`);
    }
    const style = await bob.evaluate((t) => {
      const n = [...document.querySelectorAll('#overlay .danmaku')].find((x) => x.textContent === t);
      return { mode: n.dataset.mode, color: getComputedStyle(n).color, size: getComputedStyle(n).fontSize, source: n.dataset.source };
    }, red);
    assert.deepEqual(style, { mode: 'top', color: 'rgb(254, 3, 2)', size: '32px', source: 'live' });
    await shot(bob, 'member-and-free-red-top-on-bob');
    assert.equal(await alice.evaluate((t) => [...document.querySelectorAll('#overlay .danmaku')].filter((x) => x.textContent === t)[0].dataset.source, red), 'own');

    const secret = `members only ${RUN}`;
    const m = await postUI(alice, { text: secret, audience: 'members', color: '#ffd302' });
    assert.ok(m.ok, `alice's members-only post was refused: ${m.code}`);
    await waitComment(alice, secret);
    // A sentinel posted after it, by someone else: once bob has drawn the sentinel, the
    // members-only comment (published earlier on the same room) would have arrived first.
    const sentinel = `sentinel after members-only ${RUN}`;
    const s = await rest('/api/videos/demo/danmaku', { method: 'POST', token: tokens.admin, body: { text: sentinel, time: 1 } });
    assert.equal(s.status, 201, s.text);
    await Promise.all([waitComment(bob, sentinel), waitComment(alice, sentinel)]);
    assert.equal(await timesDrawn(bob, secret), 0, 'bob (free) rendered a members-only comment');
    assert.equal(await bob.locator('#overlay .danmaku', { hasText: secret }).count(), 0);
    await Promise.all([waitOnScreen(alice, secret), waitOnScreen(bob, sentinel)]);
    await shot(alice, 'member-and-free-alice');
    await shot(bob, 'member-and-free-bob');
    // In alice's page her comments were drawn once each, though her video kept playing
    // past the time they were posted at.
    await alice.waitForFunction(() => document.querySelector('#video').currentTime > 2);
    assert.equal(await timesDrawn(alice, red), 1, 'alice saw her own comment more than once');
    assert.equal(await timesDrawn(alice, secret), 1);
  });

  test('2. free user limits: styling is locked in the UI and refused by the server; a plain comment goes through', async () => {
    const alice = pages.alice;
    const bob = pages.bob;
    // The controls are locked, with an upgrade hint.
    for (const sel of ['input[name="dm-mode"][value="top"]', 'input[name="dm-swatch"][value="#fe0302"]', '#dm-color', '#dm-audience']) {
      assert.equal(await bob.isDisabled(sel), true, `${sel} is enabled for a free user`);
    }
    assert.equal(await bob.isEnabled('#dm-text'), true);
    const hint = bob.locator('#dm-hint');
    assert.equal(await hint.getAttribute('data-kind'), 'free');
    assert.match(await hint.textContent(), /Upgrade to member/);
    // Clicking the locked red swatch changes nothing: the form still posts white.
    await bob.click('input[name="dm-swatch"][value="#fe0302"]', { force: true });
    assert.equal(await bob.inputValue('#dm-color'), '#ffffff');
    // The server would refuse it anyway: 403 member_style (REST) ...
    const bobToken = await bob.evaluate(() => window.danmakuDemo.state.token);
    const refused = await rest('/api/videos/demo/danmaku', { method: 'POST', token: bobToken, body: { text: 'red from bob', color: '#ff0000' } });
    assert.equal(refused.status, 403, refused.text);
    assert.equal(refused.json.code, 'member_style');
    // ... and over the socket, shown inline when something sends it anyway.
    const forced = await bob.evaluate(() => window.danmakuDemo.post({ text: 'forced red', time: 0, color: '#ff0000' }));
    assert.equal(forced.ok, false);
    assert.equal(forced.error.code, 'member_style');
    await bob.waitForSelector('#dm-error[data-code="member_style"]:not([hidden])');
    await shot(bob, 'free-user-locked-controls');

    // A plain comment goes through, and alice sees it: white, scrolling.
    const plain = `plain from bob ${RUN}`;
    const r = await postUI(bob, { text: plain });
    assert.ok(r.ok, `bob's plain post was refused: ${r.code}`);
    // Posting again at once: the cooldown shows inline with a live countdown.
    const cool = await postUI(bob, { text: 'too soon' }, false);
    assert.equal(cool.code, 'cooldown');
    const first = await bob.textContent('#dm-error');
    assert.match(first, /post again in \d+\.\d s/);
    assert.equal(await bob.isDisabled('#dm-send'), true);
    await bob.waitForFunction((t) => {
      const n = document.querySelector('#dm-error');
      return !n.hidden && n.textContent !== t && /post again in/.test(n.textContent);
    }, first);
    await shot(bob, 'free-user-cooldown');
    await bob.waitForFunction(() => document.querySelector('#dm-error').hidden, null, { timeout: 10_000 });

    await waitComment(alice, plain);
    assert.equal(await timesDrawn(alice, plain), 1);
    await waitOnScreen(alice, plain);
    await shot(alice, 'free-user-plain-comment-on-alice');
    assert.deepEqual(await alice.evaluate((t) => {
      const n = [...document.querySelectorAll('#overlay .danmaku')].find((x) => x.textContent === t);
      return { mode: n.dataset.mode, color: getComputedStyle(n).color };
    }, plain), { mode: 'scroll', color: 'rgb(255, 255, 255)' });

    // Too long (31 characters) shows inline too.
    const long = await postUI(bob, { text: 'x'.repeat(31) }, false);
    assert.equal(long.code, 'text_too_long');
    await bob.waitForSelector('#dm-error[data-code="text_too_long"]:not([hidden])');

    // The video list: the members-only premiere is locked for bob and open for alice.
    const lockedFor = async (p) => p.getAttribute('#video-list [data-video="premiere"]', 'data-locked');
    assert.equal(await lockedFor(bob), 'true');
    assert.equal(await bob.locator('#video-list [data-video="premiere"] .lock:not(.open)').count(), 1);
    assert.equal(await lockedFor(alice), 'false');
    assert.equal(await bob.getAttribute('#video-list [data-video="demo"]', 'data-locked'), 'false');
    // Opening it as bob shows the member lock instead of the player.
    const bobPremiere = await openVideoLocked('bob-premiere', bob);
    await shot(bobPremiere, 'free-user-members-only-video');
    await bobPremiere.close();
  });

  test('3. targeted pushes from the admin console: a toast for bob only, then for members only; an order card', async () => {
    const alice = pages.alice;
    const bob = pages.bob;
    const admin = await newPage('admin');
    pages.admin = admin;
    await admin.goto(`${base}/admin`);
    await admin.click('#login-admin');
    await admin.waitForFunction(() => document.querySelector('#role-badge').dataset.role === 'admin');

    const push = async ({ kind, target, payload, event = 'push' }) => {
      await admin.selectOption('#push-kind', kind);
      if (kind === 'role') await admin.selectOption('#push-role', target);
      else if (target) await admin.fill('#push-target', target);
      await admin.fill('#push-event', event);
      await admin.fill('#push-payload', JSON.stringify(payload, null, 2));
      const before = await admin.evaluate(() => document.querySelectorAll('#push-history tbody tr').length);
      await admin.click('#push-send');
      await admin.waitForFunction((n) => document.querySelectorAll('#push-history tbody tr').length > n
        || document.querySelector('#push-result').dataset.tone === 'error', before);
      assert.equal(await admin.getAttribute('#push-result', 'data-tone'), 'ok', await admin.textContent('#push-result'));
    };
    const toastSeen = (p, text) => p.evaluate((t) => window.__seen.toasts.some((x) => x.text.includes(t)), text);
    const waitToast = (p, text) => p.waitForFunction((t) => window.__seen.toasts.some((x) => x.text.includes(t)), text);

    const forBob = `for bob only ${RUN}`;
    await push({ kind: 'user', target: 'bob', payload: { message: forBob } });
    await waitToast(bob, forBob);
    await bob.waitForSelector(`.toast:has-text("${forBob}")`);
    await shot(bob, 'push-to-user-bob');

    const forMembers = `members hello ${RUN}`;
    await push({ kind: 'role', target: 'member', payload: { message: forMembers } });
    await waitToast(alice, forMembers);
    await shot(alice, 'push-to-role-member-alice');

    const order = { type: 1, orderId: 7, content: `order 7 paid ${RUN}` };
    await push({ kind: 'user', target: 'alice', event: 'order', payload: order });
    await alice.waitForSelector('#notifications .notification[data-order-id="7"]');
    await alice.locator('#notifications').scrollIntoViewIfNeeded();
    assert.match(await alice.textContent('#notifications .notification[data-order-id="7"]'), new RegExp(`order 7 paid ${RUN}`));
    await shot(admin, 'admin-console-push');

    // A broadcast sentinel: once both pages have it, any earlier push would have arrived.
    const sentinel = `broadcast sentinel ${RUN}`;
    await push({ kind: 'broadcast', payload: { message: sentinel } });
    await Promise.all([waitToast(alice, sentinel), waitToast(bob, sentinel)]);
    assert.equal(await toastSeen(alice, forBob), false, 'alice got the push addressed to bob');
    assert.equal(await toastSeen(bob, forMembers), false, 'bob (free) got the push for role member');
    assert.equal(await bob.locator('#notifications .notification').count(), 0, 'bob got alice\'s order card');
    await shot(alice, 'order-card-alice');
  });

  test('4. Swagger UI: authorize with a member token, "Try it out" posts a comment that appears live', async () => {
    const alice = pages.alice;
    const page = await newPage('swagger');
    await page.goto(`${base}/docs`);
    await page.waitForSelector('#operations-Videos-post_videos__id__danmaku');
    await page.click('button.authorize');
    await page.fill('#auth-bearer-value', tokens.carol);
    await page.click('.auth-container:has(#auth-bearer-value) button.authorize');
    await page.waitForSelector('.auth-container:has(h4:has-text("bearer")) .btn-done');
    await page.click('.auth-container:has(h4:has-text("bearer")) .btn-done');
    const op = page.locator('#operations-Videos-post_videos__id__danmaku');
    await op.locator('.opblock-summary').click();
    await op.locator('.try-out__btn').click();
    await op.locator('input[placeholder="id"]').fill('demo');
    const text = `via swagger ${RUN}`;
    await op.locator('textarea.body-param__text').fill(JSON.stringify({ text, time: 3.5, mode: 'bottom', color: '#00cd00' }, null, 2));
    await op.locator('.execute').click();
    await op.locator('.live-responses-table .response-col_status').first().waitFor();
    const status = (await op.locator('.live-responses-table tbody .response-col_status').first().textContent()).trim();
    assert.equal(status, '201');
    await waitComment(alice, text, 3000);
    assert.equal(await alice.evaluate((t) => [...document.querySelectorAll('#overlay .danmaku')].find((n) => n.textContent === t).dataset.mode, text), 'bottom');
    await op.locator('.live-responses-table').scrollIntoViewIfNeeded();
    await shot(page, 'swagger-try-it-out');
    await shot(alice, 'swagger-comment-live-on-alice');
    await page.close();
  });

  test('5. replay: after a reload, seeking to an earlier comment replays it there; pausing pauses it', async () => {
    const alice = pages.alice;
    // alice posts at 12.0 s of the video; an early comment sits at 2.0 s.
    await alice.evaluate(() => {
      const v = document.querySelector('#video');
      v.pause();
      v.currentTime = 12;
    });
    await alice.waitForFunction(() => {
      const v = document.querySelector('#video');
      return !v.seeking && Math.abs(v.currentTime - 12) < 0.01;
    });
    const marker = `replay marker ${RUN}`;
    const r = await postUI(alice, { text: marker, color: '#89d5ff' });
    assert.ok(r.ok, r.code);
    const early = `early comment ${RUN}`;
    const e = await rest('/api/videos/demo/danmaku', { method: 'POST', token: tokens.admin, body: { text: early, time: 2 } });
    assert.equal(e.status, 201, e.text);

    const bob = pages.bob;
    await bob.bringToFront();
    await bob.reload();
    await waitSignedIn(bob, 'bob');
    await bob.waitForFunction((id) => window.danmakuDemo.overlay.byId.has(id), r.id);
    assert.equal(await timesDrawn(bob, marker), 0, 'the marker showed before its time');

    // Seek past it, paused: it is drawn where it would be 3.5 s into its 7 s flight; the
    // early comment, 13.5 s back, is not (no flood of skipped comments).
    await bob.evaluate(() => {
      document.querySelector('#video').currentTime = 15.5;
    });
    await waitComment(bob, marker);
    await bob.waitForFunction(() => {
      const v = document.querySelector('#video');
      return !v.seeking && v.readyState >= 3;
    });
    const box = () => bob.evaluate((t) => {
      const n = [...document.querySelectorAll('#overlay .danmaku')].find((x) => x.textContent === t);
      const o = document.querySelector('#overlay').getBoundingClientRect();
      const b = n.getBoundingClientRect();
      const v = document.querySelector('#video');
      const item = [...window.danmakuDemo.overlay.items].find((i) => i.node === n);
      return {
        x: b.left - o.left,
        width: o.width,
        source: n.dataset.source,
        count: [...document.querySelectorAll('#overlay .danmaku')].filter((x) => x.textContent === t).length,
        anim: item && item.anim.playState,
        video: { paused: v.paused, t: v.currentTime },
      };
    }, marker);
    const frames = (n) => bob.evaluate((k) => new Promise((res) => {
      let left = k;
      const step = () => (--left <= 0 ? res() : requestAnimationFrame(step));
      requestAnimationFrame(step);
    }), n);
    const b1 = await box();
    assert.equal(b1.source, 'replay');
    // Half way across: it entered from the right edge 3.5 s of video ago.
    assert.ok(b1.x > b1.width * 0.35 && b1.x < b1.width * 0.65, `the replayed comment is not where it belongs: ${JSON.stringify(b1)}`);
    assert.equal(await timesDrawn(bob, early), 0, 'a comment 13.5 s before the seek target was drawn');
    // Paused: it stays put.
    await frames(10);
    const b2 = await box();
    assert.equal(b2.x, b1.x, 'the comment moved while the video was paused');
    await shot(bob, 'replay-after-seek-paused');
    // Playing: it moves; paused again: it stops.
    await bob.evaluate(() => document.querySelector('#video').play());
    await bob.waitForFunction(({ t, x }) => {
      const n = [...document.querySelectorAll('#overlay .danmaku')].find((el) => el.textContent === t);
      const o = document.querySelector('#overlay').getBoundingClientRect();
      return n && n.getBoundingClientRect().left - o.left < x - 30;
    }, { t: marker, x: b1.x });
    await bob.evaluate(() => document.querySelector('#video').pause());
    const b3 = await box();
    await frames(10);
    const b4 = await box();
    assert.equal(b4.x, b3.x, `the comment kept moving after pause: ${JSON.stringify([b3, b4])}`);

    // Seek back before it and play: it replays when the video reaches 12 s.
    await bob.evaluate(() => {
      const v = document.querySelector('#video');
      v.currentTime = 10.5;
    });
    await bob.waitForFunction((t) => ![...document.querySelectorAll('#overlay .danmaku')].some((n) => n.textContent === t), marker);
    const drawnBefore = await timesDrawn(bob, marker);
    await bob.evaluate(() => document.querySelector('#video').play());
    await waitComment(bob, marker, 10_000);
    const at = await bob.evaluate(() => document.querySelector('#video').currentTime);
    assert.ok(at >= 11.9 && at < 13, `replayed at video time ${at}, expected about 12`);
    assert.equal(await timesDrawn(bob, marker), drawnBefore + 1);
    await shot(bob, 'replay-while-playing');
  });

  test('6. failure mode: a hostile text renders as literal text everywhere', async () => {
    const alice = pages.alice;
    const bob = pages.bob;
    const admin = pages.admin;
    const r = await postUI(alice, { text: HOSTILE });
    assert.ok(r.ok, r.code);
    await Promise.all([waitComment(alice, HOSTILE), waitComment(bob, HOSTILE)]);
    for (const p of [alice, bob]) {
      assert.equal(await p.locator('#overlay img').count(), 0);
      assert.equal(await p.locator('img[src="x"]').count(), 0);
    }
    // An admin push with the same text shows as a literal toast too.
    await admin.selectOption('#push-kind', 'broadcast');
    await admin.fill('#push-event', 'push');
    await admin.fill('#push-payload', JSON.stringify({ message: HOSTILE }));
    await admin.click('#push-send');
    await bob.waitForFunction((t) => [...document.querySelectorAll('.toast-body')].some((n) => n.textContent === t), HOSTILE);
    // The admin console lists it literally.
    await admin.fill('#comments-video', 'demo');
    await admin.click('#comments-form button');
    await admin.waitForFunction((t) => [...document.querySelectorAll('#comment-table .comment-text')].some((n) => n.textContent === t), HOSTILE);
    assert.equal(await admin.locator('#comment-table img').count(), 0);
    assert.deepEqual(dialogs, [], 'a dialog opened: some text was run as HTML');
    await waitOnScreen(bob, HOSTILE);
    await shot(bob, 'hostile-text-literal');
    await shot(admin, 'hostile-text-admin-console');
  });

  test('7. viewer settings, guests, moderation: hide modes, opacity, density; delete and mute from the console', async () => {
    const alice = pages.alice;
    const bob = pages.bob;
    const admin = pages.admin;
    await alice.bringToFront();
    // Settings: opacity, density, hide top.
    await alice.click('#settings-toggle');
    await alice.fill('#set-opacity', '0.5');
    await alice.selectOption('#set-density', '0.5');
    await alice.check('#set-hide-top');
    assert.equal(await alice.evaluate(() => document.querySelector('#overlay').style.opacity), '0.5');
    const lanes = await alice.evaluate(() => window.danmakuDemo.overlay.laneCount());
    await alice.selectOption('#set-density', '1');
    assert.ok(await alice.evaluate(() => window.danmakuDemo.overlay.laneCount()) > lanes, 'density 1 gives more lanes than 0.5');
    const hiddenTop = `hidden top ${RUN}`;
    const after = `shown scroll after the hidden top ${RUN}`;
    for (const [text, mode] of [[hiddenTop, 'top'], [after, 'scroll']]) {
      const r = await rest('/api/videos/demo/danmaku', { method: 'POST', token: tokens.admin, body: { text, mode, time: 20 } });
      assert.equal(r.status, 201, r.text);
    }
    await waitComment(alice, after);
    assert.equal(await timesDrawn(alice, hiddenTop), 0, 'a top comment was drawn while top comments are hidden');
    await waitComment(bob, hiddenTop);
    await shot(alice, 'viewer-settings');
    await alice.click('#settings-reset');
    assert.equal(await alice.isChecked('#set-hide-top'), false);

    // A guest watches and reads but cannot post; the premiere is locked.
    const guest = await openVideo('guest', 'guest');
    assert.equal(await guest.isDisabled('#dm-text'), true);
    assert.equal(await guest.getAttribute('#dm-hint', 'data-kind'), 'guest');
    assert.equal(await guest.getAttribute('#video-list [data-video="premiere"]', 'data-locked'), 'true');
    await guest.close();

    // The console deletes a comment: open pages drop it from screen and timeline.
    await admin.bringToFront();
    await admin.fill('#comments-video', 'demo');
    await admin.click('#comments-form button');
    const row = admin.locator('#comment-table tr', { has: admin.locator('.comment-text', { hasText: after }) });
    const id = Number(await row.getAttribute('data-id'));
    admin.once('dialog', (d) => d.accept());
    await row.locator('button', { hasText: 'Delete' }).click();
    await admin.waitForSelector(`#comment-table tr[data-id="${id}"]`, { state: 'detached' });
    for (const p of [alice, bob]) {
      await p.waitForFunction((n) => !window.danmakuDemo.overlay.byId.has(n)
        && !document.querySelector(`#overlay .danmaku[data-id="${n}"]`), id);
    }

    // The console mutes bob: his next post is refused inline; lifting the mute lets it through.
    await admin.fill('#mute-sub', 'bob');
    await admin.selectOption('#mute-seconds', '600');
    await admin.click('#mute-form button');
    await admin.waitForFunction(() => /muted until/.test(document.querySelector('#mute-result').textContent));
    const muted = await postUI(bob, { text: `while muted ${RUN}` });
    assert.equal(muted.code, 'muted');
    await bob.waitForSelector('#dm-error[data-code="muted"]:not([hidden])');
    assert.match(await bob.textContent('#dm-error'), /muted/);
    await shot(bob, 'muted-inline-error');
    await admin.selectOption('#mute-seconds', '0');
    await admin.click('#mute-form button');
    await admin.waitForFunction(() => /not muted/.test(document.querySelector('#mute-result').textContent));
    const ok = await postUI(bob, { text: `after the mute ${RUN}` });
    assert.ok(ok.ok, ok.code);
  });

  test('8. reconnect: after a server restart the pages reconnect with backoff and resubscribe', async () => {
    const bob = pages.bob;
    await bob.bringToFront();
    const gen = await bob.evaluate(() => window.danmakuDemo.state.gen);
    const port = new URL(base).port;
    const old = server;
    server = null;
    old.kill('SIGTERM');
    await new Promise((r) => old.once('exit', r));
    // The page shows the close and its retry countdown.
    await bob.waitForFunction(() => document.querySelector('#conn-state').dataset.state !== 'open');
    await bob.waitForFunction(() => /retrying in \d+s/.test(document.querySelector('#conn-state').textContent)
      || document.querySelector('#conn-state').dataset.state === 'open');
    await shot(bob, 'reconnecting');
    const restarted = await startServer(`127.0.0.1:${port}`);
    assert.equal(restarted, base);
    for (const p of [pages.alice, bob]) await waitSignedIn(p, p === bob ? 'bob' : 'alice');
    assert.ok(await bob.evaluate(() => window.danmakuDemo.state.gen) > gen, 'the page did not reconnect');
    const text = `after the restart ${RUN}`;
    const r = await rest('/api/videos/demo/danmaku', { method: 'POST', token: tokens.admin, body: { text, time: 1 } });
    assert.equal(r.status, 201, r.text);
    await Promise.all([waitComment(bob, text), waitComment(pages.alice, text)]);
  });
});

/** Opens /watch/premiere in a new page with the same sign-in as `from`. */
async function openVideoLocked(name, from) {
  const token = await from.evaluate(() => window.danmakuDemo.state.token);
  const page = await newPage(name);
  await page.goto(`${base}/watch/premiere`);
  // Sign in by pasting the same token.
  await page.click('details.paste > summary');
  await page.fill('#token-input', token);
  await page.click('#token-apply');
  await page.waitForSelector('#member-lock:not([hidden])');
  await page.waitForFunction(() => document.querySelector('#room-status').textContent === 'members only');
  assert.equal(await page.isDisabled('#dm-text'), true);
  return page;
}

test('9. no page broke its Content-Security-Policy (no inline script or style attribute)', () => {
  assert.deepEqual(cspViolations, []);
});
