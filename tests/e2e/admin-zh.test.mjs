// The admin console in Simplified Chinese, in headless Chromium against the real server:
// a zh-CN browser gets the Chinese catalog (html lang, headings, code-drawn tables and
// status lines), no English is left on screen, and the #locale select switches to
// English and back without a reload. Saves target/e2e/admin-zh-CN.png.
//
// Run: cd tests/e2e && node --test admin-zh.test.mjs (with the binary built and
// node_modules installed; DANMAKU_BIN and DANMAKU_STATIC_DIR as for e2e.test.mjs).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { BIN, CHROMIUM, SHOTS, STATIC, launchServer, rest as harnessRest } from './harness.mjs';


/** A catalog module's default export (imported from its text: static/ is not a package). */
async function catalog(tag) {
  const src = readFileSync(join(STATIC, 'i18n', `${tag}.js`), 'utf8');
  return (await import(`data:text/javascript,${encodeURIComponent(src)}`)).default;
}
const zh = await catalog('zh-CN');
const en = await catalog('en');

let server;
let base;
let context;
let dataDir;
let profileDir;
const problems = [];

/** The server binary on 127.0.0.1:0 (tests/e2e/harness.mjs); resolves with its base URL. */
async function startServer() {
  const started = await launchServer('admin-zh');
  server = started.child;
  dataDir = started.dataDir;
  return started.base;
}

/** A JSON REST call to this file's server: {status, json, text, retryAfter}. */
function rest(path, opts) {
  return harnessRest(base, path, opts);
}

/**
 * In the page: English words still on screen (text, placeholders, titles, labels),
 * outside data and code: ids and names from the server, JSON editors, API paths.
 */
function leftoverEnglish() {
  // Protocol and brand names (Webhook is the usual word in Chinese too), the demo user, role ids shown as typing hints, event and
  // video ids, the English option of the language select.
  const allowed = new Set(['danmaku', 'API', 'Swagger', 'JWT', 'REST', 'JSON', 'cron', 'Cron', 'GET', 'POST', 'URL', 'Webhook', 'UTC', 'ID',
    'admin', 'bob', 'alice', 'demo', 'zh', 'video', 'news', 'guest', 'free', 'member', 'push', 'notice', 'English']);
  const skip = (n) => n.closest('code, textarea, datalist, [translate="no"], .mono, .comment-text, #toasts, option[lang]');
  const found = [];
  const words = (text, where) => {
    // Tokens with a digit are ids and times (a push id in hex), not words.
    for (const token of text.match(/[\w-]+/g) || []) {
      if (/\d/.test(token)) continue;
      for (const word of token.match(/[A-Za-z]{2,}/g) || []) if (!allowed.has(word)) found.push(`${word} in ${where}`);
    }
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!parent || skip(parent) || !parent.checkVisibility({ checkVisibilityCSS: true })) continue;
    words(node.textContent, `<${parent.tagName.toLowerCase()}> ${parent.id || parent.closest('[id]')?.id || ''}`);
  }
  for (const n of document.querySelectorAll('[placeholder], [title], [aria-label]')) {
    // Titles inside table rows carry data: schedule ids, payload summaries, colours.
    if (skip(n) || n.closest('tbody')) continue;
    for (const attr of ['placeholder', 'title', 'aria-label']) {
      const v = n.getAttribute(attr);
      if (v && !/^eyJ/.test(v)) words(v, `${attr} of <${n.tagName.toLowerCase()}> ${n.id}`);
    }
  }
  words(document.title, '<title>');
  return found;
}

before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium is missing at ${CHROMIUM}: run tests/e2e/run.sh, which installs it.`);
  if (!existsSync(BIN)) throw new Error(`The server binary is missing at ${BIN}: run cargo build first.`);
  base = await startServer();
  // A video in the catalog, so the code-drawn table has rows (buttons, tier names).
  const mint = await rest('/api/demo/token', { method: 'POST', body: { sub: 'admin', role: 'admin', name: 'admin' } });
  const token = JSON.parse(mint.text).token;
  const put = await rest('/api/videos/zh-demo', { method: 'PUT', token, body: { title: '演示视频', tier: 'member' } });
  assert.ok(put.status === 200 || put.status === 201, put.text);
  const post = await rest('/api/videos/zh-demo/danmaku', { method: 'POST', token, body: { text: '前方高能', time: 1, mode: 'top' } });
  assert.equal(post.status, 201, post.text);
  profileDir = mkdtempSync(join(tmpdir(), 'danmaku-e2e-admin-zh-chromium-'));
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    locale: 'zh-CN',
    viewport: { width: 1280, height: 1400 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--lang=zh-CN'],
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

describe('the admin console in Simplified Chinese', () => {
  test('a zh-CN browser gets Chinese, #locale switches to English and back without a reload', async () => {
    const page = await context.newPage();
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      // i18n.js reports a key missing from a catalog once, as a warning.
      if (/^i18n:/.test(m.text()) || /Content Security Policy/.test(m.text())) problems.push(m.text());
    });
    await page.goto(`${base}/admin`);
    await page.waitForFunction(() => document.documentElement.lang === 'zh-CN');
    assert.equal(await page.textContent('#signin-title'), zh['admin.signin.title']);
    assert.equal(await page.textContent('#schedules-title'), zh['admin.schedules.title']);
    assert.equal(await page.title(), zh['admin.page_title']);
    assert.equal(await page.inputValue('#locale'), 'zh-CN');

    await page.click('#login-admin');
    await page.waitForFunction(() => document.querySelector('#role-badge').dataset.role === 'admin');
    const saveButton = '#video-table tr[data-video="zh-demo"] td.actions button';
    await page.waitForSelector(saveButton);
    await page.waitForFunction(() => document.querySelector('#presence-table tbody tr'));
    assert.equal(await page.textContent(saveButton), zh['common.save']);
    assert.equal(await page.textContent('#role-badge'), `admin · ${zh['common.role.admin']}`);
    assert.equal(await page.textContent('#signin-status'), zh['admin.signin.ok'].replace('{sub}', 'admin'));

    // The code-drawn parts: a schedule row, a push result and its history row, comments.
    await page.fill('#sched-name', '心跳通知');
    await page.fill('#sched-payload', JSON.stringify({ message: '这是一条定时通知' }));
    await page.click('#sched-create');
    await page.waitForSelector('#schedule-table tbody tr[data-id]');
    await page.click('#push-send');
    await page.waitForFunction(() => document.querySelector('#push-result').dataset.tone === 'ok');
    await page.fill('#comments-video', 'zh-demo');
    await page.click('#comments-form button');
    await page.waitForSelector('#comment-table tbody tr[data-id]');
    assert.equal(await page.textContent('#schedule-table tbody tr[data-id] .tag'), zh['admin.schedules.active']);
    assert.deepEqual(await page.evaluate(leftoverEnglish), []);
    await page.mouse.move(0, 0);
    await page.screenshot({ path: join(SHOTS, 'admin-zh-CN.png'), fullPage: true });

    // English, without a reload: markup keys and code-drawn text both follow.
    await page.evaluate(() => {
      window.__sameDocument = true;
    });
    await page.selectOption('#locale', 'en');
    await page.waitForFunction(() => document.documentElement.lang === 'en');
    assert.equal(await page.textContent('#signin-title'), en['admin.signin.title']);
    assert.equal(await page.textContent(saveButton), en['common.save']);
    assert.equal(await page.textContent('#role-badge'), `admin · ${en['common.role.admin']}`);
    assert.equal(await page.textContent('#signin-status'), en['admin.signin.ok'].replace('{sub}', 'admin'));
    assert.equal(await page.textContent('#push-payload-status'), en['admin.json.valid']);
    assert.equal(await page.textContent('#schedule-table tbody tr[data-id] .tag'), en['admin.schedules.active']);
    assert.equal(await page.textContent('#push-history tbody td:nth-child(2)'), en['admin.target.desc_everyone']);
    assert.match(await page.textContent('#comments-status'), /stored comment\(s\) on zh-demo/);
    assert.match(await page.textContent('#comment-table tbody tr[data-id]'), /top · normal/);
    await page.mouse.move(0, 0);
    await page.screenshot({ path: join(SHOTS, 'admin-en.png'), fullPage: true });

    // And back; the choice is remembered over a reload.
    await page.selectOption('#locale', 'zh-CN');
    await page.waitForFunction(() => document.documentElement.lang === 'zh-CN');
    assert.equal(await page.textContent(saveButton), zh['common.save']);
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'the switch reloaded the page');
    await page.selectOption('#locale', 'en');
    await page.reload();
    await page.waitForFunction(() => document.documentElement.lang === 'en');
    assert.equal(await page.textContent('#push-title'), en['admin.push.title']);

    assert.deepEqual(problems, []);
    await page.close();
  });
});
