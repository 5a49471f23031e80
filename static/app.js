// danmaku video page, the entry module (index.html loads it): a player with a live
// comment overlay, a send box, sign-in, the video list, presence, pushes (toasts and
// order cards) and an event log. Each of those is a module in static/page/:
//
//   state.js           the shared state object, the page's video, storage keys
//   connection.js      the WebSocket and protocol v1; no DOM, talks through events
//   session.js         sign-in, tokens, the role badge
//   status.js          the connection indicator and the Reconnect button
//   player.js          the <video>, ?src=, the video time, the members-only lock
//   overlay-wiring.js  static/lib/overlay.js over the video: history, live comments, settings
//   likes.js           the like popover on hovered or tapped comments
//   heatmap.js         the comment-density curve above the seek bar, peaks seek
//   composer.js        the send box: counter, cooldown, refusals, posting
//   comments.js        the comment list; held and shadowed comments and their review
//   channels.js        the Channels panel and the room status
//   videos.js          the video list
//   presence.js        "N watching"
//   log.js             the event log, toasts, order-alert cards
//
// This file only wires them: it routes the connection's events to the page modules,
// registers the DOM handlers and timers, and starts the first connection.
//
// SECURITY: every piece of text from the server or the user reaches the DOM through
// `textContent`, text nodes or `createElement`. No page module parses HTML.

import { VIDEO_CHANNEL, VIDEO_ID, identityKey, state } from './page/state.js';
import { connect, on, reconnectWhenOnline } from './page/connection.js';
import {
  onRefreshed, onRefreshRefused, onRefused, onTokenExpired, relocalizeSession, renderIdentity,
  renderLoginButtons, useSessionTokens, wireSignIn,
} from './page/session.js';
import { renderConn, tickRetryCountdown, wireReconnect } from './page/status.js';
import { CONTROLS_PX, renderMemberLock, setMemberLock, setupVideo, syncTime } from './page/player.js';
import { onCommentPointer, wireLikes } from './page/likes.js';
import { HEATMAP_PX, noteLive, wireHeatmap } from './page/heatmap.js';
import {
  catchUpHistory, createOverlay, drawRoomEvent, loadHistory, loadSettings, overlay, wireSettings,
} from './page/overlay-wiring.js';
import { buildSwatches, post, renderComposer, wireComposer } from './page/composer.js';
import {
  loadChannels, renderChannelList, renderSubscriptions, setJoinError, showChannelError,
  subscribe, unsubscribe, wireChannels,
} from './page/channels.js';
import { loadVideos, renderVideos, wireVideos } from './page/videos.js';
import { loadPresence, pollPresence, renderViewers, showPresence } from './page/presence.js';
import { logEntry, renderLogCount, showPush, wireLog } from './page/log.js';
import { wireCommentList } from './page/comments.js';
import { $, showToast } from './lib/util.js';
import { applyTo, onLocaleChange, t, wireLocaleSelect } from './lib/i18n.js';

// ---------------------------------------------------------------------------------------
// The connection's events, rendered by the page

function onReset() {
  setJoinError(null);
  renderConn();
  renderIdentity();
  renderSubscriptions();
}

function onWelcome({ sameIdentity }) {
  renderIdentity();
  renderSubscriptions();
  renderComposer();
  loadChannels();
  if (!sameIdentity) {
    loadHistory();
    loadVideos();
  }
  loadPresence();
}

function onClosed() {
  renderSubscriptions();
  renderComposer();
}

function onSubscribed({ meta, reply }) {
  if (meta.origin === 'input') setJoinError(null);
  if (meta.channel !== VIDEO_CHANNEL) return;
  setMemberLock(false);
  loadPresence();
  // Comments posted while the socket was down: take them from the history API unless
  // the server replayed them (recovery with `since`).
  if (meta.reconnect && reply.recovered !== true && state.historyFor === identityKey()) {
    catchUpHistory();
  }
}

function onSubscribeRefused({ channel, error, origin }) {
  showChannelError(channel, error, origin);
  if (channel === VIDEO_CHANNEL && error.code === 'member_only') setMemberLock(true);
}

function onUnsubscribed({ channel, error }) {
  showToast({ title: t('page.left_channel', { channel }), body: `${error.code}: ${error.message}`, tone: 'warn' });
  if (channel === VIDEO_CHANNEL && error.code === 'member_only') setMemberLock(true);
}

/** A channel event: the room's comments and presence, else a push for the viewer. */
function onChannelEvent({ frame, replayed, push }) {
  if (frame.channel === VIDEO_CHANNEL) {
    if (drawRoomEvent(frame, replayed, push) || showPresence(frame)) return;
  }
  if (push) showPush(frame);
}

function listen() {
  useSessionTokens();
  on('status', renderConn);
  on('log', logEntry);
  on('reset', onReset);
  on('welcome', onWelcome);
  on('closed', onClosed);
  on('refused', onRefused);
  on('subscribed', onSubscribed);
  on('subscribe_refused', onSubscribeRefused);
  on('unsubscribe_refused', ({ channel, error, origin }) => showChannelError(channel, error, origin));
  on('refreshed', onRefreshed);
  on('refresh_refused', onRefreshRefused);
  on('channels', () => {
    renderSubscriptions();
    renderChannelList();
  });
  on('unsubscribed', onUnsubscribed);
  on('token_expired', onTokenExpired);
  on('event', onChannelEvent);
}

// ---------------------------------------------------------------------------------------
// Wiring

/** Re-renders what code wrote after a language switch (markup is re-applied by i18n.js). */
function relocalize() {
  relocalizeSession();
  renderConn();
  renderSubscriptions();
  renderChannelList();
  renderComposer();
  renderViewers();
  renderMemberLock();
  renderLogCount();
  if (state.videos) renderVideos();
  document.title = t('page.document_title', { video: VIDEO_ID });
}

function init() {
  // Markup text first, from the catalog of the browser's (or the chosen) language.
  applyTo(document);
  wireLocaleSelect($('locale'));
  onLocaleChange(relocalize);
  listen();
  const video = setupVideo();
  // Comments take hovers and taps (likes), count in the heatmap when live, and stay
  // clear of the controls and the heatmap strip above them.
  createOverlay(video, { onCommentPointer, onLive: noteLive, bottomReserve: CONTROLS_PX + HEATMAP_PX });
  wireLikes();
  wireHeatmap(video);
  syncTime(video);
  buildSwatches();
  loadSettings();
  wireSignIn();
  wireComposer();
  wireSettings();
  wireChannels();
  wireVideos();
  wireReconnect();
  wireLog();
  wireCommentList();

  // Keep the retry countdown fresh; reconnect at once when the network comes back.
  tickRetryCountdown();
  pollPresence();
  reconnectWhenOnline();

  renderLoginButtons();
  renderIdentity();
  renderSubscriptions();
  renderChannelList();
  loadVideos();
  connect();
}

init();

// A small handle for browser tests and the console.
globalThis.danmakuDemo = {
  state,
  overlay,
  video: VIDEO_ID,
  connect,
  subscribe,
  unsubscribe,
  /** Posts like the send box does, with any body (the server still checks it). */
  post,
  /** Draws a comment locally, without the server. */
  drawDanmaku: (d) => overlay.preview(d),
};
