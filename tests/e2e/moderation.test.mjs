// The admin console's Moderation panel in headless Chromium against the real server
// (issue 13): an admin grants a room moderator, mutes a user in one video with a reason
// (REST shows the mute holds there and nowhere else), sees the mute listed and lifts it,
// deletes a comment with a reason, and reads the audit log (this video's, then every
// video's, paged with "Older"); then the room moderator signs in to the console with a
// pasted token and sees only their video's mutes and log, the admin-only controls
// disabled, moderates there, and is refused (not_moderator) on another video. Last, the
// room moderator sets slow mode (30 s for free users: a free user's second post within
// 30 s is a 429 cooldown) and a flood rule from the panel, and clears both (REST agrees
// at each step). Saves target/e2e/admin-moderation.png (the admin),
// admin-moderation-moderator.png and admin-room-rules.png.
//
// Like the other files it starts `danmaku serve --demo` on a fresh data directory, mints
// demo tokens, and waits for DOM conditions, never for fixed times.
//
// Run: cd tests/e2e && node --test moderation.test.mjs (with the binary built and
// node_modules installed; DANMAKU_BIN and DANMAKU_STATIC_DIR as for e2e.test.mjs).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { BIN, CHROMIUM, SHOTS, launchServer, rest as harnessRest, mint as harnessMint } from './harness.mjs';

const RUN = Date.now().toString(36);
/** The moderated video, and another one bob does not moderate. */
const VIDEO = 'mod-a';
const OTHER = 'mod-b';
const SPAM = `buy followers at example.test ${RUN}`;

let server;
let base;
let context;
let dataDir;
let profileDir;
const tokens = {};
const problems = [];

// ---------------------------------------------------------------------------------------
// Harness (the pattern of admin-zh.test.mjs)

/** The server binary on 127.0.0.1:0 (tests/e2e/harness.mjs); resolves with its base URL. */
async function startServer() {
  const started = await launchServer('moderation');
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

/** Posts a comment as `who`; a cooldown refusal is waited out as the server says, then retried. */
async function post(who, video, text) {
  for (;;) {
    const r = await rest(`/api/videos/${video}/danmaku`, { method: 'POST', token: tokens[who], body: { text, time: 1 } });
    if (r.status !== 429) return r;
    await new Promise((done) => setTimeout(done, r.retryAfter * 1000));
  }
}

/** A console page that records page errors, CSP violations and missing i18n keys. */
async function consolePage(name) {
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`[${name}] page error: ${e.message}`));
  page.on('console', (m) => {
    if (/^i18n:/.test(m.text()) || /Content Security Policy/.test(m.text())) problems.push(`[${name}] ${m.text()}`);
  });
  page.on('dialog', (d) => {
    problems.push(`[${name}] unexpected ${d.type()} dialog: ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  await page.goto(`${base}/admin`);
  return page;
}

/** The rows of a table body as arrays of cell texts (skipping the "none" row). */
function rows(page, table) {
  return page.$$eval(`#${table} tbody tr:not(.empty)`, (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
}

/** Waits until an element's text matches `re`; returns the text. */
async function waitText(page, selector, re) {
  await page.waitForFunction(([s, src]) => {
    const n = document.querySelector(s);
    return n && new RegExp(src).test(n.textContent);
  }, [selector, re.source]);
  return page.textContent(selector);
}

async function loadVideo(page, video) {
  await page.fill('#comments-video', video);
  await page.click('#comments-form button');
}

before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium is missing at ${CHROMIUM}: run tests/e2e/run.sh, which installs it.`);
  if (!existsSync(BIN)) throw new Error(`The server binary is missing at ${BIN}: run cargo build first.`);
  base = await startServer();
  tokens.admin = await mint('admin', 'admin');
  tokens.bob = await mint('bob', 'free');
  tokens.carol = await mint('carol', 'member');
  tokens.dave = await mint('dave', 'member');
  for (const [id, title] of [[VIDEO, 'Moderated room'], [OTHER, 'Another room']]) {
    const r = await rest(`/api/videos/${id}`, { method: 'PUT', token: tokens.admin, body: { title, tier: 'free' } });
    assert.ok(r.status === 200 || r.status === 201, r.text);
  }
  // Dave's comment to delete (an admin deleting their own fresh comment would be a recall, not audited).
  assert.equal((await post('dave', VIDEO, SPAM)).status, 201);
  // On the other video: a mute bob must never see, and enough audit entries for two pages.
  for (let i = 0; i < 22; i++) {
    const r = await rest('/api/moderation/mutes', { method: 'PUT', token: tokens.admin, body: { sub: 'frank', video: OTHER, seconds: 3600 + i, reason: `round ${i}` } });
    assert.equal(r.status, 200, r.text);
  }
  profileDir = mkdtempSync(join(tmpdir(), 'danmaku-e2e-moderation-chromium-'));
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    locale: 'en-US',
    viewport: { width: 1280, height: 1000 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--lang=en-US'],
  });
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

describe('the Moderation panel of the admin console', () => {
  test('1. an admin grants a moderator, mutes in one video, lifts, deletes with a reason, reads the audit log', async () => {
    const page = await consolePage('admin');
    await page.click('#login-admin');
    await page.waitForFunction(() => document.querySelector('#role-badge').dataset.role === 'admin');
    await loadVideo(page, VIDEO);
    await page.waitForFunction((t) => [...document.querySelectorAll('#comment-table .comment-text')].some((n) => n.textContent === t), SPAM);
    await waitText(page, '#moderator-table tbody', /No room moderators stored for mod-a/);
    assert.equal(await page.isHidden('#moderation-role'), true, 'an admin needs no role note');
    assert.equal(await page.isHidden('#moderators-note'), true);

    // Grant bob; the server says so too.
    await page.fill('#moderator-sub', 'bob');
    await page.click('#moderator-add');
    await page.waitForSelector('#moderator-table tr[data-sub="bob"]');
    assert.equal(await page.textContent('#moderators-result'), 'bob moderates mod-a.');
    assert.deepEqual((await rows(page, 'moderator-table')).map((r) => r.slice(0, 2)), [['bob', 'admin']]);
    const me = await rest('/api/me', { token: tokens.bob });
    assert.deepEqual(me.json.moderates, [VIDEO]);

    // Mute carol in this video, with a reason: refused there, fine elsewhere.
    await page.fill('#mute-sub', 'carol');
    await page.selectOption('#mute-scope', 'video');
    await page.selectOption('#mute-seconds', '600');
    await page.fill('#mute-reason', `flooding ${RUN}`);
    await page.click('#mute-form button');
    await waitText(page, '#mute-result', /^carol is muted until .+ in mod-a\.$/);
    const refused = await post('carol', VIDEO, `while muted ${RUN}`);
    assert.equal(refused.status, 403, refused.text);
    assert.equal(refused.json.code, 'muted');
    assert.match(refused.json.message, new RegExp(`flooding ${RUN}`));
    const elsewhere = await post('carol', OTHER, `elsewhere ${RUN}`);
    assert.equal(elsewhere.status, 201, elsewhere.text);
    // A mute everywhere shows beside the video's own, for admins.
    await page.fill('#mute-sub', 'erin');
    await page.selectOption('#mute-scope', 'all');
    await page.selectOption('#mute-seconds', '3600');
    await page.fill('#mute-reason', 'spam everywhere');
    await page.click('#mute-form button');
    await waitText(page, '#mute-result', /^erin is muted until .+ everywhere\.$/);
    // And one that stays in this video, for the moderator to see.
    await page.fill('#mute-sub', 'dave');
    await page.selectOption('#mute-scope', 'video');
    await page.selectOption('#mute-seconds', '86400');
    await page.fill('#mute-reason', 'off-topic');
    await page.click('#mute-form button');
    await page.waitForSelector('#mute-table tr[data-sub="dave"]');
    const carolRow = '#mute-table tr[data-sub="carol"]';
    const listed = Object.fromEntries((await rows(page, 'mute-table')).map((r) => [r[0], r]));
    assert.deepEqual(Object.keys(listed).sort(), ['carol', 'dave', 'erin']);
    assert.equal(listed.carol[1], 'this video');
    assert.equal(listed.carol[3], `flooding ${RUN}`);
    assert.equal(listed.carol[4], 'admin');
    assert.equal(listed.erin[1], 'everywhere');
    assert.equal(listed.dave[3], 'off-topic');

    // Lift carol's mute with a reason: her post goes through again.
    await page.fill('#mute-reason', `appeal accepted ${RUN}`);
    await page.click(`${carolRow} button`);
    await page.waitForSelector(carolRow, { state: 'detached' });
    assert.equal(await page.textContent('#mutes-result'), 'carol is not muted in mod-a any more.');
    const again = await post('carol', VIDEO, `after the lift ${RUN}`);
    assert.equal(again.status, 201, again.text);

    // Delete dave's comment with a reason.
    await page.fill('#delete-reason', `spam link ${RUN}`);
    const spamRow = page.locator('#comment-table tr', { has: page.locator('.comment-text', { hasText: SPAM }) });
    const spamId = await spamRow.getAttribute('data-id');
    await spamRow.locator('button', { hasText: 'Delete' }).click();
    await page.waitForSelector(`#comment-table tr[data-id="${spamId}"]`, { state: 'detached' });
    assert.equal(await page.textContent('#comments-status'), `Deleted comment ${spamId} (reason: spam link ${RUN}); open pages were told to remove it.`);

    // The audit log of this video, newest first, with actor and reason.
    await page.waitForSelector('#audit-table tr[data-action="comment_deleted"]');
    const ids = await page.$$eval('#audit-table tbody tr[data-id]', (trs) => trs.map((tr) => Number(tr.dataset.id)));
    assert.deepEqual(ids, ids.slice().sort((a, b) => b - a), 'the log is newest first');
    const log = await rows(page, 'audit-table');
    const byAction = (a) => log.filter((r) => r[2] === a);
    assert.deepEqual(log.map((r) => r[2]),
      ['comment deleted', 'mute lifted', 'muted', 'muted', 'moderator added'], 'the video log has its five actions, and not the global mute');
    const [deleted] = byAction('comment deleted');
    assert.equal(deleted[1], 'admin · admin');
    assert.equal(deleted[3], VIDEO);
    assert.equal(deleted[4], spamId);
    assert.equal(deleted[5], `spam link ${RUN}`);
    assert.equal(deleted[6], `“${SPAM}” by dave`);
    const [lifted] = byAction('mute lifted');
    assert.deepEqual([lifted[4], lifted[5]], ['carol', `appeal accepted ${RUN}`]);
    assert.ok(byAction('muted').some((r) => r[4] === 'carol' && r[5] === `flooding ${RUN}` && /^until /.test(r[6])));
    assert.deepEqual(byAction('moderator added')[0].slice(3, 5), [VIDEO, 'bob']);
    assert.equal(await page.isHidden('#audit-older'), true);

    // Every video's log (admins): other videos and the global mute too, paged with "Older".
    await page.selectOption('#audit-view', 'all');
    await page.waitForFunction(() => [...document.querySelectorAll('#audit-table tbody tr[data-id] td:nth-child(4)')].some((td) => td.textContent === 'mod-b'));
    await page.waitForSelector('#audit-older:not([hidden])');
    const firstPage = await rows(page, 'audit-table');
    assert.equal(firstPage.length, 20);
    assert.ok(firstPage.some((r) => r[3] === 'everywhere' && r[4] === 'erin'), 'the global mute is in the log of all videos');
    await page.click('#audit-older');
    await page.waitForSelector('#audit-older', { state: 'hidden' });
    const all = await page.$$eval('#audit-table tbody tr[data-id]', (trs) => trs.map((tr) => Number(tr.dataset.id)));
    assert.equal(all.length, 22 + 6, 'two pages: 22 mutes on mod-b and the six actions of this test');
    assert.equal(new Set(all).size, all.length, 'no entry twice');
    assert.deepEqual(all, all.slice().sort((a, b) => b - a));
    await page.selectOption('#audit-view', 'video');
    await page.waitForFunction(() => document.querySelectorAll('#audit-table tbody tr[data-id]').length === 5);

    // The panel follows a language switch without a reload.
    await page.selectOption('#locale', 'zh-CN');
    await waitText(page, '#mute-table tbody', /本视频/);
    assert.equal(await page.textContent('#comments-title'), '内容管理');
    assert.equal(await page.textContent('#mutes-result'), 'carol 在 mod-a 的禁言已解除。');
    assert.match(await page.textContent('#audit-table tbody'), /删除弹幕/);
    assert.equal(await page.textContent(`${'#mute-table tr[data-sub="dave"]'} button`), '解除禁言');
    await page.selectOption('#locale', 'en');
    await waitText(page, '#mute-table tbody', /this video/);

    await page.mouse.move(0, 0);
    await page.locator('#comments-panel').screenshot({ path: join(SHOTS, 'admin-moderation.png') });
    assert.deepEqual(problems, []);
    await page.close();
  });

  test('2. a room moderator sees only their video, admin-only controls disabled, and not_moderator elsewhere', async () => {
    const page = await consolePage('bob');
    await page.click('details.paste > summary');
    await page.fill('#token-input', tokens.bob);
    await page.click('#token-apply');
    await page.waitForFunction(() => document.querySelector('#role-badge').dataset.role === 'free');
    await waitText(page, '#signin-status', /^Signed in as bob, a room moderator of mod-a:/);
    // The picker starts on the video bob moderates; its mutes and log, no other's.
    await page.waitForSelector('#mute-table tr[data-sub="dave"]');
    assert.equal(await page.inputValue('#comments-video'), VIDEO);
    assert.deepEqual((await rows(page, 'mute-table')).map((r) => r[0]), ['dave'], 'only mod-a mutes: not erin (everywhere) nor frank (mod-b)');
    await page.waitForSelector('#audit-table tr[data-action="comment_deleted"]');
    const log = await rows(page, 'audit-table');
    assert.equal(log.length, 5);
    assert.ok(log.every((r) => r[3] === VIDEO), 'only mod-a entries');
    await waitText(page, '#moderation-role', /room moderator of mod-a/);

    // Admin-only controls are disabled, with the reason said.
    assert.equal(await page.isVisible('#moderators-note'), true);
    assert.equal(await page.isDisabled('#moderator-add'), true);
    assert.equal(await page.isDisabled('#moderator-sub'), true);
    assert.equal(await page.isDisabled('#moderator-table tr[data-sub="bob"] button'), true);
    assert.equal(await page.getAttribute('#moderator-table tr[data-sub="bob"] button', 'title'), 'Only admins can do this.');
    assert.equal(await page.$eval('#mute-scope option[value="all"]', (o) => o.disabled), true);
    assert.equal(await page.$eval('#audit-view option[value="all"]', (o) => o.disabled), true);

    // Bob moderates mod-a: mutes carol there; the log says a moderator did it.
    await page.fill('#mute-sub', 'carol');
    await page.selectOption('#mute-seconds', '60');
    await page.fill('#mute-reason', `calm down ${RUN}`);
    await page.click('#mute-form button');
    await waitText(page, '#mute-result', /^carol is muted until .+ in mod-a\.$/);
    await page.waitForSelector('#mute-table tr[data-sub="carol"]');
    await page.waitForFunction(() => document.querySelectorAll('#audit-table tbody tr[data-id]').length === 6);
    const [newest] = await rows(page, 'audit-table');
    assert.deepEqual([newest[1], newest[2], newest[4], newest[5]], ['bob · moderator', 'muted', 'carol', `calm down ${RUN}`]);
    assert.equal((await post('carol', VIDEO, `muted by bob ${RUN}`)).json.code, 'muted');
    await page.mouse.move(0, 0);
    await page.locator('#comments-panel').screenshot({ path: join(SHOTS, 'admin-moderation-moderator.png') });

    // Another video: every moderation call is refused inline with the server's code.
    await loadVideo(page, OTHER);
    await waitText(page, '#mutes-result', /^Could not load the mutes: not_moderator: /);
    await waitText(page, '#audit-result', /^Could not load the audit log: not_moderator: /);
    await waitText(page, '#moderators-result', /^Could not load the moderators: not_moderator: /);
    assert.equal(await page.locator('#mute-table tbody tr').count(), 0, 'no mutes of mod-b on show');
    await page.fill('#mute-sub', 'carol');
    await page.fill('#mute-reason', '');
    await page.click('#mute-form button');
    await waitText(page, '#mute-result', /^Mute refused: not_moderator: /);
    const stillFine = await post('carol', OTHER, `never muted on mod-b ${RUN}`);
    assert.equal(stillFine.status, 201, stillFine.text);
    assert.deepEqual(problems, []);
    await page.close();
  });

  test('3. the room moderator sets slow mode and a flood rule from the console, and clears them', async () => {
    tokens.fay = await mint('fay', 'free');
    tokens.mia = await mint('mia', 'member');
    const page = await consolePage('bob-rules');
    await page.click('details.paste > summary');
    await page.fill('#token-input', tokens.bob);
    await page.click('#token-apply');
    await page.waitForFunction(() => document.querySelector('#role-badge').dataset.role === 'free');
    assert.equal(await page.inputValue('#comments-video'), VIDEO);
    // Nothing of the video's own yet: no slow mode, the server's default flood rule.
    await page.waitForFunction(() => document.querySelector('#slow-state').dataset.seconds === '0');
    assert.equal(await page.textContent('#slow-state'), `${VIDEO} has no slow mode.`);
    await page.waitForFunction(() => document.querySelector('#flood-state').dataset.source === 'default');
    assert.match(await page.textContent('#flood-state'), /^mod-a: more than 10 comments in 20 s mutes for 300 s \(the server’s default\)\./);
    assert.equal(await page.isDisabled('#slow-clear'), true, 'nothing to clear');
    assert.equal(await page.isDisabled('#flood-clear'), true, 'already the default');
    assert.equal(await page.isChecked('#slow-free'), true);
    assert.equal(await page.isChecked('#slow-member'), true);
    assert.equal(await page.isChecked('#slow-guest'), false);

    // Slow mode: 30 s for free users only, until cleared.
    await page.fill('#slow-seconds', '30');
    await page.uncheck('#slow-member');
    await page.click('#slow-save');
    await waitText(page, '#slow-result', /^Saved the slow mode of mod-a\.$/);
    await page.waitForFunction(() => document.querySelector('#slow-state').dataset.seconds === '30');
    assert.match(await page.textContent('#slow-state'), /^mod-a: slow mode of 30 s for free, until cleared \(set by bob at .+\)\.$/);
    const slow = await rest(`/api/videos/${VIDEO}/slow-mode`, { token: tokens.fay });
    assert.equal(slow.status, 200, slow.text);
    assert.deepEqual([slow.json.seconds, slow.json.roles, slow.json.until, slow.json.by], [30, ['free'], null, 'bob']);

    // A free user's first post says the interval; the second within 30 s is refused.
    const first = await rest(`/api/videos/${VIDEO}/danmaku`, { method: 'POST', token: tokens.fay, body: { text: `slow one ${RUN}`, time: 2 } });
    assert.equal(first.status, 201, first.text);
    assert.equal(first.json.slow_mode_s, 30, first.text);
    const second = await rest(`/api/videos/${VIDEO}/danmaku`, { method: 'POST', token: tokens.fay, body: { text: `slow two ${RUN}`, time: 3 } });
    assert.equal(second.status, 429, second.text);
    assert.equal(second.json.code, 'cooldown');
    assert.match(second.json.message, /slow mode \(30 s in this video\)/);
    assert.ok(second.retryAfter > 20, `Retry-After ${second.retryAfter} s is the slow mode's, not the free cooldown's`);
    // Members are not slowed by this one.
    const member = await rest(`/api/videos/${VIDEO}/danmaku`, { method: 'POST', token: tokens.mia, body: { text: `not slowed ${RUN}`, time: 3 } });
    assert.equal(member.status, 201, member.text);
    assert.equal(member.json.slow_mode_s, undefined, member.text);

    // A refusal shows the server's code and message.
    await page.fill('#slow-seconds', '0');
    await page.click('#slow-save');
    await waitText(page, '#slow-result', /^Slow mode refused: invalid_seconds: \S/);
    assert.equal(await page.$eval('#slow-result', (n) => n.dataset.tone), 'error');

    // Cleared from the panel: the next post goes through (at most the free cooldown to wait).
    await page.click('#slow-clear');
    await waitText(page, '#slow-result', /^mod-a has no slow mode any more\.$/);
    await page.waitForFunction(() => document.querySelector('#slow-state').dataset.seconds === '0');
    assert.equal((await rest(`/api/videos/${VIDEO}/slow-mode`, { token: tokens.fay })).json.code, 'no_slow_mode');
    let after = await rest(`/api/videos/${VIDEO}/danmaku`, { method: 'POST', token: tokens.fay, body: { text: `slow three ${RUN}`, time: 4 } });
    if (after.status === 429) {
      assert.doesNotMatch(after.json.message, /slow mode/, after.text);
      assert.ok(after.retryAfter <= 3, `Retry-After ${after.retryAfter} s after the slow mode was cleared`);
      await new Promise((done) => setTimeout(done, after.retryAfter * 1000));
      after = await rest(`/api/videos/${VIDEO}/danmaku`, { method: 'POST', token: tokens.fay, body: { text: `slow three ${RUN}`, time: 4 } });
    }
    assert.equal(after.status, 201, after.text);
    assert.equal(after.json.slow_mode_s, undefined, after.text);

    // The flood rule: more than 2 in 10 s mutes for 60 s, the video's own.
    await page.fill('#flood-max', '2');
    await page.fill('#flood-window', '10');
    await page.fill('#flood-mute', '60');
    await page.fill('#flood-escalation', '');
    await page.click('#flood-save');
    await waitText(page, '#flood-result', /^Saved the flood rule of mod-a\.$/);
    await page.waitForFunction(() => document.querySelector('#flood-state').dataset.source === 'video');
    assert.match(await page.textContent('#flood-state'), /^mod-a: more than 2 comments in 10 s mutes for 60 s \(this video’s own rule\)\. Set by bob at .+\.$/);
    await page.mouse.move(0, 0);
    await page.locator('#room-rules').screenshot({ path: join(SHOTS, 'admin-room-rules.png') });
    const own = await rest(`/api/videos/${VIDEO}/flood-rule`, { token: tokens.bob });
    assert.equal(own.status, 200, own.text);
    assert.deepEqual([own.json.source, own.json.max_comments, own.json.window_s, own.json.mute_s, own.json.by], ['video', 2, 10, 60, 'bob']);

    // A broken escalation is the server's 422, shown as it says; the rule stays.
    await page.fill('#flood-escalation', '0');
    await page.click('#flood-save');
    await waitText(page, '#flood-result', /^Flood rule refused: invalid_escalation: \S/);
    assert.equal((await rest(`/api/videos/${VIDEO}/flood-rule`, { token: tokens.bob })).json.max_comments, 2);

    // "Use the default": the server's default rule is in force again.
    await page.click('#flood-clear');
    await waitText(page, '#flood-result', /^mod-a follows the default flood rule again\.$/);
    await page.waitForFunction(() => document.querySelector('#flood-state').dataset.source === 'default');
    const back = await rest(`/api/videos/${VIDEO}/flood-rule`, { token: tokens.bob });
    assert.equal(back.status, 200, back.text);
    assert.deepEqual([back.json.source, back.json.by, back.json.set_at], ['default', null, null]);
    assert.equal(await page.isDisabled('#flood-clear'), true);

    // On a video bob does not moderate the panel says so and offers nothing.
    await loadVideo(page, OTHER);
    await waitText(page, '#flood-state', /^You do not moderate mod-b/);
    assert.equal(await page.isDisabled('#slow-save'), true);
    assert.equal(await page.isDisabled('#flood-save'), true);
    await page.mouse.move(0, 0);
    assert.deepEqual(problems, []);
    await page.close();
  });
});
