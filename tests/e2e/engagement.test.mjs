// End-to-end tests of likes and the heatmap on the video page, in headless Chromium
// (Debian's /usr/bin/chromium, driven by playwright-core) against the real server binary.
//
// Like tests/e2e/e2e.test.mjs it starts `danmaku serve --demo` on a fresh data directory,
// mints demo tokens, and waits for DOM conditions, never for fixed times. It seeds a video
// with comments clustered at two moments, then checks: the curve and its peaks, a peak
// click seeking, live updates, audience-aware counts (free vs member), the like gesture
// (hover holds a flying comment, like, live count on another page, liked after a reload,
// disabled for guests), and takes the desktop (1280x800) and phone (390x844) screenshots
// the README shows: target/e2e/heatmap-desktop.png and target/e2e/heatmap-phone.png.
//
// Run: cd tests/e2e && DANMAKU_BIN=../../target/debug/danmaku node --test engagement.test.mjs

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { BIN, CHROMIUM, SHOTS, launchServer, rest as harnessRest, mint as harnessMint } from './harness.mjs';

const RUN = Date.now().toString(36);
const VIDEO = 'heat';
/** Two clusters (around 6 s and 16 s of the 24 s demo clip) and a few strays. */
const CLUSTER_A = Array.from({ length: 10 }, (_, i) => 6.05 + i * 0.09);
const CLUSTER_B = Array.from({ length: 6 }, (_, i) => 16.1 + i * 0.13);
const STRAYS = [2.2, 10.4, 20.6];
/** One members-only comment: counted for members, not for free users. */
const MEMBERS_AT = 11.3;

let server;
let base;
let browser;
let dataDir;
const tokens = {};
const pages = {};
const contexts = {};
const cspViolations = [];
const pageErrors = [];
let likedId = null;

// ---------------------------------------------------------------------------------------
// Harness (the pattern of e2e.test.mjs)

/** The server binary on 127.0.0.1:0 (tests/e2e/harness.mjs); resolves with its base URL. */
async function startServer() {
  const started = await launchServer('engagement');
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

/** Posts a comment on the test video as the admin (no cooldown); resolves with its id. */
async function seed(text, time, extra = {}) {
  const r = await rest(`/api/videos/${VIDEO}/danmaku`, { method: 'POST', token: tokens.admin, body: { text, time, ...extra } });
  assert.equal(r.status, 201, r.text);
  return r.json.id;
}

/** A page in `context` that records CSP violations and page errors. */
async function newPage(context, name) {
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(`[${name}] ${e.message}`));
  page.on('console', (m) => {
    if (/Content Security Policy/.test(m.text())) cspViolations.push(`[${name}] ${m.text()}`);
    if (m.type() === 'error' && !/status of (403|404)/.test(m.text())) console.error(`[${name}] console: ${m.text()}`);
  });
  return page;
}

/** Opens the test video and signs in with a demo button (or stays a guest). */
async function openVideo(context, name, user) {
  const page = await newPage(context, name);
  await page.goto(`${base}/watch/${VIDEO}`);
  if (user !== 'guest') await page.click(`#login-${user}`);
  await waitSignedIn(page, user);
  // Signing in scrolled to the button (below the player on a phone): back to the player.
  await page.evaluate(() => window.scrollTo(0, 0));
  pages[name] = page;
  return page;
}

/** Waits for the welcome as `user`, the joined room and the history of that identity. */
async function waitSignedIn(page, user) {
  const role = { alice: 'member', bob: 'free', guest: 'guest' }[user];
  await page.waitForFunction((r) => {
    const s = window.danmakuDemo && window.danmakuDemo.state;
    return s && s.welcomed && s.user && s.user.role === r
      && document.querySelector('#room-status').dataset.status === 'joined'
      && s.historyFor === `${s.user.sub ?? ''}|${s.user.role}`;
  }, role);
}

/** Waits until the heatmap is drawn with `total` comments (any total when omitted). */
function waitHeatmap(page, total, who) {
  return page.waitForFunction(([n, w]) => {
    const box = document.querySelector('#heatmap');
    const d = box.querySelector('.heatmap-line').getAttribute('d') || '';
    return box.dataset.state === 'drawn' && d.length > 10 && (n === null || Number(box.dataset.total) === n)
      && (w === null || box.dataset.for === w);
  }, [total ?? null, who ?? null], { timeout: 15_000 });
}

/** What the page's heatmap holds: total, bucket count, path, peaks. */
function heatmapState(page) {
  return page.evaluate(() => {
    const box = document.querySelector('#heatmap');
    return {
      total: Number(box.dataset.total),
      buckets: Number(box.dataset.buckets),
      d: box.querySelector('.heatmap-line').getAttribute('d'),
      peaks: [...box.querySelectorAll('.heatmap-peak')].map((b) => ({
        time: Number(b.dataset.time), count: Number(b.dataset.count), label: b.getAttribute('aria-label'),
      })),
    };
  });
}

/** Seeks the page's video to `t` and plays or pauses it; waits until the seek is done. */
async function seek(page, t, play) {
  await page.evaluate(({ t: at, p }) => {
    const v = document.querySelector('#video');
    v.currentTime = at;
    if (p) v.play();
    else v.pause();
  }, { t, p: play });
  await page.waitForFunction(() => !document.querySelector('#video').seeking && document.querySelector('#video').readyState >= 2);
}

/** A stored comment for everyone fully on screen (not held): its id and a point on it; null when none. */
function commentOnScreen(page, { id, minLeft = 40, from = 0, to = Infinity } = {}) {
  return page.evaluate(({ want, min, lo, hi }) => {
    const o = document.querySelector('#overlay').getBoundingClientRect();
    for (const n of document.querySelectorAll('#overlay .danmaku[data-interactive]')) {
      if (want != null && n.dataset.id !== String(want)) continue;
      if (Number(n.dataset.time) < lo || Number(n.dataset.time) > hi) continue;
      if (n.dataset.mode !== 'scroll' || n.dataset.held || n.dataset.audience !== 'everyone') continue;
      const r = n.getBoundingClientRect();
      if (r.left > o.left + min && r.right < o.right - 24 && r.width > 30) {
        return { id: Number(n.dataset.id), x: r.left + r.width * 0.35, y: r.top + r.height / 2 };
      }
    }
    return null;
  }, { want: id ?? null, min: minLeft, lo: from, hi: to === Infinity ? 1e9 : to });
}

/** Waits for a stored scrolling comment for everyone fully on screen; resolves with commentOnScreen's answer. */
async function waitCommentOnScreen(page, opts = {}) {
  await page.waitForFunction(({ want, min, lo, hi }) => {
    const o = document.querySelector('#overlay').getBoundingClientRect();
    return [...document.querySelectorAll('#overlay .danmaku[data-interactive]')].some((n) => {
      if (want != null && n.dataset.id !== String(want)) return false;
      if (Number(n.dataset.time) < lo || Number(n.dataset.time) > hi) return false;
      const r = n.getBoundingClientRect();
      return n.dataset.mode === 'scroll' && !n.dataset.held && n.dataset.audience === 'everyone' && r.left > o.left + min && r.right < o.right - 24 && r.width > 30;
    });
  }, { want: opts.id ?? null, min: opts.minLeft ?? 40, lo: opts.from ?? 0, hi: opts.to ?? 1e9 }, { timeout: 15_000 });
  return commentOnScreen(page, opts);
}

/** The left edge of a comment's box, after `frames` animation frames. */
function leftAfter(page, id, frames) {
  return page.evaluate(({ n, k }) => new Promise((res) => {
    let left = k;
    const step = () => {
      if (--left > 0) {
        requestAnimationFrame(step);
        return;
      }
      const node = document.querySelector(`#overlay .danmaku[data-id="${n}"]`);
      res(node ? node.getBoundingClientRect().left : null);
    };
    requestAnimationFrame(step);
  }), { n: id, k: frames });
}

/** Resolves after `n` animation frames of the page (lets a paint settle). */
function frames(page, n) {
  return page.evaluate((k) => new Promise((res) => {
    let left = k;
    const step = () => (--left <= 0 ? res() : requestAnimationFrame(step));
    requestAnimationFrame(step);
  }), n);
}

/** Saves a screenshot under target/e2e/ (the pointer stays where it is: popovers show). */
async function shot(page, name) {
  const file = join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

// ---------------------------------------------------------------------------------------
// Setup

before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium is missing at ${CHROMIUM} (apt-get install -y chromium, or tests/e2e/run.sh)`);
  if (!existsSync(BIN)) throw new Error(`The server binary is missing at ${BIN}: run cargo build first`);
  // Other suites share target/e2e/: only this suite's files are replaced.
  mkdirSync(SHOTS, { recursive: true });
  base = await startServer();
  // A fresh, throwaway profile per launch (playwright's own temporary user-data-dir).
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  contexts.desktop = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  tokens.admin = await mint('admin', 'admin');
  const r = await rest(`/api/videos/${VIDEO}`, { method: 'PUT', token: tokens.admin, body: { title: 'Heatmap clip', tier: 'free' } });
  assert.ok(r.status === 201 || r.status === 200, r.text);
  const lines = ['233333', 'here it comes', 'wow', 'what a moment', 'again!', 'hahaha', 'perfect timing', 'no way', 'encore', 'legend'];
  for (const [i, t] of CLUSTER_A.entries()) await seed(`${lines[i]} ${RUN}`, t);
  for (const [i, t] of CLUSTER_B.entries()) await seed(`second wave ${i + 1} ${RUN}`, t, { color: '#89d5ff' });
  for (const t of STRAYS) await seed(`stray at ${t} ${RUN}`, t);
  await seed(`members only ${RUN}`, MEMBERS_AT, { audience: 'members', color: '#ffd302' });
});

after(async () => {
  if (browser) await browser.close().catch(() => {});
  if (server) {
    server.kill('SIGTERM');
    await new Promise((r) => {
      server.once('exit', r);
      setTimeout(r, 5000);
    });
  }
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------
// Scenarios

const EVERYONE = CLUSTER_A.length + CLUSTER_B.length + STRAYS.length;

describe('likes and the heatmap in the browser', () => {
  test('1. heatmap: curve and peaks drawn; a peak click seeks; a free user does not count members-only comments', async () => {
    const alice = await openVideo(contexts.desktop, 'alice', 'alice');
    const bob = await openVideo(contexts.desktop, 'bob', 'bob');
    // Counted for each one's own audience (a guest's fetch before the welcome would match
    // bob's total too: the identity is part of the condition).
    await waitHeatmap(alice, EVERYONE + 1, 'alice|member');
    await waitHeatmap(bob, EVERYONE, 'bob|free');
    const a = await heatmapState(alice);
    assert.ok(a.d.startsWith('M') && a.d.includes('C'), `not a smooth path: ${a.d.slice(0, 80)}`);
    assert.ok(a.buckets >= 20 && a.buckets <= 24, `a 24 s clip gets one bucket per second at most, got ${a.buckets}`);
    assert.ok(a.peaks.length >= 2, `expected the two clusters as peaks: ${JSON.stringify(a.peaks)}`);
    const top = a.peaks.reduce((m, p) => (p.count > m.count ? p : m));
    assert.ok(top.time > 5.5 && top.time < 7.5, `the highest peak is not the first cluster: ${JSON.stringify(top)}`);
    assert.ok(a.peaks.some((p) => p.time > 15.5 && p.time < 17.5), 'the second cluster is no peak');
    assert.ok(top.label && top.label.length > 0, 'the peak button has no aria-label');

    // The curve sits in the stage, above the native controls, full width.
    const geo = await alice.evaluate(() => {
      const s = document.querySelector('#stage').getBoundingClientRect();
      const h = document.querySelector('#heatmap .heatmap-svg').getBoundingClientRect();
      return { s: { l: s.left, r: s.right, b: s.bottom }, h: { l: h.left, r: h.right, t: h.top, b: h.bottom, height: h.height } };
    });
    assert.ok(Math.abs(geo.h.l - geo.s.l) < 1 && Math.abs(geo.h.r - geo.s.r) < 1, `not full width: ${JSON.stringify(geo)}`);
    assert.ok(geo.h.b <= geo.s.b - 40 && geo.h.height >= 28 && geo.h.height <= 40, `strip misplaced: ${JSON.stringify(geo)}`);

    // A click on the top peak seeks there.
    await seek(alice, 1, false);
    await alice.click(`#heatmap .heatmap-peak[data-time="${top.time}"]`);
    await alice.waitForFunction((t) => Math.abs(document.querySelector('#video').currentTime - t) < 0.3, top.time);

    // bob (free) does not count the members-only comment; the server agrees with the page.
    const b = await heatmapState(bob);
    assert.equal(b.total, EVERYONE);
    const byRest = await rest(`/api/videos/${VIDEO}/heatmap?buckets=${b.buckets}&duration=24`, { token: await bob.evaluate(() => window.danmakuDemo.state.token) });
    assert.equal(byRest.json.total, EVERYONE, byRest.text);
  });

  test('2. heatmap live: a comment from another client raises the curve at once; deletions lower it', async () => {
    const { alice, bob } = pages;
    const before = await heatmapState(alice);
    const id = await seed(`live at 20.4 ${RUN}`, 20.4);
    await waitHeatmap(alice, EVERYONE + 2);
    await waitHeatmap(bob, EVERYONE + 1);
    const after = await heatmapState(alice);
    assert.notEqual(after.d, before.d, 'the curve did not change');
    // A members-only one raises alice's total only; a sentinel shows bob had time to get it.
    await seed(`members live ${RUN}`, 3.3, { audience: 'members' });
    await seed(`sentinel ${RUN}`, 3.4);
    await waitHeatmap(alice, EVERYONE + 4);
    await waitHeatmap(bob, EVERYONE + 2);
    // The admin deletes the live one: the throttled refetch brings the totals down.
    const del = await rest(`/api/danmaku/${id}`, { method: 'DELETE', token: tokens.admin });
    assert.ok(del.status === 200 || del.status === 204, del.text);
    await waitHeatmap(alice, EVERYONE + 3);
    await waitHeatmap(bob, EVERYONE + 1);
  });

  test('3. like gesture: hovering a flying comment holds it and shows the like button; liking reaches another page live', async () => {
    const { alice, bob } = pages;
    await alice.bringToFront();
    await seek(alice, 5.8, true);
    // A comment of the first cluster, well inside the screen.
    const c = await waitCommentOnScreen(alice, { minLeft: 200, from: 6, to: 7 });
    assert.ok(c, 'no comment on screen');
    await alice.mouse.move(c.x, c.y);
    await alice.waitForSelector(`#like-pop[data-id="${c.id}"]:not([hidden])`);
    // Held: its box stops moving while the video (and the others) go on.
    const x1 = await leftAfter(alice, c.id, 2);
    const x2 = await leftAfter(alice, c.id, 12);
    assert.equal(x2, x1, 'the hovered comment kept moving');
    assert.equal(await alice.evaluate(() => document.querySelector('#video').paused), false, 'the video stopped');
    assert.equal(await alice.getAttribute('#like-pop .like-btn', 'aria-pressed'), 'false');
    assert.equal(await alice.textContent('#like-pop .like-count'), '0');

    await alice.click('#like-pop .like-btn');
    await alice.waitForSelector('#like-pop[data-likes="1"] .like-btn[aria-pressed="true"]');
    assert.equal(await alice.textContent('#like-pop .like-count'), '1');
    await alice.waitForSelector(`#overlay .danmaku.liked[data-id="${c.id}"]`);
    likedId = c.id;
    // bob's page gets the new count from danmaku_likes.
    await bob.waitForFunction((id) => {
      const l = window.danmakuDemo.overlay.likesOf(id);
      return l && l.likes === 1 && l.liked === false;
    }, c.id, { timeout: 10_000 });

    // The desktop screenshot: comments on screen, the curve drawn above the controls (shown
    // while paused), the popover on the liked comment.
    await alice.evaluate(() => document.querySelector('#video').pause());
    await waitHeatmap(alice);
    await frames(alice, 20);
    await shot(alice, 'heatmap-desktop');
    await alice.evaluate(() => document.querySelector('#video').play());

    // Leaving lets it fly on.
    await alice.mouse.move(5, 5);
    await alice.waitForSelector('#like-pop', { state: 'hidden' });
    // Measured across two animation frames while the node is still there: it moves left.
    // (If it flew off between the release and the check, the check fails; the release
    // happens at once and the flight takes seconds.)
    const moved = await alice.evaluate(async (id) => {
      const n = document.querySelector(`#overlay .danmaku[data-id="${id}"]`);
      if (!n) return 'gone';
      const l = n.getBoundingClientRect().left;
      for (let i = 0; i < 6; i += 1) await new Promise((r) => requestAnimationFrame(r));
      return n.isConnected && n.getBoundingClientRect().left < l ? 'moved' : 'still';
    }, c.id);
    assert.equal(moved, 'moved', 'the released comment did not fly on');
  });

  test('4. likes persist: after a reload the comment is still liked; a guest sees the count and a disabled button', async () => {
    assert.ok(likedId, 'scenario 3 did not like a comment');
    const { alice } = pages;
    await alice.reload();
    await waitSignedIn(alice, 'alice');
    const l = await alice.evaluate((id) => window.danmakuDemo.overlay.likesOf(id), likedId);
    assert.deepEqual(l, { likes: 1, liked: true });
    const time = await alice.evaluate((id) => window.danmakuDemo.overlay.byId.get(id).time, likedId);
    // Half way across the screen after 3.5 s of its 7 s flight.
    await seek(alice, time + 3.5, false);
    await alice.waitForSelector(`#overlay .danmaku.liked[data-id="${likedId}"]`);
    // Unlike and like back, through the popover (the comment is still: the video is paused).
    const c = await waitCommentOnScreen(alice, { id: likedId, minLeft: 0 });
    await alice.mouse.move(c.x, c.y);
    await alice.waitForSelector(`#like-pop[data-id="${likedId}"][data-likes="1"] .like-btn[aria-pressed="true"]`);
    await alice.click('#like-pop .like-btn');
    await alice.waitForSelector('#like-pop[data-likes="0"] .like-btn[aria-pressed="false"]');
    await alice.waitForSelector(`#overlay .danmaku[data-id="${likedId}"]:not(.liked)`);
    await alice.click('#like-pop .like-btn');
    await alice.waitForSelector('#like-pop[data-likes="1"] .like-btn[aria-pressed="true"]');
    await alice.mouse.move(5, 5);

    const guest = await openVideo(contexts.desktop, 'guest', 'guest');
    await waitHeatmap(guest, EVERYONE + 1);
    await seek(guest, time + 3.5, false);
    const g = await waitCommentOnScreen(guest, { id: likedId, minLeft: 0 });
    await guest.mouse.move(g.x, g.y);
    await guest.waitForSelector(`#like-pop[data-id="${likedId}"][data-likes="1"]:not([hidden])`);
    assert.equal(await guest.isDisabled('#like-pop .like-btn'), true, 'a guest can press like');
    assert.ok((await guest.getAttribute('#like-pop .like-btn', 'title')).length > 0, 'no sign-in hint on the disabled button');
    // The server refuses a guest's like anyway.
    const r = await rest(`/api/danmaku/${likedId}/like`, { method: 'POST' });
    assert.ok([401, 403].includes(r.status), r.text);
    await guest.close();
  });

  test('5. phone: the curve fits a 390 px screen above the controls; a tap holds a comment and shows the popover', async () => {
    contexts.phone = await browser.newContext({
      viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true,
    });
    const phone = await openVideo(contexts.phone, 'phone', 'alice');
    await waitHeatmap(phone, EVERYONE + 3);
    const geo = await phone.evaluate(() => {
      const s = document.querySelector('#stage').getBoundingClientRect();
      const h = document.querySelector('#heatmap .heatmap-svg').getBoundingClientRect();
      const peaks = [...document.querySelectorAll('#heatmap .heatmap-peak')].map((b) => b.getBoundingClientRect());
      return { s: { l: s.left, r: s.right, b: s.bottom }, h: { l: h.left, r: h.right, b: h.bottom }, peaks: peaks.map((p) => [p.left, p.right]), vw: innerWidth };
    });
    assert.ok(geo.h.l >= 0 && geo.h.r <= geo.vw + 0.5 && geo.h.b <= geo.s.b - 40, `the curve is off the phone screen: ${JSON.stringify(geo)}`);
    assert.ok(geo.peaks.length >= 1 && geo.peaks.every(([l, r]) => l >= geo.s.l - 1 && r <= geo.s.r + 1), `peaks off screen: ${JSON.stringify(geo)}`);

    await seek(phone, 5.9, true);
    const c = await waitCommentOnScreen(phone, { minLeft: 40 });
    await phone.touchscreen.tap(c.x, c.y);
    await phone.waitForSelector(`#like-pop[data-id="${c.id}"]:not([hidden])`);
    const x1 = await leftAfter(phone, c.id, 2);
    assert.equal(await leftAfter(phone, c.id, 10), x1, 'the tapped comment kept moving');
    const pop = await phone.evaluate(() => {
      const s = document.querySelector('#stage').getBoundingClientRect();
      const p = document.querySelector('#like-pop').getBoundingClientRect();
      return p.left >= s.left && p.right <= s.right && p.top >= s.top && p.bottom <= s.bottom;
    });
    assert.ok(pop, 'the popover is cut off by the stage');
    await phone.evaluate(() => document.querySelector('#video').pause());
    await frames(phone, 20);
    await shot(phone, 'heatmap-phone');
    // A tap elsewhere closes it.
    await phone.touchscreen.tap(20, 20);
    await phone.waitForSelector('#like-pop', { state: 'hidden' });
  });

  test('6. no page broke its Content-Security-Policy or threw', () => {
    assert.deepEqual(cspViolations, []);
    assert.deepEqual(pageErrors, []);
  });
});
