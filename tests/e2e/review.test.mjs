// Held and shadowed comments in headless Chromium against the real server: the video
// page's comment list and overlay for an author, a room moderator and the rest of the
// audience, and the admin console's review queue and hold rule.
//
//   1. A shadow ban seen from three pages: the shadow-banned author's page shows the
//      comment like any other; the moderator's marks it "shadowed" and does not fly it;
//      another viewer never gets it (proved against a sentinel posted after it, which that
//      viewer does get). History agrees: the author's reload shows it, the viewer's REST
//      history lacks it.
//   2. A held comment approved: the moderator sets the hold rule in the console; a free
//      poster's comment shows "pending review" on its page and flies nowhere; the
//      moderator approves it from the console's queue; the poster's mark clears and
//      another viewer's page gets the comment live. A second one is rejected: it leaves
//      the poster's page. Saves target/e2e/admin-review-queue.png.
//   3. The console as an admin: a shadow ban from the form, listed and lifted; the block
//      rules editor shows the server's refusal of a broken regex, then saves a rule the
//      server applies.
//
// Like the other files it starts `danmaku serve --demo` on a fresh data directory, mints
// demo tokens, and waits for DOM conditions, never for fixed times.
//
// Run: cd tests/e2e && node --test review.test.mjs (with the binary built and
// node_modules installed; DANMAKU_BIN and DANMAKU_STATIC_DIR as for e2e.test.mjs).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { BIN, CHROMIUM, SHOTS, launchServer, rest as harnessRest, mint as harnessMint } from './harness.mjs';

const RUN = Date.now().toString(36);
const SHADOW_VIDEO = 'rv-shadow';
const HOLD_VIDEO = 'rv-hold';

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

/** Pastes a token into a page's sign-in box (the video page and the console share the markup). */
async function pasteToken(page, token) {
  await page.click('details.paste > summary');
  await page.fill('#token-input', token);
  await page.click('#token-apply');
}

/** Waits for the welcome as `sub`, the joined room and the history of that identity. */
async function waitSignedIn(page, sub) {
  await page.waitForFunction((who) => {
    const s = window.danmakuDemo && window.danmakuDemo.state;
    return s && s.welcomed && s.user && s.user.sub === who
      && document.querySelector('#room-status').dataset.status === 'joined'
      && s.historyFor === `${s.user.sub}|${s.user.role}`;
  }, sub);
}

/** The video page of `video`, signed in as `sub` with a pasted token. */
async function openVideo(name, video, sub) {
  const page = await newPage(name);
  await page.goto(`${base}/watch/${video}`);
  await pasteToken(page, tokens[sub]);
  await waitSignedIn(page, sub);
  await page.evaluate(() => window.scrollTo(0, 0));
  return page;
}

/**
 * Posts through the page's composer; resolves with the stored comment's id. A free user's
 * cooldown refusal disables Send with a countdown: the post goes again once it is back on.
 */
async function composerPost(page, text) {
  let last;
  for (let attempt = 0; attempt < 3; attempt += 1) {
    await page.waitForFunction(() => !document.querySelector('#dm-send').disabled);
    const before = await page.evaluate(() => window.danmakuDemo.state.posts);
    await page.fill('#dm-text', text);
    await page.click('#dm-send');
    await page.waitForFunction((n) => window.danmakuDemo.state.posts > n, before);
    last = await page.evaluate(() => window.danmakuDemo.state.lastPost);
    if (last.ok || last.code !== 'cooldown') break;
  }
  assert.equal(last.ok, true, `the post of "${text}" failed: ${JSON.stringify(last)}`);
  assert.equal(last.text, text);
  return last.id;
}

/** The comment list's entry for `id` as data: {state, mine, badge, text}, or null. */
function listed(page, id) {
  return page.evaluate((i) => {
    const li = document.querySelector(`#comment-list li[data-id="${i}"]`);
    if (!li) return null;
    const badge = li.querySelector('.comment-badge');
    return {
      state: li.dataset.state ?? null,
      mine: li.dataset.mine ?? null,
      badge: badge ? { kind: badge.dataset.badge, text: badge.textContent } : null,
      text: li.querySelector('.comment-text').textContent,
    };
  }, id);
}

function waitListed(page, id, stateWanted) {
  return page.waitForFunction(([i, s]) => {
    const li = document.querySelector(`#comment-list li[data-id="${i}"]`);
    return li && (s === undefined || (li.dataset.state ?? null) === s);
  }, [id, stateWanted]);
}

function onOverlay(page, id) {
  return page.evaluate((i) => document.querySelectorAll(`#overlay .danmaku[data-id="${i}"]`).length, id);
}

function waitOnOverlay(page, id) {
  return page.waitForSelector(`#overlay .danmaku[data-id="${id}"]`, { state: 'attached' });
}

async function waitText(page, selector, re) {
  await page.waitForFunction(([s, src]) => {
    const n = document.querySelector(s);
    return n && new RegExp(src).test(n.textContent);
  }, [selector, re.source]);
  return page.textContent(selector);
}

before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium is missing at ${CHROMIUM}: run tests/e2e/run.sh, which installs it.`);
  if (!existsSync(BIN)) throw new Error(`The server binary is missing at ${BIN}: run cargo build first.`);
  const started = await launchServer('review');
  server = started.child;
  dataDir = started.dataDir;
  base = started.base;
  tokens.admin = await harnessMint(base, 'admin', 'admin');
  for (const [sub, role] of [['sam', 'free'], ['vic', 'free'], ['mo', 'free'], ['pia', 'free'], ['pat', 'free'], ['wen', 'member']]) {
    tokens[sub] = await harnessMint(base, sub, role);
  }
  for (const [id, title] of [[SHADOW_VIDEO, 'Shadow room'], [HOLD_VIDEO, 'Held room']]) {
    const v = await rest(`/api/videos/${id}`, { method: 'PUT', token: tokens.admin, body: { title, tier: 'free' } });
    assert.ok(v.status === 200 || v.status === 201, v.text);
    const m = await rest(`/api/videos/${id}/moderators/mo`, { method: 'PUT', token: tokens.admin });
    assert.ok(m.status === 200 || m.status === 201, m.text);
  }
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

describe('held and shadowed comments on the pages', () => {
  test('1. a shadow-banned author sees an ordinary comment, the moderator sees it marked, another viewer never gets it', async () => {
    const ban = await rest('/api/moderation/shadow-bans', {
      method: 'PUT', token: tokens.admin, body: { sub: 'sam', video: SHADOW_VIDEO, seconds: 3600, reason: `e2e ${RUN}` },
    });
    assert.equal(ban.status, 200, ban.text);
    assert.equal(ban.json.sub, 'sam');
    const [s, v, m] = await Promise.all([
      openVideo('sam', SHADOW_VIDEO, 'sam'),
      openVideo('vic', SHADOW_VIDEO, 'vic'),
      openVideo('mo', SHADOW_VIDEO, 'mo'),
    ]);

    const text = `shh ${RUN}`;
    const id = await composerPost(s, text);
    const lastPost = await s.evaluate(() => window.danmakuDemo.state.lastPost);
    assert.equal(lastPost.held, false, 'the shadowed post must not read as held');
    assert.equal(await s.getAttribute('#dm-ok', 'data-held'), 'false');
    assert.match(await s.textContent('#dm-ok'), /^Sent at \d+:\d\d\.\d\.$/, 'the author is told what any poster is told');

    // Sam's page: listed and flown like any comment, no mark of any kind.
    await waitListed(s, id);
    assert.deepEqual(await listed(s, id), { state: null, mine: null, badge: null, text });
    await waitOnOverlay(s, id);
    assert.equal(await s.getAttribute(`#overlay .danmaku[data-id="${id}"]`, 'data-source'), 'own');

    // The moderator's page: listed, marked shadowed, not flown.
    await waitListed(m, id, 'shadow');
    const marked = await listed(m, id);
    assert.equal(marked.badge.kind, 'shadow');
    assert.equal(marked.badge.text, 'shadowed');
    assert.equal(marked.text, text);

    // A sentinel from someone not banned, posted after sam's comment: once a page has it,
    // sam's comment would have come first (one room's events are ordered).
    const sentinelText = `sentinel ${RUN}`;
    const sentinel = await rest(`/api/videos/${SHADOW_VIDEO}/danmaku`, { method: 'POST', token: tokens.pia, body: { text: sentinelText, time: 0.5 } });
    assert.equal(sentinel.status, 201, sentinel.text);
    assert.equal(sentinel.json.state, undefined);
    for (const page of [v, m, s]) await waitListed(page, sentinel.json.id, null);
    await waitOnOverlay(v, sentinel.json.id);
    await waitOnOverlay(m, sentinel.json.id);
    assert.equal(await listed(v, id), null, 'the viewer lists the shadowed comment');
    assert.equal(await onOverlay(v, id), 0, 'the viewer flies the shadowed comment');
    assert.equal(await v.evaluate((t) => document.body.textContent.includes(t), text), false, 'the shadowed text is somewhere on the viewer\'s page (event log?)');
    assert.equal(await onOverlay(m, id), 0, 'the moderator\'s page flies a shadowed comment');

    // History: sam's reload still shows it, plain; the viewer's history lacks it.
    await s.reload();
    await waitSignedIn(s, 'sam');
    await waitListed(s, id);
    assert.deepEqual(await listed(s, id), { state: null, mine: null, badge: null, text });
    const samHistory = await rest(`/api/videos/${SHADOW_VIDEO}/danmaku`, { token: tokens.sam });
    const samRow = samHistory.json.items.find((d) => d.id === id);
    assert.ok(samRow, 'sam\'s history lacks the comment');
    assert.equal(samRow.state, undefined, 'sam\'s history tells sam about the shadow ban');
    const vicHistory = await rest(`/api/videos/${SHADOW_VIDEO}/danmaku`, { token: tokens.vic });
    assert.equal(vicHistory.status, 200, vicHistory.text);
    assert.ok(vicHistory.json.items.some((d) => d.id === sentinel.json.id), 'the viewer\'s history lacks the sentinel');
    assert.ok(!vicHistory.json.items.some((d) => d.id === id), 'the viewer\'s history has the shadowed comment');
    const moHistory = await rest(`/api/videos/${SHADOW_VIDEO}/danmaku`, { token: tokens.mo });
    assert.equal(moHistory.json.items.find((d) => d.id === id).state, 'shadow');
    // The moderator's reload marks it again, from history.
    await m.reload();
    await waitSignedIn(m, 'mo');
    await waitListed(m, id, 'shadow');
    assert.equal(await onOverlay(m, id), 0);

    assert.deepEqual(problems, []);
    for (const page of [s, v, m]) await page.close();
  });

  test('2. a held comment: pending on its poster\'s page, approved from the console\'s queue, then live for the audience; a rejected one leaves', async () => {
    // The moderator signs in to the console and holds free users' comments in the video.
    const consolePage = await newPage('mo-console');
    await consolePage.goto(`${base}/admin`);
    await pasteToken(consolePage, tokens.mo);
    await waitText(consolePage, '#signin-status', /^Signed in as mo, a room moderator of /);
    await consolePage.fill('#comments-video', HOLD_VIDEO);
    await consolePage.click('#comments-form button');
    await waitText(consolePage, '#hold-state', new RegExp(`^${HOLD_VIDEO} holds no comment for review\\.$`));
    await waitText(consolePage, '#queue-table tbody', new RegExp(`No comment of ${HOLD_VIDEO} waits for review`));
    assert.equal(await consolePage.$eval('#queue-view option[value="all"]', (o) => o.disabled), true, 'a moderator reads only their videos\' queue');
    assert.equal(await consolePage.$eval('#rules-scope option[value="all"]', (o) => o.disabled), true);
    await consolePage.check('#hold-free');
    await consolePage.click('#hold-save');
    await waitText(consolePage, '#hold-state', new RegExp(`^${HOLD_VIDEO} holds comments of: free \\(set by mo at `));
    assert.equal(await consolePage.textContent('#hold-result'), `Saved the hold rule of ${HOLD_VIDEO}.`);
    const rule = await rest(`/api/videos/${HOLD_VIDEO}/hold`, { token: tokens.admin });
    assert.equal(rule.status, 200, rule.text);
    assert.deepEqual(rule.json.roles, ['free']);

    const [p, w, mPage] = await Promise.all([
      openVideo('pat', HOLD_VIDEO, 'pat'),
      openVideo('wen', HOLD_VIDEO, 'wen'),
      openVideo('mo-page', HOLD_VIDEO, 'mo'),
    ]);

    const text = `wait ${RUN}`;
    const id = await composerPost(p, text);
    assert.equal((await p.evaluate(() => window.danmakuDemo.state.lastPost)).held, true);
    assert.equal(await p.getAttribute('#dm-ok', 'data-held'), 'true');
    await waitText(p, '#dm-ok', /waits for a moderator’s approval/);
    await waitListed(p, id, 'held');
    assert.deepEqual(await listed(p, id), { state: 'held', mine: 'true', badge: { kind: 'pending', text: 'pending review' }, text });
    assert.equal(await onOverlay(p, id), 0, 'a pending comment flies on its poster\'s page');
    // The moderator's page marks it held (not the poster's "pending"), and flies it nowhere.
    await waitListed(mPage, id, 'held');
    assert.deepEqual((await listed(mPage, id)).badge, { kind: 'held', text: 'held' });
    assert.equal(await onOverlay(mPage, id), 0);

    // The console's queue, after a Load of the video: the comment and its author.
    await consolePage.click('#comments-form button');
    const row = `#queue-table tr[data-id="${id}"]`;
    await consolePage.waitForSelector(row);
    const cells = await consolePage.$$eval(`${row} td`, (tds) => tds.map((td) => td.textContent));
    assert.deepEqual([cells[0], cells[1], cells[3], cells[4]], [String(id), HOLD_VIDEO, text, 'pat']);
    // The held comment is marked in the panel's comment table too.
    await consolePage.waitForSelector(`#comment-table tr[data-id="${id}"] .comment-badge[data-badge="held"]`);
    assert.equal(await listed(w, id), null, 'the audience lists a held comment');
    await consolePage.mouse.move(0, 0);
    await consolePage.locator('#comments-panel').screenshot({ path: join(SHOTS, 'admin-review-queue.png') });

    // Approve it from the console.
    await consolePage.fill('#queue-reason', `fine ${RUN}`);
    await consolePage.click(`${row} button[data-review="approve"]`);
    await waitText(consolePage, '#queue-result', new RegExp(`^Approved comment ${id}: the audience sees it now\\.$`));
    await consolePage.waitForSelector(row, { state: 'detached' });

    // The poster's mark clears and it flies; the audience gets it live; the moderator's page unmarks it.
    await waitListed(p, id, null);
    assert.deepEqual(await listed(p, id), { state: null, mine: null, badge: null, text });
    await waitOnOverlay(p, id);
    await waitListed(w, id, null);
    await waitOnOverlay(w, id);
    assert.equal(await w.getAttribute(`#overlay .danmaku[data-id="${id}"]`, 'data-source'), 'live');
    await waitListed(mPage, id, null);
    const approved = await rest(`/api/videos/${HOLD_VIDEO}/danmaku`, { token: tokens.wen });
    assert.equal(approved.json.items.find((d) => d.id === id)?.state, undefined);

    // A second one, rejected: it leaves the poster's page and never reaches the audience.
    const text2 = `nope ${RUN}`;
    const id2 = await composerPost(p, text2);
    await waitListed(p, id2, 'held');
    await consolePage.click('#queue-reload');
    await consolePage.waitForSelector(`#queue-table tr[data-id="${id2}"]`);
    await consolePage.click(`#queue-table tr[data-id="${id2}"] button[data-review="reject"]`);
    await waitText(consolePage, '#queue-result', new RegExp(`^Rejected comment ${id2}: it is gone for everyone\\.$`));
    await p.waitForSelector(`#comment-list li[data-id="${id2}"]`, { state: 'detached' });
    await p.waitForSelector('#toasts .toast[data-reviewed="rejected"]');
    await mPage.waitForSelector(`#comment-list li[data-id="${id2}"]`, { state: 'detached' });
    // The audit log says who reviewed what.
    await consolePage.waitForSelector('#audit-table tr[data-action="comment_rejected"]');
    await consolePage.waitForSelector('#audit-table tr[data-action="comment_approved"]');
    assert.equal(await listed(w, id2), null);
    assert.equal(await w.evaluate((t) => document.body.textContent.includes(t), text2), false);

    assert.deepEqual(problems, []);
    for (const page of [p, w, mPage, consolePage]) await page.close();
  });

  test('3. the console as an admin: a shadow ban from the form, listed and lifted; the block rules editor shows the server\'s refusal, then saves', async () => {
    const page = await newPage('admin-console');
    await page.goto(`${base}/admin`);
    await page.click('#login-admin');
    await page.waitForFunction(() => document.querySelector('#role-badge').dataset.role === 'admin');
    await page.fill('#comments-video', SHADOW_VIDEO);
    await page.click('#comments-form button');
    // Sam's ban of scenario 1 is listed; ban vic too, from the form, then lift it.
    await page.waitForSelector('#shadow-table tr[data-sub="sam"]');
    await page.fill('#shadow-sub', 'vic');
    await page.selectOption('#shadow-seconds', '3600');
    await page.fill('#shadow-reason', `spam ${RUN}`);
    await page.click('#shadow-form button[type="submit"]');
    await waitText(page, '#shadow-result', new RegExp(`^vic is shadow-banned until .+ in ${SHADOW_VIDEO}\\.$`));
    await page.waitForSelector('#shadow-table tr[data-sub="vic"]');
    const bans = await rest(`/api/moderation/shadow-bans?video=${SHADOW_VIDEO}`, { token: tokens.admin });
    assert.deepEqual(bans.json.map((b) => b.sub).sort(), ['sam', 'vic']);
    assert.equal(bans.json.find((b) => b.sub === 'vic').reason, `spam ${RUN}`);
    await page.click('#shadow-table tr[data-sub="vic"] button');
    await page.waitForSelector('#shadow-table tr[data-sub="vic"]', { state: 'detached' });
    assert.equal(await page.textContent('#shadow-bans-result'), `vic is not shadow-banned in ${SHADOW_VIDEO} any more.`);

    // Block rules of the video: a broken regex is refused with the server's message.
    await waitText(page, '#rules-meta', new RegExp(`^${SHADOW_VIDEO}: never set\\.$`));
    await page.click('#rules-add');
    await page.fill('#rules-table tr[data-index="0"] .rule-pattern', `blocked${RUN}`);
    await page.selectOption('#rules-table tr[data-index="0"] .rule-action', 'refuse');
    await page.click('#rules-add');
    await page.selectOption('#rules-table tr[data-index="1"] .rule-kind', 'regex');
    await page.fill('#rules-table tr[data-index="1"] .rule-pattern', '(unclosed');
    await page.selectOption('#rules-table tr[data-index="1"] .rule-action', 'hold');
    await page.click('#rules-save');
    const refused = await waitText(page, '#rules-result', /^Rules refused: invalid_pattern: /);
    assert.match(refused, /rule 1/, 'the message names the broken rule');
    assert.equal((await rest(`/api/moderation/rules?video=${SHADOW_VIDEO}`, { token: tokens.admin })).json.rules.length, 0, 'nothing was stored');
    // Remove the broken row and save: the server has the one rule, and applies it.
    await page.click('#rules-table tr[data-index="1"] button');
    await page.click('#rules-save');
    await waitText(page, '#rules-result', new RegExp(`^Saved 1 rule\\(s\\) for ${SHADOW_VIDEO}\\.$`));
    await waitText(page, '#rules-meta', new RegExp(`^${SHADOW_VIDEO}: 1 rule\\(s\\), set by admin at `));
    const set = await rest(`/api/moderation/rules?video=${SHADOW_VIDEO}`, { token: tokens.admin });
    assert.deepEqual(set.json.rules, [{ kind: 'word', pattern: `blocked${RUN}`, action: 'refuse' }]);
    const blocked = await rest(`/api/videos/${SHADOW_VIDEO}/danmaku`, { method: 'POST', token: tokens.wen, body: { text: `so blocked${RUN}`, time: 1 } });
    assert.equal(blocked.status, 422, blocked.text);
    assert.equal(blocked.json.code, 'blocked');
    // The audit log names the new actions.
    await page.waitForSelector('#audit-table tr[data-action="block_rules_set"]');
    assert.match(await page.textContent('#audit-table tr[data-action="block_rules_set"]'), /block rules set/);

    assert.deepEqual(problems, []);
    await page.close();
  });
});
