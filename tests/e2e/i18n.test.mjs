// The video page in Simplified Chinese, in headless Chromium against the real server:
// the browser's language picks the catalog, every visible string comes from it, the
// switch on the page changes language without a reload (and is remembered), and comments
// in Chinese and Japanese render with real glyphs (the runner installs Debian's
// fonts-noto-cjk). Saves target/e2e/zh-CN.png for the README.
//
// Run: tests/e2e/run.sh, or with the binary built and node_modules installed:
//   cd tests/e2e && node --test i18n.test.mjs

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { BIN, CHROMIUM, SHOTS, STATIC, launchServer, rest as harnessRest, mint as harnessMint } from './harness.mjs';

const RUN = Date.now().toString(36);

const zh = (await import(pathToFileURL(join(STATIC, 'i18n/zh-CN.js')).href)).default;
const en = (await import(pathToFileURL(join(STATIC, 'i18n/en.js')).href)).default;

/** Comments that need CJK glyphs: Simplified Chinese, Japanese kana and kanji, full-width. */
const CJK = [
  [0.5, `前方高能！弹幕护体 ${RUN}`, 'top', '#ff0000'],
  [0.8, `こんにちは、世界。日本語のコメントです ${RUN}`, 'scroll', '#ffffff'],
  [1.1, `２３３３３ 哈哈哈 草 ${RUN}`, 'scroll', '#89d5ff'],
  [1.4, `カタカナ・ひらがな・漢字 ${RUN}`, 'bottom', '#00cd00'],
];

let server;
let base;
let context;
let dataDir;
let profileDir;

/** The server binary on 127.0.0.1:0 (tests/e2e/harness.mjs); resolves with its base URL. */
async function startServer() {
  const started = await launchServer('i18n');
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
 * In the page: the visible text nodes outside comments, code and the event log that still
 * read as English words. Brand and protocol names are allowed.
 */
function leftoverEnglish() {
  const allowed = new Set(['danmaku', 'API', 'Swagger', 'JWT', 'alice', 'bob', 'admin', 'demo', 'video', 'English', 'PUT', 'api', 'channels', 'name', 'news']);
  // Data, not interface text: comments, code, frames, channel and video names.
  const skip = (n) => n.closest('#overlay, code, pre, .log-body, .event-log, #video-title, .chan-name, option[lang], #comment-list .comment-text, #comment-list .comment-user');
  const found = [];
  const where = (el) => `<${el.tagName.toLowerCase()} id=${el.id || el.closest('[id]')?.id}>`;
  const check = (text, el, what) => {
    // Colour values (#ffd302) are data, not words.
    for (const word of text.replace(/#[0-9a-f]{3,8}\b/gi, '').match(/[A-Za-z]{3,}/g) || []) {
      if (!allowed.has(word)) found.push(`${word} in ${what} of ${where(el)}`);
    }
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!parent || skip(parent)) continue;
    if (!parent.checkVisibility({ checkVisibilityCSS: true })) continue;
    check(node.textContent, parent, 'text');
  }
  // Tooltips, accessible names and placeholders are read too.
  for (const el of document.querySelectorAll('[title], [aria-label], [placeholder]')) {
    if (skip(el) || !el.checkVisibility({ checkVisibilityCSS: true })) continue;
    for (const attr of ['title', 'aria-label', 'placeholder']) {
      const v = el.getAttribute(attr);
      if (v) check(v, el, attr);
    }
  }
  return found;
}

/**
 * In the page: the characters of `text` that the page's font stack draws as the missing
 * glyph (tofu). Each character is drawn on a canvas in the overlay's computed font and
 * compared, pixel for pixel, with an unassigned code point drawn the same way.
 */
function missingGlyphs(text) {
  const sample = document.querySelector('#overlay .danmaku') || document.body;
  const font = getComputedStyle(sample).font;
  const canvas = document.createElement('canvas');
  canvas.width = 64;
  canvas.height = 64;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const draw = (ch) => {
    ctx.clearRect(0, 0, 64, 64);
    ctx.font = font.replace(/\d+(\.\d+)?px/, '40px');
    ctx.fillStyle = '#000';
    ctx.textBaseline = 'top';
    ctx.fillText(ch, 4, 4);
    return ctx.getImageData(0, 0, 64, 64).data.join(',');
  };
  const tofu = draw('\u{10FFFD}');
  return [...new Set(text)].filter((ch) => /[^\s\x21-\x7e]/u.test(ch) && draw(ch) === tofu);
}

before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium is missing at ${CHROMIUM}: run tests/e2e/run.sh, which installs it.`);
  if (!existsSync(BIN)) throw new Error(`The server binary is missing at ${BIN}: run cargo build first.`);
  base = await startServer();
  profileDir = mkdtempSync(join(tmpdir(), 'danmaku-e2e-i18n-chromium-'));
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    locale: 'zh-CN',
    viewport: { width: 1280, height: 860 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--lang=zh-CN'],
  });
  const admin = await mint('admin', 'admin');
  const r = await rest('/api/videos/zh-demo', { method: 'PUT', token: admin, body: { title: '演示视频：弹幕测试', tier: 'free' } });
  assert.ok(r.status === 201 || r.status === 200, r.text);
  for (const [time, text, mode, color] of CJK) {
    const p = await rest('/api/videos/zh-demo/danmaku', { method: 'POST', token: admin, body: { time, text, mode, color } });
    assert.equal(p.status, 201, p.text);
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

describe('the video page in Simplified Chinese', () => {
  test('zh-CN from the browser language: every string from the catalog, CJK comments with real glyphs, a live switch to English and back', async () => {
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (/i18n: no /.test(m.text())) errors.push(m.text());
    });
    await page.goto(`${base}/watch/zh-demo`);
    await page.waitForFunction(() => document.documentElement.lang === 'zh-CN');
    assert.equal(await page.textContent('#login-title'), zh['page.sign_in']);
    assert.equal(await page.inputValue('#locale'), 'zh-CN');

    await page.click('#login-alice');
    await page.waitForFunction(() => {
      const s = window.danmakuDemo && window.danmakuDemo.state;
      return s && s.welcomed && s.user && s.user.role === 'member'
        && document.querySelector('#room-status').dataset.status === 'joined'
        && s.historyFor === `${s.user.sub}|${s.user.role}`;
    });
    // Dynamic text is from the catalog too: the badge's role, the room status, the count.
    assert.match(await page.textContent('#role-badge'), new RegExp(zh['common.role.member']));
    assert.equal(await page.textContent('#room-status'), zh['channels.room_live']);
    await page.waitForFunction((w) => document.querySelector('#viewers').textContent.endsWith(w), zh['presence.watching'].replace('{n}', '').trim());

    // The stored comments replay from 0.5 s; a live one is posted through the page.
    await page.evaluate(() => document.querySelector('video').play());
    const live = `直播弹幕：你好！ライブ ${RUN}`;
    await page.fill('#dm-text', live);
    await page.click('#dm-send');
    await page.waitForFunction((t) => window.danmakuDemo.state.lastPost && window.danmakuDemo.state.lastPost.text === t, live);
    assert.match(await page.textContent('#dm-ok'), new RegExp(zh['composer.sent'].split('{at}')[0]));
    for (const text of [...CJK.map((c) => c[1]), live]) {
      await page.waitForFunction((t) => [...document.querySelectorAll('#overlay .danmaku')].some((n) => n.textContent === t), text, { timeout: 15_000 });
    }
    // A readable picture: the Japanese scrolling comment wholly on screen, then paused.
    await page.waitForFunction((t) => {
      const n = [...document.querySelectorAll('#overlay .danmaku')].find((x) => x.textContent === t);
      return n && n.getBoundingClientRect().right <= document.querySelector('#overlay').getBoundingClientRect().right - 40;
    }, CJK[1][1], { timeout: 15_000 });
    await page.evaluate(() => document.querySelector('video').pause());
    for (const text of [...CJK.map((c) => c[1]), live, zh['page.sign_in'], zh['page.composer']]) {
      assert.deepEqual(await page.evaluate(missingGlyphs, text), [], `glyphs missing for ${text}`);
    }
    assert.deepEqual(await page.evaluate(leftoverEnglish), [], 'text left in English on the zh-CN page');
    await page.mouse.move(0, 0);
    await page.screenshot({ path: join(SHOTS, 'zh-CN.png') });

    // Switch to English on the page: static and dynamic text change without a reload.
    const navigations = [];
    page.on('framenavigated', (f) => navigations.push(f.url()));
    await page.selectOption('#locale', 'en');
    await page.waitForFunction(() => document.documentElement.lang === 'en');
    assert.equal(await page.textContent('#login-title'), en['page.sign_in']);
    assert.equal(await page.textContent('#room-status'), en['channels.room_live']);
    assert.match(await page.textContent('#role-badge'), / · member$/);
    assert.match(await page.getAttribute('#dm-text', 'placeholder'), /^Say something/);
    // Lines code wrote before the switch follow it too.
    assert.match(await page.textContent('#token-info'), /^Demo token, expires /);
    assert.match(await page.textContent('#dm-at'), /^at \d/);
    assert.match(await page.textContent('#dm-ok'), /^Sent at /);
    assert.match(await page.textContent('#overlay-stats'), / on screen · \d+ stored/);
    assert.match(await page.textContent('#log-count'), /^\d+ entr(y|ies)$/);
    assert.equal(await page.textContent('#viewers'), en['presence.watching'].replace('{n}', '1'));
    assert.match(await page.getAttribute('#heatmap .heatmap-peak', 'aria-label'), /^Peak at /);
    assert.deepEqual(navigations, [], 'the switch reloaded the page');
    // The choice is remembered over the browser's language.
    await page.reload();
    await page.waitForFunction(() => document.documentElement.lang === 'en' && document.querySelector('#login-title').textContent === 'Sign in');
    await page.selectOption('#locale', 'zh-CN');
    await page.waitForFunction((t) => document.querySelector('#login-title').textContent === t, zh['page.sign_in']);
    assert.deepEqual(errors, [], 'page errors or missing catalog keys');
    await page.close();
  });
});
