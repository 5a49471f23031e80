// What the browser scenario files share: where things are, the server binary started on
// 127.0.0.1:0 with a fresh data directory (its address read from its log), and JSON REST
// calls against it. e2e.test.mjs keeps its own copy: it also restarts the server on the
// same port.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = process.env.DANMAKU_BIN || join(ROOT, 'target/debug/danmaku');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const SHOTS = join(ROOT, 'target/e2e');
export const STATIC = process.env.DANMAKU_STATIC_DIR || join(ROOT, 'static');

/**
 * Starts `danmaku serve --demo` on a fresh data directory, logging to
 * target/e2e/server-<name>.log; resolves with {child, base, dataDir} once it listens.
 * `args`: more flags for `serve` (e.g. ['--fold-window-ms', '0']).
 */
export function launchServer(name, { args = [] } = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), `danmaku-e2e-${name}-data-`));
  mkdirSync(SHOTS, { recursive: true });
  const log = createWriteStream(join(SHOTS, `server-${name}.log`), { flags: 'a' });
  const child = spawn(BIN, ['serve', '--demo', '--bind', '127.0.0.1:0', '--data-dir', dataDir, ...args], {
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
        resolveAddr({ child, base: `http://${m[1]}`, dataDir });
      }
    });
  });
}

/** A JSON REST call; resolves with {status, json (null when not JSON), text, retryAfter (s, at least 1)}. */
export async function rest(base, path, { method = 'GET', body, token } = {}) {
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
  return { status: res.status, json, text, retryAfter: Number(res.headers.get('retry-after')) || 1 };
}

/** A demo token (the server runs with --demo). */
export async function mint(base, sub, role) {
  const r = await rest(base, '/api/demo/token', { method: 'POST', body: { sub, role, name: sub } });
  assert.equal(r.status, 200, r.text);
  return r.json.token;
}
