// Video page: the player. Owns the <video> element (the demo clip, or `?src=` when it is
// an http(s) or blob URL), its error placeholder, the room and title labels, the video
// time shown by the send box (#dm-at), and the members-only lock over the stage.
//
// SECURITY: text reaches the DOM through `textContent` only.

import { $, clip, showToast, videoTime } from '../lib/util.js';
import { VIDEO_CHANNEL, VIDEO_ID, currentRole, state } from './state.js';
import { overlay } from './overlay-wiring.js';
import { renderComposer } from './composer.js';
import { localize, onLocaleChange, t, tValue } from '../lib/i18n.js';

const DEMO_CLIP = '/demo.webm';
/**
 * Height of the native controls at the bottom of the video (Chromium: the seek bar at
 * the very bottom under a 48 px button row), kept clear by everything drawn over it.
 */
export const CONTROLS_PX = 64;
/** The native seek bar's track starts and ends this far (px) from the video's sides. */
export const TRACK_INSET_PX = 16;

/** Points the video at its source and labels the page; returns the <video> element. */
export function setupVideo() {
  const video = $('video');
  const src = new URLSearchParams(location.search).get('src');
  let url = DEMO_CLIP;
  if (src) {
    try {
      const u = new URL(src, location.href);
      if (['http:', 'https:', 'blob:'].includes(u.protocol)) url = u.href;
      else srcIgnored(t('player.src_not_http'));
    } catch {
      srcIgnored(t('player.src_not_url'));
    }
  }
  video.addEventListener('error', () => {
    const code = video.error ? video.error.code : 0;
    const where = clip(video.currentSrc || url, 120);
    showVideoError(() => t('player.stopped', { what: [1, 2, 3, 4].includes(code) ? tValue('player.media_error.', code) : t('player.media_error.other'), url: where }));
  });
  video.addEventListener('loadeddata', () => {
    $('video-error').hidden = true;
  });
  video.src = url;
  video.dataset.src = url;
  $('room-name').textContent = VIDEO_CHANNEL;
  $('video-title').textContent = VIDEO_ID;
  document.title = t('page.document_title', { video: VIDEO_ID });
  return video;
}

/** Keeps "at m:ss.s" next to the send box in step with the video. */
export function syncTime(video) {
  const at = () => {
    $('dm-at').textContent = t('player.at', { at: videoTime(video.currentTime) });
  };
  video.addEventListener('timeupdate', at);
  video.addEventListener('seeked', at);
  onLocaleChange(at);
  at();
}

/** Seeks the video to `t` seconds (clamped to its length when known), e.g. from a heatmap peak. */
export function seekTo(t) {
  const video = $('video');
  if (!Number.isFinite(t) || state.memberLocked) return;
  const end = Number.isFinite(video.duration) ? video.duration : Infinity;
  video.currentTime = Math.min(Math.max(0, t), end);
}

/** Warns that `?src=` was not used, and why. */
function srcIgnored(why) {
  showToast({ title: t('player.src_ignored'), body: t('player.src_ignored_body', { why }), tone: 'warn', ms: 12000 });
}

/** Shows the error placeholder over the stage with the browser's reason (`render()` gives it, in the current language). */
function showVideoError(render) {
  $('video-error').hidden = false;
  localize($('video-error-detail'), render);
}

/** The lock's explanation for the viewer's role (again after a language switch). */
export function renderMemberLock() {
  if (!state.memberLocked) return;
  const role = currentRole();
  $('member-lock-detail').textContent = role === 'guest'
    ? t('player.lock_guest')
    : t('player.lock_role', { role: tValue('common.role.', role) });
}

/** Covers (or uncovers) a members-only video: paused, no comments, no controls. */
export function setMemberLock(locked) {
  if (state.memberLocked === locked) return;
  state.memberLocked = locked;
  $('member-lock').hidden = !locked;
  const video = $('video');
  if (locked) {
    video.pause();
    overlay.clear();
    renderMemberLock();
  }
  video.controls = !locked;
  renderComposer();
}
