// Spam-wave folding, viewer reports and webhooks in headless Chromium against the real
// server (started with folding on: --fold-window-ms 5000):
//
//   1. A wave folded: four free users post `2333`, `23333`, `２３３３３`, `233333333` within
//      the fold window; a viewer's page shows the first comment with ×4, flying and in the
//      comment list, and never gets the later copies as comments (proved against a
//      sentinel posted after them, which it does get). Saves target/e2e/fold-wave.png.
//   2. A report flow: a free user reports a flying comment through the like popover's
//      Report form (with a reason); the author's own page and a guest's page offer no
//      Report; two more users report it over REST; at the threshold (3) the viewer's
//      page removes it live; the console's Reports list shows it hidden, with its count,
//      author and reasons, most reported first, and the review queue has it; Approve there
//      publishes it again (the viewer's page gets it back), Delete removes another.
//      Saves target/e2e/admin-reports.png, report-form.png and report-done.png.
//   3. The Webhooks panel (admins only: hidden for a room moderator): a refusal shows the
//      server's message, a webhook is created, listed with its stats, and deleted.
//      Saves target/e2e/admin-webhooks.png.
//
// Like the other files it starts `danmaku serve --demo` on a fresh data directory, mints
// demo tokens, and waits for DOM conditions, never for fixed times.
//
// Run: cd tests/e2e && node --test reports.test.mjs (with the binary built and
// node_modules installed; DANMAKU_BIN and DANMAKU_STATIC_DIR as for e2e.test.mjs).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { BIN, CHROMIUM, SHOTS, launchServer, rest as harnessRest, mint as harnessMint } from './harness.mjs';

const RUN = Date.now().toString(36);
const FOLD_VIDEO = 'rp-fold';
const REPORT_VIDEO = 'rp-report';

let server;
let base;
let browser;
let dataDir;
const tokens = {};
const problems = [];
const contexts = [];

function rest(path, opts) {
  return harnessRest(base, path, opts);
}

/** A fresh browser context (its own sessionStorage) and page that records problems. */
async function newPage(name) {
  const context = await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 1000 } });
  contexts.push(context);
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`[${name}] page error: ${e.message}`));
  page.on('console', (m) => {
    if (/^i18n:/.test(m.text()) || /Content Security Policy/.test(m.text())) problems.push(`[${name}] ${m.text()}`);
  });
  page.on('dialog', (d) => {
    problems.push(`[${name}] unexpected ${d.type()} dialog: ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  return page;
}

async function pasteToken(page, token) {
  await page.click('details.paste > summary');
  await page.fill('#token-input', token);
  await page.click('#token-apply');
}

/** Waits for the welcome as `sub` (null: a guest), the joined room and that identity's history. */
async function waitSignedIn(page, sub) {
  await page.waitForFunction((who) => {
    const s = window.danmakuDemo && window.danmakuDemo.state;
    return s && s.welcomed && s.user && (who === null ? s.user.role === 'guest' : s.user.sub === who)
      && document.querySelector('#room-status').dataset.status === 'joined'
      && s.historyFor === `${s.user.sub ?? ''}|${s.user.role}`;
  }, sub);
}

/** The video page of `video`, signed in as `sub` (null: stays a guest). */
async function openVideo(name, video, sub) {
  const page = await newPage(name);
  await page.goto(`${base}/watch/${video}`);
  if (sub !== null) await pasteToken(page, tokens[sub]);
  await waitSignedIn(page, sub);
  await page.evaluate(() => window.scrollTo(0, 0));
  return page;
}

/** Posts through the page's composer; resolves with the stored comment's id. */
async function composerPost(page, text) {
  await page.waitForFunction(() => !document.querySelector('#dm-send').disabled);
  const before = await page.evaluate(() => window.danmakuDemo.state.posts);
  await page.fill('#dm-text', text);
  await page.click('#dm-send');
  await page.waitForFunction((n) => window.danmakuDemo.state.posts > n, before);
  const last = await page.evaluate(() => window.danmakuDemo.state.lastPost);
  assert.equal(last.ok, true, `the post of "${text}" failed: ${JSON.stringify(last)}`);
  return last.id;
}

/** Posts over REST as `sub`; resolves with the stored view. */
async function post(sub, video, text, time = 1) {
  const r = await rest(`/api/videos/${video}/danmaku`, { method: 'POST', token: tokens[sub], body: { text, time } });
  assert.equal(r.status, 201, `${sub} posting "${text}": ${r.text}`);
  return r.json;
}

async function report(sub, id, reason) {
  const r = await rest(`/api/danmaku/${id}/report`, { method: 'POST', token: tokens[sub], body: reason ? { reason } : {} });
  assert.equal(r.status, 200, `${sub} reporting ${id}: ${r.text}`);
  return r.json;
}

function waitListed(page, id) {
  return page.waitForSelector(`#comment-list li[data-id="${id}"]`, { state: 'attached' });
}

function waitGone(page, id) {
  return Promise.all([
    page.waitForSelector(`#comment-list li[data-id="${id}"]`, { state: 'detached' }),
    page.waitForSelector(`#overlay .danmaku[data-id="${id}"]`, { state: 'detached' }),
  ]);
}

async function waitText(page, selector, re) {
  await page.waitForFunction(([s, src]) => {
    const n = document.querySelector(s);
    return n && new RegExp(src).test(n.textContent);
  }, [selector, re.source]);
  return page.textContent(selector);
}

/**
 * Seeks the page's video to `t` and pauses it: the replay draws what is on screen at `t`,
 * held still with the video, so a comment can be hovered at leisure.
 */
async function freezeAt(page, t) {
  await page.waitForFunction(() => document.querySelector('#video').readyState >= 1);
  await page.evaluate((at) => {
    const v = document.querySelector('#video');
    v.pause();
    v.currentTime = at;
  }, t);
  await page.waitForFunction((at) => {
    const v = document.querySelector('#video');
    return !v.seeking && v.paused && Math.abs(v.currentTime - at) < 0.05;
  }, t);
}

/**
 * Hovers the flying comment `id` (it holds still under the pointer) and waits for its
 * popover; resolves with the popover's `data-report` ('open', 'off', 'reported', ...).
 */
async function hoverComment(page, id) {
  await page.bringToFront();
  for (let attempt = 0; attempt < 5; attempt += 1) {
    const at = await page.waitForFunction((i) => {
      const o = document.querySelector('#overlay').getBoundingClientRect();
      const n = document.querySelector(`#overlay .danmaku[data-id="${i}"][data-interactive]`);
      if (!n) return null;
      const r = n.getBoundingClientRect();
      if (r.width < 20 || r.right < o.left + 40 || r.left > o.right - 40) return null;
      const left = Math.max(r.left, o.left + 4);
      const right = Math.min(r.right, o.right - 4);
      return { x: left + Math.min(30, (right - left) / 2), y: r.top + r.height / 2 };
    }, id, { timeout: 15_000 }).then((h) => h.jsonValue());
    await page.mouse.move(at.x, at.y);
    const shown = await page.waitForSelector(`#like-pop[data-id="${id}"]:not([hidden])`, { timeout: 2000 }).then(() => true, () => false);
    if (shown) return page.getAttribute('#like-pop', 'data-report');
    await page.mouse.move(1, 1);
  }
  throw new Error(`could not hover comment ${id}`);
}

before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium is missing at ${CHROMIUM}: run tests/e2e/run.sh, which installs it.`);
  if (!existsSync(BIN)) throw new Error(`The server binary is missing at ${BIN}: run cargo build first.`);
  // Folding on as in production (said explicitly: these scenarios depend on it).
  const started = await launchServer('reports', { args: ['--fold-window-ms', '5000'] });
  server = started.child;
  dataDir = started.dataDir;
  base = started.base;
  tokens.admin = await harnessMint(base, 'admin', 'admin');
  const users = [['fa', 'free'], ['fb', 'free'], ['fc', 'free'], ['fd', 'free'], ['ana', 'free'], ['rae', 'free'],
    ['rob', 'free'], ['ray', 'member'], ['wen', 'member'], ['mo', 'free']];
  for (const [sub, role] of users) tokens[sub] = await harnessMint(base, sub, role);
  for (const [id, title] of [[FOLD_VIDEO, 'Fold room'], [REPORT_VIDEO, 'Report room']]) {
    const v = await rest(`/api/videos/${id}`, { method: 'PUT', token: tokens.admin, body: { title, tier: 'free' } });
    assert.ok(v.status === 200 || v.status === 201, v.text);
  }
  const m = await rest(`/api/videos/${REPORT_VIDEO}/moderators/mo`, { method: 'PUT', token: tokens.admin });
  assert.ok(m.status === 200 || m.status === 201, m.text);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--lang=en-US'],
  });
});

after(async () => {
  for (const c of contexts) await c.close().catch(() => {});
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

describe('spam waves, reports and webhooks', () => {
  test('1. a spam wave: the viewer\'s page shows ×N on the first comment and never the copies', async () => {
    const viewer = await openVideo('wen-fold', FOLD_VIDEO, 'wen');
    const wave = [['fa', '2333'], ['fb', '23333'], ['fc', '\uff12\uff13\uff13\uff13\uff13'], ['fd', '233333333']];
    const views = [];
    for (const [sub, text] of wave) views.push(await post(sub, FOLD_VIDEO, text, 2));
    const [first, ...copies] = views;
    assert.ok(views.every((v) => Number.isSafeInteger(v.id) && v.state === undefined), `every copy is stored and visible: ${JSON.stringify(views)}`);

    // The count reaches the page: on the listed comment and on its flying copy.
    await viewer.waitForSelector(`#comment-list li[data-id="${first.id}"] .comment-fold[data-fold="${wave.length}"]`);
    assert.equal(await viewer.textContent(`#comment-list li[data-id="${first.id}"] .comment-fold`), `×${wave.length}`);
    await viewer.waitForSelector(`#overlay .danmaku[data-id="${first.id}"][data-fold="${wave.length}"] .danmaku-fold`, { state: 'attached' });
    assert.equal(await viewer.textContent(`#overlay .danmaku[data-id="${first.id}"] .danmaku-fold`), `×${wave.length}`);
    // The badge came after the comment was placed: its flight now ends one whole width
    // (badge included) past the left edge, so no part of it vanishes early.
    const flight = await viewer.$eval(`#overlay .danmaku[data-id="${first.id}"]`, (n) => {
      const anim = n.getAnimations()[0];
      const frames = anim.effect.getKeyframes();
      return { width: n.offsetWidth, end: frames[frames.length - 1].transform };
    });
    assert.equal(flight.end, `translateX(${-flight.width}px)`);
    assert.match(await viewer.getAttribute(`#comment-list li[data-id="${first.id}"] .comment-fold`, 'title'), /stands for 4 comments/);
    await viewer.screenshot({ path: join(SHOTS, 'fold-wave.png') });

    // A sentinel after the wave: once the page has it, any copy would have come first.
    const sentinel = await post('admin', FOLD_VIDEO, `sentinel ${RUN}`, 3);
    await waitListed(viewer, sentinel.id);
    for (const c of copies) {
      assert.equal(await viewer.$(`#comment-list li[data-id="${c.id}"]`), null, `copy ${c.id} is listed`);
      assert.equal(await viewer.$(`#overlay .danmaku[data-id="${c.id}"]`), null, `copy ${c.id} flies`);
    }
    const listedTexts = await viewer.$$eval('#comment-list .comment-text', (ns) => ns.map((n) => n.textContent));
    assert.deepEqual(listedTexts, [`sentinel ${RUN}`, '2333'], 'the list holds the first of the wave and the sentinel only');
    // History keeps every copy (a reload lists them): folding is a delivery matter.
    const h = await rest(`/api/videos/${FOLD_VIDEO}/danmaku`, { token: tokens.wen });
    assert.deepEqual(h.json.items.map((d) => d.id).sort((a, b) => a - b), [...views.map((v) => v.id), sentinel.id].sort((a, b) => a - b));

    assert.deepEqual(problems, []);
    await viewer.close();
  });

  test('2. reports: one from the popover, two over REST; the viewer\'s page drops it live; the console\'s Reports list shows it, approves and deletes', async () => {
    const [reporter, author, viewer, guest] = await Promise.all([
      openVideo('rae', REPORT_VIDEO, 'rae'),
      openVideo('ana', REPORT_VIDEO, 'ana'),
      openVideo('wen-report', REPORT_VIDEO, 'wen'),
      openVideo('guest', REPORT_VIDEO, null),
    ]);
    // The author posts from the page (the server never echoes a comment to its author's
    // sockets: the page draws it from the reply), at 4 s of the paused video.
    const text = `report me ${RUN}`;
    await freezeAt(author, 4);
    const target = { id: await composerPost(author, text) };
    const other = await post('rob', REPORT_VIDEO, `mildly annoying ${RUN}`, 5);
    // Every page shows the video at 6.5 s, paused: both comments sit still on screen.
    for (const page of [reporter, author, viewer, guest]) {
      await waitListed(page, other.id);
      await waitListed(page, target.id);
      await freezeAt(page, 6.5);
      await page.waitForSelector(`#overlay .danmaku[data-id="${target.id}"]`);
    }

    // No Report on one's own comment, nor for guests.
    assert.equal(await hoverComment(author, target.id), 'off', 'the author is offered a Report on their own comment');
    assert.equal(await author.isVisible('#like-pop .report-btn'), false);
    assert.equal(await hoverComment(guest, target.id), 'off', 'a guest is offered a Report');
    assert.equal(await guest.isVisible('#like-pop .report-btn'), false);

    // The reporter: the popover's Report opens a small form; the reason goes with it.
    assert.equal(await hoverComment(reporter, target.id), 'open');
    assert.equal(await reporter.textContent('#like-pop .report-btn'), 'Report');
    await reporter.click('#like-pop .report-btn');
    await reporter.waitForSelector('#like-pop .report-form:not([hidden]) .report-reason');
    await reporter.fill('#like-pop .report-reason', `spam via the page ${RUN}`);
    await reporter.locator('#stage').screenshot({ path: join(SHOTS, 'report-form.png') });
    await reporter.click('#like-pop .report-send');
    const said = await waitText(reporter, '#like-pop .report-outcome[data-outcome="reported"]', /^Reported/);
    assert.match(said, /thank you/);
    await reporter.locator('#stage').screenshot({ path: join(SHOTS, 'report-done.png') });
    assert.equal(await reporter.getAttribute('#like-pop', 'data-report'), 'reported');
    assert.equal(await reporter.isDisabled('#like-pop .report-btn'), true);
    assert.equal(await reporter.textContent('#like-pop .report-btn'), 'Reported');
    const list1 = await rest(`/api/moderation/reports?video=${REPORT_VIDEO}`, { token: tokens.admin });
    assert.equal(list1.status, 200, list1.text);
    assert.deepEqual(list1.json.map((r) => [r.danmaku.id, r.reports, r.reasons]), [[target.id, 1, [`spam via the page ${RUN}`]]]);
    // The page's report is the reporter's: again over REST it is not new.
    assert.deepEqual(await report('rae', target.id), { id: target.id, new: false });
    await reporter.mouse.move(1, 1);

    // Two more reporters: the threshold hides it; every page of the audience drops it live.
    await report('rob', target.id, `rude ${RUN}`);
    assert.ok(await viewer.$(`#comment-list li[data-id="${target.id}"]`), 'hidden below the threshold');
    await report('ray', target.id);
    await waitGone(viewer, target.id);
    await waitGone(reporter, target.id);
    await waitGone(guest, target.id);
    const history = await rest(`/api/videos/${REPORT_VIDEO}/danmaku`, { token: tokens.wen });
    assert.ok(!history.json.items.some((d) => d.id === target.id), 'the audience\'s history still has it');
    // Another comment, reported once: below the threshold, still on show.
    await report('wen', other.id, `meh ${RUN}`);

    // The console (a room moderator): the Reports list, most reported first; the queue has the hidden one.
    const consolePage = await newPage('mo-console');
    await consolePage.goto(`${base}/admin`);
    await pasteToken(consolePage, tokens.mo);
    await waitText(consolePage, '#signin-status', /^Signed in as mo, a room moderator of /);
    assert.equal(await consolePage.isVisible('#webhooks-panel'), false, 'a room moderator sees the Webhooks panel');
    await consolePage.fill('#comments-video', REPORT_VIDEO);
    await consolePage.click('#comments-form button');
    const row = `#reports-table tr[data-id="${target.id}"]`;
    await consolePage.waitForSelector(`${row}[data-reports="3"][data-state="held"]`);
    await consolePage.waitForSelector(`#reports-table tr[data-id="${other.id}"][data-reports="1"][data-state="visible"]`);
    assert.equal(await consolePage.$eval('#reports-view option[value="all"]', (o) => o.disabled), true, 'a moderator reads only their videos\' reports');
    const order = await consolePage.$$eval('#reports-table tbody tr', (trs) => trs.map((tr) => Number(tr.dataset.id)));
    assert.deepEqual(order, [target.id, other.id], 'most reported first');
    const cells = await consolePage.$$eval(`${row} td`, (tds) => tds.map((td) => td.textContent));
    assert.equal(cells[1], REPORT_VIDEO);
    assert.ok(cells[3].startsWith(text), `text cell: ${cells[3]}`);
    assert.match(cells[3], /hidden$/, 'marked hidden');
    assert.equal(cells[4], 'ana');
    assert.equal(cells[5], '3');
    const reasons = await consolePage.$$eval(`${row} .reason-list li`, (lis) => lis.map((li) => li.textContent));
    assert.deepEqual(reasons.sort(), [`rude ${RUN}`, `spam via the page ${RUN}`].sort());
    assert.equal(await consolePage.$(`#reports-table tr[data-id="${other.id}"] button[data-report="approve"]`), null, 'a visible one offers Approve');
    await consolePage.waitForSelector(`#queue-table tr[data-id="${target.id}"]`);
    await consolePage.mouse.move(0, 0);
    await consolePage.locator('#comments-panel').screenshot({ path: join(SHOTS, 'admin-reports.png') });

    // Approve it from the Reports list: published again (the viewer's page gets it back),
    // off the list and the queue (its count starts over).
    await consolePage.fill('#reports-reason', `fine after all ${RUN}`);
    await consolePage.click(`${row} button[data-report="approve"]`);
    await waitText(consolePage, '#reports-result', new RegExp(`^Approved comment ${target.id}: the audience sees it now\\.$`));
    await consolePage.waitForSelector(row, { state: 'detached' });
    await consolePage.waitForSelector(`#queue-table tr[data-id="${target.id}"]`, { state: 'detached' });
    await waitListed(viewer, target.id);
    // Delete the other one from the list: gone from the viewer's page.
    await consolePage.click(`#reports-table tr[data-id="${other.id}"] button[data-report="delete"]`);
    await waitText(consolePage, '#reports-result', new RegExp(`^Deleted comment ${other.id}; `));
    await waitGone(viewer, other.id);
    await waitText(consolePage, '#reports-table tbody', new RegExp(`No reported comments on ${REPORT_VIDEO}\\.`));
    await consolePage.waitForSelector('#audit-table tr[data-action="hidden_by_reports"]');
    assert.match(await consolePage.textContent('#audit-table tr[data-action="hidden_by_reports"]'), /hidden by reports/);

    assert.deepEqual(problems, []);
    for (const page of [reporter, author, viewer, guest, consolePage]) await page.close();
  });

  test('3. webhooks: the admin\'s panel refuses a short secret with the server\'s message, creates, lists and deletes one', async () => {
    const page = await newPage('admin-webhooks');
    await page.goto(`${base}/admin`);
    await page.click('#login-admin');
    await page.waitForFunction(() => document.querySelector('#role-badge').dataset.role === 'admin');
    await page.waitForSelector('#webhooks-panel:not([hidden])');
    await waitText(page, '#webhook-table tbody', /^No webhooks yet\.$/);

    const url = 'http://127.0.0.1:9/hook';
    await page.fill('#webhook-url', url);
    await page.check('#webhook-events input[value="danmaku.posted"]');
    await page.check('#webhook-events input[value="room.occupied"]');
    await page.fill('#webhook-secret', 'too short');
    await page.fill('#webhook-description', `e2e ${RUN}`);
    await page.click('#webhook-create');
    await waitText(page, '#webhook-result', /^Could not create the webhook: invalid_secret: /);
    assert.equal((await rest('/api/webhooks', { token: tokens.admin })).json.length, 0, 'a refused webhook was stored');

    await page.fill('#webhook-secret', `e2e-secret-${RUN}-0123456789`);
    await page.click('#webhook-create');
    await waitText(page, '#webhook-result', /^Created webhook .+ for http:\/\/127\.0\.0\.1:9\/hook\.$/);
    const listed = await rest('/api/webhooks', { token: tokens.admin });
    assert.equal(listed.status, 200, listed.text);
    assert.equal(listed.json.length, 1);
    const hook = listed.json[0];
    assert.equal(hook.url, url);
    assert.deepEqual([...hook.events].sort(), ['danmaku.posted', 'room.occupied']);
    assert.equal(hook.description, `e2e ${RUN}`);
    assert.equal(hook.secret, undefined, 'the server returned the secret');
    const row = `#webhook-table tr[data-id="${hook.id}"]`;
    await page.waitForSelector(row);
    assert.equal(await page.textContent(`${row} .hook-url`), url);
    assert.deepEqual(await page.$$eval(`${row} .hook-events code`, (cs) => cs.map((c) => c.textContent).sort()), ['danmaku.posted', 'room.occupied']);
    for (const stat of ['delivered', 'failed', 'pending']) assert.match(await page.textContent(`${row} td[data-stat="${stat}"]`), /^\d+$/);
    assert.equal(await page.inputValue('#webhook-secret'), '', 'the secret stays in the form');
    await page.mouse.move(0, 0);
    await page.locator('#webhooks-panel').screenshot({ path: join(SHOTS, 'admin-webhooks.png') });

    await page.click(`${row} button`);
    await waitText(page, '#webhook-result', new RegExp(`^Deleted webhook ${hook.id} \\(`));
    await page.waitForSelector(row, { state: 'detached' });
    assert.deepEqual((await rest('/api/webhooks', { token: tokens.admin })).json, []);
    const gone = await rest(`/api/webhooks/${hook.id}`, { token: tokens.admin });
    assert.equal(gone.status, 404, gone.text);

    assert.deepEqual(problems, []);
    await page.close();
  });
});
