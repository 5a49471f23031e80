// The language catalogs (static/i18n/*.js) against the pages, without a browser or a
// server: plain `node --test i18n-keys.test.mjs`.
//
//   1. en and zh-CN have the same keys, no empty message, and the same {placeholders}
//      in each pair (a translation cannot drop or invent a parameter).
//   2. Every key the checked files use exists in en: `data-i18n*="…"` in markup,
//      `t('…')` in code; a key built at run time (t(`common.role.${role}`),
//      tValue('common.role.', role)) must start with a prefix of DYNAMIC_PREFIXES.
//   3. No catalog key is unused: a key is used literally by a checked file or starts
//      with a listed prefix (and every listed prefix is used).
//   4. No text is left in the checked markup: every non-blank text node sits in an
//      element carrying data-i18n, and title / placeholder / aria-label come from
//      data-i18n-* too, save a small allowlist (the brand, symbols, code literals).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const STATIC = resolve(dirname(fileURLToPath(import.meta.url)), '../../static');

/**
 * The files held to rules 2 to 4, relative to static/; a folder (ending in /) stands for
 * the .html and .js files under it. Rule 4 reads the .html ones.
 */
const CHECKED = [
  'admin.html',
  'admin.js',
  'admin/',
  'index.html',
  'app.js',
  'page/',
  'lib/',
];

/** Never read for keys, even under a checked folder: the catalogs, the i18n module itself, the embeddable client, examples. */
const EXCLUDED = ['i18n/', 'lib/danmaku-client.js', 'lib/i18n.js', 'examples/'];

/** Prefixes of keys completed at run time with a server value: every key under one counts as used. */
const DYNAMIC_PREFIXES = ['common.role.', 'common.tier.', 'common.audience.', 'common.mode.', 'common.size.', 'conn.close.', 'player.media_error.', 'admin.rules.kind.', 'admin.rules.action.', 'admin.flood.source.'];

/** Text that may stand in markup untranslated: the brand, the logo letter. */
const TEXT_ALLOW = new Set(['danmaku', 'd']);
/** ...and text made only of digits, spaces and these symbols. */
const SYMBOLS = /^[\s\d·×♥…–—:()/.,+%-]*$/u;
/** Attribute values that are code-like literals (a JWT's first characters as a placeholder). */
const ATTR_ALLOW = new Set(['eyJhbGciOi…']);
/** Elements whose text is data or code, not interface text: JSON editors, <code>, scripts. */
const EXEMPT_TAGS = new Set(['code', 'textarea', 'script', 'style', 'pre']);
const VOID_TAGS = new Set(['area', 'base', 'br', 'col', 'embed', 'hr', 'img', 'input', 'link', 'meta', 'source', 'track', 'wbr']);
const RAW_TEXT_TAGS = new Set(['script', 'style', 'textarea', 'title']);
const KEYED_ATTRS = ['title', 'placeholder', 'aria-label'];

const LOCALES = ['en', 'zh-CN'];

// ---------------------------------------------------------------------------------------
// Reading

/** A catalog module's default export (imported from its text: static/ is not a package). */
async function loadCatalog(tag) {
  const src = readFileSync(join(STATIC, 'i18n', `${tag}.js`), 'utf8');
  const mod = await import(`data:text/javascript,${encodeURIComponent(src)}`);
  return mod.default;
}

function excluded(rel) {
  return EXCLUDED.some((e) => (e.endsWith('/') ? rel.startsWith(e) : rel === e));
}

/** The checked files, relative to static/. */
function checkedFiles() {
  const out = [];
  const walk = (rel) => {
    for (const name of readdirSync(join(STATIC, rel)).sort()) {
      const child = rel ? `${rel}/${name}` : name;
      if (excluded(child) || excluded(`${child}/`)) continue;
      if (statSync(join(STATIC, child)).isDirectory()) walk(child);
      else if (/\.(html|js)$/.test(name)) out.push(child);
    }
  };
  for (const entry of CHECKED) {
    if (entry.endsWith('/')) walk(entry.slice(0, -1));
    else out.push(entry);
  }
  return out;
}

function placeholders(msg) {
  return [...new Set([...msg.matchAll(/\{(\w+)\}/g)].map((m) => m[1]))].sort();
}

function lineOf(text, offset) {
  return text.slice(0, offset).split('\n').length;
}

/** Code with its comment lines blanked (keeps line numbers): a `t(` in prose is not a call. */
function withoutComments(src) {
  return src
    .replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, ' '))
    .replace(/^\s*\/\/.*$/gm, '');
}

/**
 * The keys a file uses: `{ keys: [{key, line}], prefixes: [{prefix, line}], problems }`.
 * Markup: data-i18n, -placeholder, -title, -aria-label. Code: t('…') and t("…") (and a
 * template without substitutions), t(`prefix${…}`) and tValue('prefix', …) as prefixes;
 * any other first argument of t() is a problem (its key cannot be checked).
 */
function usage(rel) {
  const src = readFileSync(join(STATIC, rel), 'utf8');
  const keys = [];
  const prefixes = [];
  const problems = [];
  if (rel.endsWith('.html')) {
    for (const m of src.matchAll(/\sdata-i18n(?:-placeholder|-title|-aria-label)?\s*=\s*(["'])(.*?)\1/g)) {
      keys.push({ key: m[2], line: lineOf(src, m.index) });
    }
    return { keys, prefixes, problems };
  }
  const code = withoutComments(src);
  for (const m of code.matchAll(/\bt\(\s*(?:(['"])([^'"\n]*)\1|`([^`$]*)`|`([^`$]*)\$\{|(\S))/g)) {
    const line = lineOf(code, m.index);
    if (m[2] !== undefined) keys.push({ key: m[2], line });
    else if (m[3] !== undefined) keys.push({ key: m[3], line });
    else if (m[4] !== undefined) prefixes.push({ prefix: m[4], line });
    else if (m[5] !== ')') problems.push(`${rel}:${line}: t() with a computed key: use a literal key, or tValue(prefix, value) with a listed prefix`);
  }
  for (const m of code.matchAll(/\btValue\(\s*(['"])([^'"\n]*)\1/g)) {
    prefixes.push({ prefix: m[2], line: lineOf(code, m.index) });
  }
  return { keys, prefixes, problems };
}

// ---------------------------------------------------------------------------------------
// A tiny HTML tokenizer: enough for the pages' own markup (tags, quoted attributes,
// comments, raw-text elements), not for arbitrary HTML.

function decodeEntities(s) {
  const named = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ', hellip: '…', middot: '·', times: '×' };
  return s.replace(/&(#x[0-9a-f]+|#\d+|\w+);/gi, (all, e) => {
    if (e[0] === '#') return String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : Number(e.slice(1)));
    return named[e.toLowerCase()] ?? all;
  });
}

function* tokens(html) {
  let i = 0;
  while (i < html.length) {
    if (html.startsWith('<!--', i)) {
      const end = html.indexOf('-->', i + 4);
      i = end < 0 ? html.length : end + 3;
      continue;
    }
    if (html[i] === '<' && /[A-Za-z!/]/.test(html[i + 1] || '')) {
      let j = i + 1;
      let quote = null;
      for (; j < html.length; j++) {
        const c = html[j];
        if (quote) {
          if (c === quote) quote = null;
        } else if (c === '"' || c === "'") quote = c;
        else if (c === '>') break;
      }
      const raw = html.slice(i + 1, j);
      const at = i;
      i = j + 1;
      if (raw[0] === '!') continue; // <!doctype html>
      if (raw[0] === '/') {
        yield { type: 'end', name: raw.slice(1).trim().toLowerCase(), at };
        continue;
      }
      const name = raw.match(/^[A-Za-z][\w-]*/)[0];
      const attrs = {};
      for (const a of raw.slice(name.length).matchAll(/([^\s=/]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g)) {
        attrs[a[1].toLowerCase()] = decodeEntities(a[2] ?? a[3] ?? a[4] ?? '');
      }
      const tag = name.toLowerCase();
      yield { type: 'start', name: tag, attrs, selfClosing: /\/\s*$/.test(raw), at };
      if (RAW_TEXT_TAGS.has(tag)) {
        // Their content is text up to the end tag, whatever it holds.
        const close = html.toLowerCase().indexOf(`</${tag}`, i);
        const end = close < 0 ? html.length : close;
        yield { type: 'text', text: html.slice(i, end), at: i };
        i = end;
      }
      continue;
    }
    let next = html.indexOf('<', html[i] === '<' ? i + 1 : i);
    if (next < 0) next = html.length;
    yield { type: 'text', text: html.slice(i, next), at: i };
    i = next;
  }
}

/** Rule 4 for one page's markup: the untranslated texts and attributes, as "file:line: ..." lines. */
function untranslated(html, rel) {
  const problems = [];
  const stack = [];
  for (const tok of tokens(html)) {
    const where = `${rel}:${lineOf(html, tok.at)}`;
    if (tok.type === 'start') {
      for (const attr of KEYED_ATTRS) {
        const value = tok.attrs[attr];
        if (value === undefined || `data-i18n-${attr}` in tok.attrs || ATTR_ALLOW.has(value)) continue;
        problems.push(`${where}: <${tok.name} ${attr}="${value}"> without data-i18n-${attr}`);
      }
      if (!VOID_TAGS.has(tok.name) && !tok.selfClosing) stack.push(tok);
    } else if (tok.type === 'end') {
      const open = stack.map((s) => s.name).lastIndexOf(tok.name);
      if (open >= 0) stack.length = open;
    } else {
      const text = decodeEntities(tok.text).trim();
      if (!text || TEXT_ALLOW.has(text) || SYMBOLS.test(text)) continue;
      // translate="no" is HTML's own mark for text to leave as is (API paths).
      if (stack.some((s) => EXEMPT_TAGS.has(s.name) || s.attrs.translate === 'no')) continue;
      const parent = stack[stack.length - 1];
      if (parent && 'data-i18n' in parent.attrs) continue;
      problems.push(`${where}: text "${text.replace(/\s+/g, ' ').slice(0, 60)}" in <${parent ? parent.name : '#document'}> without data-i18n`);
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------
// The rules

const catalogs = Object.fromEntries(await Promise.all(LOCALES.map(async (tag) => [tag, await loadCatalog(tag)])));
const en = catalogs.en;
const files = checkedFiles();
const uses = files.map((rel) => ({ rel, ...usage(rel) }));

test('the checked files exist', () => {
  assert.ok(files.length > 0, 'CHECKED names no file');
  for (const rel of files) assert.ok(statSync(join(STATIC, rel)).isFile(), `${rel} is missing`);
  assert.ok(files.some((f) => f.endsWith('.html')), 'no page markup is checked');
});

test('1. en and zh-CN have the same keys, no empty message, the same {placeholders}', () => {
  const problems = [];
  for (const tag of LOCALES) {
    for (const [key, msg] of Object.entries(catalogs[tag])) {
      if (typeof msg !== 'string' || !msg.trim()) problems.push(`${tag}: "${key}" is empty or not a string`);
      if (!/^[a-z][\w-]*(\.[\w-]+)+$/.test(key)) problems.push(`${tag}: "${key}" is not a dotted key`);
    }
  }
  const zh = catalogs['zh-CN'];
  for (const key of Object.keys(en)) if (!(key in zh)) problems.push(`zh-CN lacks "${key}"`);
  for (const key of Object.keys(zh)) if (!(key in en)) problems.push(`en lacks "${key}" (zh-CN has it)`);
  for (const key of Object.keys(en)) {
    if (!(key in zh) || typeof en[key] !== 'string' || typeof zh[key] !== 'string') continue;
    const a = placeholders(en[key]).join(', ');
    const b = placeholders(zh[key]).join(', ');
    if (a !== b) problems.push(`"${key}": en has {${a}}, zh-CN has {${b}}`);
  }
  assert.deepEqual(problems, []);
});

test('2. every key the checked files use exists in en', () => {
  const problems = [];
  for (const { rel, keys, prefixes, problems: own } of uses) {
    problems.push(...own);
    for (const { key, line } of keys) if (!Object.hasOwn(en, key)) problems.push(`${rel}:${line}: unknown key "${key}"`);
    for (const { prefix, line } of prefixes) {
      if (!DYNAMIC_PREFIXES.includes(prefix)) problems.push(`${rel}:${line}: key prefix "${prefix}" is not in DYNAMIC_PREFIXES`);
    }
  }
  assert.deepEqual(problems, []);
});

test('3. no catalog key is unused', () => {
  const used = new Set(uses.flatMap((u) => u.keys.map((k) => k.key)));
  const usedPrefixes = new Set(uses.flatMap((u) => u.prefixes.map((p) => p.prefix)));
  const problems = [];
  for (const key of Object.keys(en)) {
    if (used.has(key) || DYNAMIC_PREFIXES.some((p) => key.startsWith(p))) continue;
    problems.push(`"${key}" is used by no checked file`);
  }
  for (const prefix of DYNAMIC_PREFIXES) {
    if (!usedPrefixes.has(prefix)) problems.push(`DYNAMIC_PREFIXES lists "${prefix}" but no checked file builds keys with it`);
    if (!Object.keys(en).some((k) => k.startsWith(prefix))) problems.push(`DYNAMIC_PREFIXES lists "${prefix}" but en has no key under it`);
  }
  assert.deepEqual(problems, []);
});

test('4. no text is left in the checked markup', () => {
  const pages = files.filter((f) => f.endsWith('.html'));
  assert.deepEqual(pages.flatMap((rel) => untranslated(readFileSync(join(STATIC, rel), 'utf8'), rel)), []);
});

test('rule 4 itself sees text, keys and exemptions as meant', () => {
  // A tokenizer that saw nothing would pass every page.
  const texts = (html) => untranslated(html, 't.html').map((p) => p.replace(/^t\.html:\d+: /, ''));
  assert.deepEqual(texts('<p>Hello <b data-i18n="x.y">Hi</b> <code>/api</code> · 3</p>'), ['text "Hello" in <p> without data-i18n']);
  assert.deepEqual(texts('<label><input type="checkbox" checked> every 3 s</label>'), ['text "every 3 s" in <label> without data-i18n']);
  assert.deepEqual(texts('<!-- a <b>note</b> --><textarea>{"a": "b > c"}</textarea><span title="a>b" data-i18n="k.k">x</span>'),
    ['<span title="a>b"> without data-i18n-title']);
  assert.deepEqual(texts('<title data-i18n="k.t"></title><span translate="no">GET /api/x</span><span>danmaku</span>'), []);
  assert.deepEqual(texts('<input placeholder="name" data-i18n-placeholder="k.p"><p>\n  Two\n  lines</p>'), ['text "Two lines" in <p> without data-i18n']);
});
