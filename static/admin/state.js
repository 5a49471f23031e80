// Admin console: the shared state (the admin token, the catalog, the declared channels,
// the watched channels, the schedules), `call`, the REST helper every admin module
// uses so that each request carries the token, and `errorText`, how a failed call reads.

import { api } from '../lib/util.js';

const STORAGE_TOKEN = 'danmaku.admin_token';

/** Everything the console knows; the admin modules read and write it. */
export const state = {
  token: sessionStorage.getItem(STORAGE_TOKEN) || null,
  me: null,
  videos: [],
  channels: [],
  /** Extra channels whose presence is watched. */
  watched: new Set(),
  schedulesAvailable: null,
  schedules: [],
};

/** Stores the token (or none) in sessionStorage: it lasts as long as the tab. */
export function setToken(token) {
  state.token = token || null;
  if (state.token) sessionStorage.setItem(STORAGE_TOKEN, state.token);
  else sessionStorage.removeItem(STORAGE_TOKEN);
}

/** A REST call with the console's token. */
export function call(path, opts = {}) {
  return api(path, { ...opts, token: state.token });
}

/** A failed call as the console shows it: status, code and the server's own message
 * (not translated: it is the server's words; callers translate what they put before it). */
export function errorText(e) {
  return `${e.status ? `${e.status} ` : ''}${e.code}: ${e.message}`;
}
