// Video page: the one state object every page module reads and writes, the video this
// page shows (from /watch/{id}), the storage keys, and who the page thinks you are.
//
// Owns no DOM and no socket: static/page/connection.js drives the protocol fields,
// the other static/page/*.js modules the rest. The object is also exposed to browser
// tests as `danmakuDemo.state` (static/app.js), so its fields keep their names.

import { VIDEO_RE, decodeJwt, readJson } from '../lib/util.js';

/** Keys in sessionStorage (the token) and localStorage (the viewer settings). */
export const STORAGE = {
  token: 'danmaku.token',
  expires: 'danmaku.expires_at',
  demo: 'danmaku.demo_profile',
  settings: 'danmaku.viewer_settings',
};

function videoIdFromPath() {
  const m = location.pathname.match(/^\/watch\/([^/]+)\/?$/);
  if (m) {
    try {
      const id = decodeURIComponent(m[1]);
      if (VIDEO_RE.test(id)) return id;
    } catch {
      // fall through to the default
    }
  }
  return 'demo';
}

/** The video of this page: `/watch/{id}`, else `demo`. */
export const VIDEO_ID = videoIdFromPath();
/** The video's room: its comments, deletions and presence arrive there. */
export const VIDEO_CHANNEL = `video:${VIDEO_ID}`;

/** Everything the page knows; one object so that tests and the console can read it. */
export const state = {
  token: sessionStorage.getItem(STORAGE.token) || null,
  expiresAt: Number(sessionStorage.getItem(STORAGE.expires)) || null,
  /** The demo login used for the token, so an expiring token can be re-minted. */
  demo: readJson(sessionStorage.getItem(STORAGE.demo)),
  demoDisabled: false,
  /** `welcome.user` of the current socket. */
  user: null,
  /** The client's connection state ('connecting', 'open', 'reconnecting', 'closed'). */
  phase: 'closed',
  /** Bumped on every connect; handlers of older sockets ignore their events. */
  gen: 0,
  welcomed: false,
  /** Whether any socket of this page was welcomed (later welcomes are reconnects). */
  everWelcomed: false,
  conn: null,
  heartbeatS: null,
  /** Truthy while a reconnect waits for `retryAt`. */
  retryTimer: null,
  retryAt: 0,
  lastClose: null,
  stopped: false,
  rtt: null,
  /** Channels the user joined (resubscribed after a reconnect): name -> {status, tier}. */
  wanted: new Map([[VIDEO_CHANNEL, { status: 'pending', tier: null }]]),
  /** Last subscribe error per channel, shown inline. */
  channelErrors: new Map(),
  declared: [],
  declaredError: null,
  declaredLoad: 0,
  videos: null,
  videosError: null,
  videosLoad: 0,
  /** `sub|role` the comment history was loaded for. */
  historyFor: null,
  historyLoad: 0,
  memberLocked: false,
  /** The viewer left the video's room with "Leave"; it is not rejoined on reconnect. */
  leftRoom: false,
  cooldownUntil: 0,
  cooldownTimer: null,
  posting: false,
  /** Completed posts and the last outcome ({ok, code, id}), for tests and the console. */
  posts: 0,
  lastPost: null,
  viewers: null,
};

/** Role of the socket, or what the token claims before the welcome arrives. */
export function currentRole() {
  if (state.user) return state.user.role;
  if (!state.token) return 'guest';
  const claims = decodeJwt(state.token);
  return (claims && typeof claims.role === 'string') ? claims.role : 'unknown';
}

/** `sub|role` of the socket (null before a welcome): what history and positions belong to. */
export function identityKey() {
  return state.user ? `${state.user.sub ?? ''}|${state.user.role}` : null;
}
