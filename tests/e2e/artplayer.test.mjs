// End-to-end test of static/examples/artplayer.html: ArtPlayer 5 and
// artplayer-plugin-danmuku 5, unmodified from npm (tests/e2e/node_modules; the repo does
// not vendor them, so page.route serves the page's ./vendor/ URLs from there), showing
// our comments through the adapter static/examples/artplayer-danmaku.js.
//
// Same harness as e2e.test.mjs: `target/debug/danmaku serve --demo --bind 127.0.0.1:0` on
// a fresh data directory, Debian's headless Chromium with a fresh profile, waits on DOM
// conditions (never fixed sleeps). Screenshot: target/e2e/artplayer.png.
//
// Run: tests/e2e/run.sh, or, with the binary built and node_modules installed:
//   cd tests/e2e && node --test --test-concurrency=1 artplayer.test.mjs

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { BIN, CHROMIUM, ROOT, SHOTS, launchServer, rest as harnessRest, mint as harnessMint } from './harness.mjs';

/** The packages' browser (UMD) builds: they set window.Artplayer / window.artplayerPluginDanmuku. */
/** This folder: the npm packages are under its node_modules/. */
const HERE = join(ROOT, 'tests/e2e');
const VENDOR = {
  'artplayer.js': join(HERE, 'node_modules/artplayer/dist/artplayer.js'),
  'artplayer-plugin-danmuku.js': join(HERE, 'node_modules/artplayer-plugin-danmuku/dist/artplayer-plugin-danmuku.js'),
};
/** A unique tag per run, so texts and the video id never collide. */
const RUN = Date.now().toString(36);
const VIDEO = `art-${RUN}`;

let server;
let base;
let context;
let dataDir;
let profileDir;
let page;
let adminToken;
const stored = {}; // text -> stored view of the seeded comments
const pageErrors = [];
const cspViolations = [];

// ---------------------------------------------------------------------------------------
// Harness (the minimal part of e2e.test.mjs's)

/** The server binary on 127.0.0.1:0 (tests/e2e/harness.mjs); resolves with its base URL. */
async function startServer() {
  const started = await launchServer('artplayer');
  server = started.child;
  dataDir = started.dataDir;
  return started.base;
}

/** A JSON REST call to this file's server: {status, json, text, retryAfter}. */
function rest(path, opts) {
  return harnessRest(base, path, opts);
}

/** A demo token from this file's server. */
function mint(sub, role) {
  return harnessMint(base, sub, role);
}

/**
 * Runs in the page before its scripts: records every comment the plugin starts to show
 * (its element's data-state turning to 'emit' from wait/ready, not a resume after a
 * pause), with what the viewer sees: text, colour, and the box relative to the layer.
 */
function recorder() {
  const drawn = [];
  window.__drawn = drawn;
  new MutationObserver((records) => {
    for (const r of records) {
      const n = r.target;
      if (n.dataset.state !== 'emit' || r.oldValue === 'emit' || r.oldValue === 'stop') continue;
      const layer = n.closest('.art-danmuku');
      if (!layer) continue;
      const l = layer.getBoundingClientRect();
      const b = n.getBoundingClientRect();
      drawn.push({
        id: n.dataset.id,
        text: n.textContent,
        mode: n.dataset.mode,
        color: getComputedStyle(n).color,
        border: n.style.borderStyle,
        top: (b.top - l.top) / l.height,
        bottom: (b.bottom - l.top) / l.height,
        html: n.innerHTML,
        at: Date.now(),
      });
    }
  }).observe(document, { attributes: true, attributeFilter: ['data-state'], attributeOldValue: true, subtree: true });
}

/** A page that logs its errors and CSP violations (both checked at the end). */
async function newPage(name) {
  const p = await context.newPage();
  p.on('pageerror', (e) => pageErrors.push(`[${name}] ${e.message}`));
  p.on('console', (m) => {
    if (/Content Security Policy/.test(m.text())) cspViolations.push(`[${name}] ${m.text()}`);
  });
  return p;
}

/** Serves the page's ./vendor/ files from the npm packages, as a site would host them. */
async function routeVendor(p) {
  for (const [file, path] of Object.entries(VENDOR)) {
    const body = readFileSync(path);
    await p.route(`${base}/examples/vendor/${file}`, (route) => route.fulfill({
      status: 200,
      contentType: 'text/javascript; charset=utf-8',
      body,
    }));
  }
}

/** Waits until the plugin has drawn a comment with this text; resolves with its record. */
async function waitDrawn(text, timeout = 15_000) {
  await page.waitForFunction((t) => window.__drawn.some((d) => d.text === t), text, { timeout });
  return page.evaluate((t) => window.__drawn.find((d) => d.text === t), text);
}

/** How many times the plugin started drawing a comment with this text. */
function timesDrawn(text) {
  return page.evaluate((t) => window.__drawn.filter((d) => d.text === t).length, text);
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
  for (const path of Object.values(VENDOR)) {
    if (!existsSync(path)) throw new Error(`${path} is missing: run npm ci in tests/e2e (tests/e2e/run.sh does).`);
  }
  // Not wiped: e2e.test.mjs's screenshots share the folder.
  mkdirSync(SHOTS, { recursive: true });
  base = await startServer();
  profileDir = mkdtempSync(join(tmpdir(), 'danmaku-e2e-art-chromium-'));
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1100, height: 820 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
  await context.addInitScript(recorder);

  adminToken = await mint('admin', 'admin');
  const v = await rest(`/api/videos/${VIDEO}`, { method: 'PUT', token: adminToken, body: { title: 'ArtPlayer example', tier: 'free' } });
  assert.ok(v.status === 201 || v.status === 200, v.text);
  // Stored comments in the first seconds, one per mode, colours whose hex starts with
  // zeros (the plugin's own XML parser would drop them) and one for members only (alice,
  // a member, gets it: the XML is read with her token), replayed from the XML export.
  const seeds = [
    [0.6, `scroll white ${RUN}`, 'scroll', '#ffffff'],
    [1.0, `top red ${RUN}`, 'top', '#fe0302'],
    [1.4, `bottom green ${RUN}`, 'bottom', '#00cd00'],
    [1.8, `scroll blue ${RUN}`, 'scroll', '#0000ff'],
    [2.2, `top amber ${RUN}`, 'top', '#ffd302'],
    [2.6, `members only ${RUN}`, 'scroll', '#ffffff', 'members'],
  ];
  for (const [time, text, mode, color, audience = 'everyone'] of seeds) {
    const r = await rest(`/api/videos/${VIDEO}/danmaku`, { method: 'POST', token: adminToken, body: { time, text, mode, color, audience } });
    assert.equal(r.status, 201, r.text);
    stored[text] = r.json;
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

describe('ArtPlayer 5 with artplayer-plugin-danmuku 5', () => {
  test('1. without the vendor files the page says what is missing, as text', async () => {
    const bare = await newPage('bare');
    // As on a server without a local copy, even where a developer put one in vendor/.
    await bare.route(`${base}/examples/vendor/**`, (route) => route.fulfill({ status: 404, body: '' }));
    await bare.goto(`${base}/examples/artplayer.html?video=${VIDEO}`);
    await bare.waitForFunction(() => document.querySelector('#status').dataset.kind === 'error');
    assert.match(await bare.textContent('#status'), /ArtPlayer is missing.*vendor/);
    assert.equal(await bare.locator('.art-video-player').count(), 0);
    await bare.close();
  });

  test('2. stored comments come from the XML export, in their modes and colours', async () => {
    page = await newPage('artplayer');
    await routeVendor(page);
    const xml = page.waitForResponse((r) => r.url() === `${base}/api/videos/${VIDEO}/danmaku.xml`);
    await page.goto(`${base}/examples/artplayer.html?video=${VIDEO}&user=alice&role=member`);
    const res = await xml;
    assert.equal(res.status(), 200);
    assert.match(res.request().headers().authorization || '', /^Bearer /, 'the XML export is read with the viewer\'s token');
    assert.match(res.headers()['content-type'], /xml/);
    // The policy of /examples/ lets ArtPlayer style itself and the plugin start its worker.
    const csp = (await page.request.get(`${base}/examples/artplayer.html`)).headers()['content-security-policy'];
    assert.match(csp, /style-src 'self' 'unsafe-inline'/);
    assert.match(csp, /worker-src 'self' blob:/);
    assert.match(csp, /script-src 'self';/);
    await page.waitForFunction(() => document.querySelector('#player').dataset.conn === 'open');
    await page.waitForFunction(() => /connected as alice \(member\)/.test(document.querySelector('#status').textContent));
    await page.evaluate(() => window.artplayerExample.art.play());

    const texts = Object.keys(stored);
    await page.waitForFunction((ts) => ts.every((t) => window.__drawn.some((d) => d.text === t)), texts, { timeout: 20_000 });
    const want = {
      scroll: { mode: '0' },
      top: { mode: '1' },
      bottom: { mode: '2' },
    };
    const rgb = (hex) => `rgb(${[1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)).join(', ')})`;
    for (const text of texts) {
      const view = stored[text];
      const d = await page.evaluate((t) => window.__drawn.find((x) => x.text === t), text);
      assert.equal(d.id, String(view.id), `${text}: data-id is our comment id`);
      assert.equal(d.mode, want[view.mode].mode, `${text}: mode`);
      assert.equal(d.color, rgb(view.color), `${text}: colour ${view.color}`);
      assert.equal(d.border, '', `${text}: stored comments have no border (only the viewer's own)`);
      if (view.mode === 'top') assert.ok(d.top < 0.2, `${text}: a top comment drawn at ${d.top} of the height`);
      if (view.mode === 'bottom') assert.ok(d.bottom > 0.75, `${text}: a bottom comment drawn down to ${d.bottom} of the height`);
      if (view.mode === 'scroll') assert.ok(d.bottom < 0.9, `${text}: a scrolling comment in the lanes`);
    }
    // In video time order, each once.
    const order = await page.evaluate((ts) => ts.map((t) => window.__drawn.findIndex((d) => d.text === t)), texts);
    assert.deepEqual([...order].sort((a, b) => a - b), order, 'stored comments drawn out of video-time order');
    for (const text of texts) assert.equal(await timesDrawn(text), 1, text);
  });

  test('3. a live comment from another client is drawn at once through the plugin\'s emit', async () => {
    const text = `live from the REST API ${RUN}`;
    // Far from the playing position: drawn because it is live, not because of its time.
    const postedAt = Date.now();
    const r = await rest(`/api/videos/${VIDEO}/danmaku`, {
      method: 'POST',
      token: adminToken,
      body: { time: 120, text, mode: 'top', color: '#89d5ff' },
    });
    assert.equal(r.status, 201, r.text);
    const d = await waitDrawn(text, 10_000);
    assert.ok(d.at - postedAt < 3000, `drawn ${d.at - postedAt} ms after the post`);
    assert.equal(d.id, String(r.json.id));
    assert.equal(d.mode, '1');
    assert.equal(d.color, 'rgb(137, 213, 255)');
    assert.ok(d.top < 0.2, `a top comment drawn at ${d.top}`);
    // Text stays text: a hostile one renders literally.
    const hostile = `<img src=x onerror=alert(1)> ${RUN}`;
    const h = await rest(`/api/videos/${VIDEO}/danmaku`, { method: 'POST', token: adminToken, body: { time: 3, text: hostile } });
    assert.equal(h.status, 201, h.text);
    const hd = await waitDrawn(hostile, 10_000);
    assert.equal(hd.html, hostile.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;'));
    assert.equal(await page.locator('.art-danmuku img').count(), 0);
  });

  test('4. the send box posts through the API; the comment is stored and drawn once', async () => {
    // Pick bottom and amber in the plugin's style panel, as a viewer would.
    await page.hover('.art-video-player');
    await page.hover('.apd-style');
    await page.click('.apd-style-panel .apd-mode[data-mode="2"]');
    await page.click('.apd-style-panel .apd-color[data-color="#FFD302"]');
    const text = `sent from the ArtPlayer box ${RUN}`;
    await page.fill('.apd-input', text);
    const clickedAt = Date.now();
    await page.click('.apd-send');
    // Drawn only once beforeEmit's post has been stored.
    const d = await waitDrawn(text, 10_000);
    assert.ok(d.at - clickedAt < 3000, `drawn ${d.at - clickedAt} ms after the click`);
    assert.equal(await page.inputValue('.apd-input'), '', 'the box is cleared after a stored post');
    const h = await rest(`/api/videos/${VIDEO}/danmaku`);
    assert.equal(h.status, 200, h.text);
    const mine = h.json.items.filter((v) => v.text === text);
    assert.equal(mine.length, 1, `stored ${mine.length} times`);
    assert.equal(mine[0].mode, 'bottom');
    assert.equal(mine[0].color, '#ffd302');
    assert.equal(mine[0].user.name, 'alice');
    assert.ok(mine[0].time > 0, `posted at video time ${mine[0].time}`);
    assert.equal(d.id, String(mine[0].id), 'drawn with the stored id');
    assert.equal(d.mode, '2');
    assert.equal(d.color, 'rgb(255, 211, 2)');
    assert.equal(d.border, 'solid', 'the viewer\'s own comment has the plugin\'s border');
    assert.ok(d.bottom > 0.75, `a bottom comment drawn down to ${d.bottom}`);
    // A sentinel from another client, posted after: once it is drawn, an echo of our own
    // comment (published before it) would have been drawn too.
    const sentinel = `sentinel after the own post ${RUN}`;
    const s = await rest(`/api/videos/${VIDEO}/danmaku`, { method: 'POST', token: adminToken, body: { time: 1, text: sentinel } });
    assert.equal(s.status, 201, s.text);
    await waitDrawn(sentinel, 10_000);
    assert.equal(await timesDrawn(text), 1, 'the own comment was drawn more than once');
    // For the picture: the own comment on screen with the others.
    await page.waitForFunction((t) => [...document.querySelectorAll('.art-danmuku > div')]
      .some((n) => n.textContent === t && n.dataset.state === 'emit'), text);
    await page.screenshot({ path: join(SHOTS, 'artplayer.png') });
  });

  test('5. a refused post leaves the text in the box and says why', async () => {
    // Guests are read-only: a second page without a user.
    const guest = await newPage('guest');
    await routeVendor(guest);
    await guest.goto(`${base}/examples/artplayer.html?video=${VIDEO}`);
    await guest.waitForFunction(() => /connected as guest/.test(document.querySelector('#status').textContent));
    const text = `guest try ${RUN}`;
    await guest.hover('.art-video-player');
    await guest.fill('.apd-input', text);
    await guest.click('.apd-send');
    await guest.waitForFunction(() => document.querySelector('#status').dataset.kind === 'error');
    assert.equal(await guest.inputValue('.apd-input'), text);
    assert.equal(await guest.evaluate((t) => window.__drawn.filter((d) => d.text === t).length, text), 0);
    const h = await rest(`/api/videos/${VIDEO}/danmaku`);
    assert.equal(h.json.items.filter((v) => v.text === text).length, 0);
    await guest.close();
  });

  test('6. no page error and no Content-Security-Policy violation', () => {
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(cspViolations, []);
  });
});
