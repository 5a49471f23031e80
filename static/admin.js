// danmaku admin console, the entry module (admin.html loads it): pushes, schedules,
// video and channel tiers, presence, and moderation, all through the public REST API
// with an admin token (Moderation also with a room moderator's). Each panel is a module
// in static/admin/:
//
//   state.js       the shared state, the token, `call` (REST with the token)
//   session.js     sign-in: demo admin, pasted JWT, sign-out, the role badge
//   forms.js       JSON payload editors and target fields (push and schedules)
//   push.js        the Push form and its history
//   schedules.js   the Schedules panel
//   catalog.js     videos and declared channels, with their tiers
//   presence.js    the Presence table
//   moderation.js  one video's comments, room moderators, mutes, audit log
//   review.js      the same video's review queue, shadow bans, block rules, hold rule
//   reports.js     the same video's (or every video's) reported comments
//   room-rules.js  the same video's slow mode and flood rule
//   webhooks.js    the Webhooks panel (admins only)
//
// This file only wires them: the language (static/lib/i18n.js: the markup's keys are
// filled in first; each panel redraws its own text on a switch), DOM handlers, the
// refresh timers, the first load.
//
// SECURITY: text from the server or the user reaches the DOM only through
// `textContent` and `createElement`; no admin module parses HTML.

import { state } from './admin/state.js';
import { whoAmI, wireSignIn } from './admin/session.js';
import { watchEditor } from './admin/forms.js';
import { wirePush } from './admin/push.js';
import { loadSchedules, wireSchedules } from './admin/schedules.js';
import { loadChannels, loadVideos, wireCatalog } from './admin/catalog.js';
import { loadPresence, wirePresence } from './admin/presence.js';
import { applyModerationRole, loadComments, wireModeration } from './admin/moderation.js';
import { loadReview, wireReview } from './admin/review.js';
import { loadReports, wireReports } from './admin/reports.js';
import { loadRoomRules, wireRoomRules } from './admin/room-rules.js';
import { loadWebhooks, wireWebhooks } from './admin/webhooks.js';
import { $ } from './lib/util.js';
import { applyTo, wireLocaleSelect } from './lib/i18n.js';

const PRESENCE_EVERY_MS = 3000;
const SCHEDULES_EVERY_MS = 5000;

/** Reloads every panel for the current token (after a sign-in, and at start). */
async function refreshAll() {
  await whoAmI();
  await Promise.all([loadVideos(), loadChannels(), loadSchedules()]);
  loadPresence();
  applyModerationRole();
  loadComments();
  loadReview();
  loadReports();
  loadRoomRules();
  loadWebhooks();
}

function init() {
  applyTo(document);
  wireLocaleSelect($('locale'));
  wireSignIn(refreshAll);
  watchEditor('push-payload', 'push-payload-status');
  watchEditor('sched-payload', 'sched-payload-status');
  wirePush();
  wireSchedules();
  wireCatalog();
  wirePresence();
  setInterval(() => {
    if ($('presence-auto').checked && state.token) loadPresence();
  }, PRESENCE_EVERY_MS);
  setInterval(() => {
    if (state.token && state.schedulesAvailable) loadSchedules();
  }, SCHEDULES_EVERY_MS);
  wireModeration();
  wireReview();
  wireReports();
  wireRoomRules();
  wireWebhooks();
  refreshAll();
}

init();
