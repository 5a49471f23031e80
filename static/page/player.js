// Video page: the player. Owns the <video> element (the demo clip, or `?src=` when it is
// an http(s) or blob URL), its error placeholder, the room and title labels, the video
// time shown by the send box (#dm-at), and the members-only lock over the stage.
//
// SECURITY: text reaches the DOM through `textContent` only.

import { $, clip, showToast, videoTime } from '../lib/util.js';
import { VIDEO_CHANNEL, VIDEO_ID, currentRole, state } from './state.js';
import { overlay } from './overlay-wiring.js';
import { renderComposer } from './composer.js';

const DEMO_CLIP = '/demo.webm';

/** Points the video at its source and labels the page; returns the <video> element. */
export function setupVideo() {
  const video = $('video');
  const src = new URLSearchParams(location.search).get('src');
  let url = DEMO_CLIP;
  if (src) {
    try {
      const u = new URL(src, location.href);
      if (['http:', 'https:', 'blob:'].includes(u.protocol)) url = u.href;
      else srcIgnored('it must be an http(s) URL');
    } catch {
      srcIgnored('it is not a URL');
    }
  }
  video.addEventListener('error', () => {
    const code = video.error ? video.error.code : 0;
    const what = { 1: 'aborted', 2: 'a network error', 3: 'a decoding error', 4: 'an unsupported source' }[code] || 'an error';
    showVideoError(`The browser stopped with ${what} while loading ${clip(video.currentSrc || url, 120)}.`);
  });
  video.addEventListener('loadeddata', () => {
    $('video-error').hidden = true;
  });
  video.src = url;
  video.dataset.src = url;
  $('room-name').textContent = VIDEO_CHANNEL;
  $('video-title').textContent = VIDEO_ID;
  document.title = `${VIDEO_ID} · danmaku`;
  return video;
}

/** Keeps "at m:ss.s" next to the send box in step with the video. */
export function syncTime(video) {
  const at = () => {
    $('dm-at').textContent = `at ${videoTime(video.currentTime)}`;
  };
  video.addEventListener('timeupdate', at);
  video.addEventListener('seeked', at);
}

function srcIgnored(why) {
  showToast({ title: '?src= ignored', body: `The address in ?src= was not used (${why}); playing the demo clip.`, tone: 'warn', ms: 12000 });
}

function showVideoError(text) {
  $('video-error').hidden = false;
  $('video-error-detail').textContent = text;
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
    const role = currentRole();
    $('member-lock-detail').textContent = role === 'guest'
      ? 'This video and its comments are for members. Sign in as a member to watch.'
      : `This video and its comments are for members; you are signed in as ${role}. Upgrade to member to watch.`;
  }
  video.controls = !locked;
  renderComposer();
}
