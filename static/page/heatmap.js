// Video page: the comment-density curve (bilibili's "high-energy" strip) just above the
// native seek bar. An SVG filled area with a gradient, a smooth monotone cubic through
// the bucket counts of `GET /api/videos/{id}/heatmap` (counted within the viewer's
// audience), and small buttons on the peaks that seek the video there.
//
// Fetched once the video's length is known and again when the identity changes; live
// comments raise their bucket at once and a refetch follows (at most every 5 s), as do
// deletions and replayed comments. Redrawn on resize. The strip's dataset carries what
// the page holds (`total`, `buckets`, `state`), for tests and the console.
//
// SECURITY: labels reach the DOM through attributes only.

import { $, el } from '../lib/util.js';
import { formatNumber, onLocaleChange, t } from '../lib/i18n.js';
import { VIDEO_CHANNEL, VIDEO_ID, identityKey } from './state.js';
import { on } from './connection.js';
import { restClient } from './overlay-wiring.js';
import { CONTROLS_PX, TRACK_INSET_PX, seekTo } from './player.js';

/** The strip's height; the overlay keeps it clear of comments too. */
export const HEATMAP_PX = 32;
const REFETCH_MS = 5000;
/** Peak markers closer than this (px) to a higher one are not drawn. */
const PEAK_GAP_PX = 22;
const SVG_NS = 'http://www.w3.org/2000/svg';

const hm = {
  box: null,
  svg: null,
  area: null,
  line: null,
  peaks: null,
  video: null,
  /** The last answer {duration, bucket_seconds, counts, total, peaks}, or null. */
  data: null,
  /** Identity (`sub|role`) the data was fetched for. */
  fetchedFor: undefined,
  seq: 0,
  lastFetch: 0,
  timer: null,
  fetches: 0,
};

/**
 * How many buckets to ask for: about one per 8 px of width, 24 to 100, and none
 * narrower than a second (the server counts per second: narrower ones would be a comb).
 */
function bucketCount() {
  const w = hm.box.clientWidth || 640;
  const byWidth = Math.max(24, Math.min(100, Math.round(w / 8)));
  const d = videoDuration();
  return d ? Math.max(1, Math.min(byWidth, Math.floor(d))) : byWidth;
}

/** The video's length when the browser knows it, else undefined (the server then uses the last comment). */
function videoDuration() {
  const d = hm.video.duration;
  return Number.isFinite(d) && d > 0 ? Math.round(d * 1000) / 1000 : undefined;
}

/** Fetches the heatmap for the current identity and width; older answers are ignored. */
async function load() {
  if (hm.video.readyState < 1) return; // loadedmetadata calls again
  clearTimeout(hm.timer);
  hm.timer = null;
  const seq = ++hm.seq;
  const who = identityKey();
  hm.lastFetch = Date.now();
  try {
    const reply = await restClient().heatmap(VIDEO_ID, { buckets: bucketCount(), duration: videoDuration() });
    if (seq !== hm.seq) return;
    hm.fetches += 1;
    hm.fetchedFor = who;
    hm.data = normalize(reply);
    hm.box.dataset.fetches = String(hm.fetches);
    // Whose audience the counts are (`sub|role`, empty before a welcome): tests read it.
    hm.box.dataset.for = who || '';
    draw();
  } catch (e) {
    if (seq !== hm.seq) return;
    // A members-only video for a free viewer, a server restart: nothing to draw, no toast.
    console.warn(`heatmap: ${e.code}: ${e.message}`);
    hm.fetchedFor = who;
    hm.data = null;
    draw();
    hm.box.dataset.state = 'error';
  }
}

/** Checks an answer's shape; null when it cannot be drawn. */
function normalize(r) {
  if (!r || !Array.isArray(r.counts) || !(r.duration > 0) || !(r.bucket_seconds > 0)) return null;
  const counts = r.counts.map((c) => (Number.isFinite(c) && c > 0 ? c : 0));
  const peaks = Array.isArray(r.peaks)
    ? r.peaks.filter((p) => p && Number.isFinite(p.time) && p.count > 0)
    : [];
  return { duration: r.duration, bucketSeconds: r.bucket_seconds, counts, total: counts.reduce((a, b) => a + b, 0), peaks };
}

/** Refetches soon, at most once per REFETCH_MS. */
function scheduleRefetch() {
  if (hm.timer) return;
  const wait = Math.max(0, hm.lastFetch + REFETCH_MS - Date.now());
  hm.timer = setTimeout(() => {
    hm.timer = null;
    load();
  }, wait);
}

/** The overlay's hook for each new live comment: its bucket goes up now, a refetch follows. */
export function noteLive(view) {
  const d = hm.data;
  if (d) {
    const i = Math.floor(view.time / d.bucketSeconds);
    if (i >= 0 && i < d.counts.length) {
      d.counts[i] += 1;
      d.total += 1;
      draw();
    }
  }
  scheduleRefetch();
}

/** Room events that change counts the page cannot compute itself: deletions, replays. */
function onEvent({ frame, replayed, push }) {
  if (frame.channel !== VIDEO_CHANNEL || push) return;
  if (frame.type === 'danmaku_deleted' || (frame.type === 'danmaku' && replayed)) scheduleRefetch();
}

/** Lightly smooths the counts (a 1-2-1 kernel) so the curve reads as density, not spikes. */
function smooth(counts) {
  const k = [1, 2, 1];
  return counts.map((_, i) => {
    let sum = 0;
    let wsum = 0;
    for (let j = -1; j <= 1; j++) {
      const c = counts[i + j];
      if (c === undefined) continue;
      sum += c * k[j + 1];
      wsum += k[j + 1];
    }
    return sum / wsum;
  });
}

/** An SVG path through the points, monotone cubic (Fritsch-Carlson): smooth, no overshoot. */
function monotonePath(pts) {
  const n = pts.length;
  const f = (v) => Math.round(v * 10) / 10;
  if (n < 2) return n ? `M${f(pts[0][0])},${f(pts[0][1])}` : '';
  const dx = [];
  const m = [];
  for (let i = 0; i < n - 1; i++) {
    dx.push(pts[i + 1][0] - pts[i][0] || 1e-6);
    m.push((pts[i + 1][1] - pts[i][1]) / dx[i]);
  }
  const tan = [m[0]];
  for (let i = 1; i < n - 1; i++) tan.push(m[i - 1] * m[i] <= 0 ? 0 : (m[i - 1] + m[i]) / 2);
  tan.push(m[n - 2]);
  for (let i = 0; i < n - 1; i++) {
    if (m[i] === 0) {
      tan[i] = 0;
      tan[i + 1] = 0;
      continue;
    }
    const a = tan[i] / m[i];
    const b = tan[i + 1] / m[i];
    const s = a * a + b * b;
    if (s > 9) {
      const k = 3 / Math.sqrt(s);
      tan[i] = k * a * m[i];
      tan[i + 1] = k * b * m[i];
    }
  }
  let d = `M${f(pts[0][0])},${f(pts[0][1])}`;
  for (let i = 0; i < n - 1; i++) {
    const h = dx[i] / 3;
    d += `C${f(pts[i][0] + h)},${f(pts[i][1] + h * tan[i])} ${f(pts[i + 1][0] - h)},${f(pts[i + 1][1] - h * tan[i + 1])} ${f(pts[i + 1][0])},${f(pts[i + 1][1])}`;
  }
  return d;
}

/** "1:23" for a peak's label. */
function clock(s) {
  const t0 = Math.max(0, Math.floor(s));
  return `${Math.floor(t0 / 60)}:${String(t0 % 60).padStart(2, '0')}`;
}

/** Redraws the curve and the peak markers for the strip's current size. */
function draw() {
  const { box, data } = hm;
  const W = box.clientWidth;
  const H = box.clientHeight;
  hm.svg.setAttribute('viewBox', `0 0 ${W || 1} ${H || 1}`);
  hm.svg.setAttribute('width', String(W));
  hm.svg.setAttribute('height', String(H));
  // Redrawn on every live comment: keyboard focus on a peak stays on the same moment.
  const focused = hm.peaks.contains(document.activeElement) ? document.activeElement.dataset.time : null;
  hm.peaks.replaceChildren();
  box.dataset.total = String(data ? data.total : 0);
  box.dataset.buckets = String(data ? data.counts.length : 0);
  if (!data || data.total === 0 || W === 0 || H === 0) {
    hm.area.setAttribute('d', '');
    hm.line.setAttribute('d', '');
    box.dataset.state = data ? 'empty' : 'waiting';
    return;
  }
  const values = smooth(data.counts);
  const max = Math.max(...values) || 1;
  const n = values.length;
  const span = n * data.bucketSeconds;
  // Time runs along the seek bar's track, so a peak sits over its place on the bar; the
  // curve runs on flat to the strip's edges.
  const inset = W > 4 * TRACK_INSET_PX ? TRACK_INSET_PX : 0;
  const xOf = (time) => inset + (time / span) * (W - 2 * inset);
  // The top 7 px stay free, so a peak's dot stays inside the strip.
  const yOf = (v) => H - 1 - (v / max) * (H - 8);
  const pts = values.map((v, i) => [xOf((i + 0.5) * data.bucketSeconds), yOf(v)]);
  pts.unshift([0, pts[0][1]]);
  pts.push([W, pts[pts.length - 1][1]]);
  const line = monotonePath(pts);
  hm.line.setAttribute('d', line);
  hm.area.setAttribute('d', `${line}L${W},${H}L0,${H}Z`);
  box.dataset.state = 'drawn';
  drawPeaks(values, xOf, yOf);
  if (focused !== null) {
    const again = [...hm.peaks.children].find((b) => b.dataset.time === focused);
    if (again) again.focus({ preventScroll: true });
  }
}

/** One button per peak (highest first, none crowding a higher one) that seeks there. */
function drawPeaks(values, xOf, yOf) {
  const placed = [];
  for (const p of hm.data.peaks) {
    const x = xOf(p.time);
    if (x < 0 || x > hm.box.clientWidth || placed.some((q) => Math.abs(q - x) < PEAK_GAP_PX)) continue;
    placed.push(x);
    const i = Math.min(values.length - 1, Math.max(0, Math.floor(p.time / hm.data.bucketSeconds)));
    const label = t('heatmap.peak', { time: clock(p.time), count: formatNumber(p.count) });
    const btn = el('button', {
      type: 'button',
      class: 'heatmap-peak',
      title: label,
      'aria-label': label,
      dataset: { time: String(p.time), count: String(p.count) },
      onclick: () => seekTo(p.time),
    });
    btn.style.left = `${Math.round(x)}px`;
    btn.style.top = `${Math.round(yOf(values[i]))}px`;
    hm.peaks.append(btn);
  }
}

/** Builds the SVG (gradient fill, line) inside #heatmap. */
function buildSvg() {
  const svgEl = (tag, attrs) => {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    return node;
  };
  hm.svg = svgEl('svg', { class: 'heatmap-svg', 'aria-hidden': 'true', preserveAspectRatio: 'none', focusable: 'false' });
  const grad = svgEl('linearGradient', { id: 'heatmap-fill', x1: '0', y1: '0', x2: '0', y2: '1' });
  grad.append(
    svgEl('stop', { offset: '0', 'stop-color': '#ff5f8f', 'stop-opacity': '0.85' }),
    svgEl('stop', { offset: '1', 'stop-color': '#ff5f8f', 'stop-opacity': '0.15' }),
  );
  const defs = svgEl('defs', {});
  defs.append(grad);
  hm.area = svgEl('path', { class: 'heatmap-area', fill: 'url(#heatmap-fill)', d: '' });
  hm.line = svgEl('path', { class: 'heatmap-line', fill: 'none', d: '' });
  hm.svg.append(defs, hm.area, hm.line);
  hm.peaks = el('div', { class: 'heatmap-peaks' });
  hm.box.append(hm.svg, hm.peaks);
}

/** Labels the strip in the current language (and its peaks, by redrawing). */
function label() {
  hm.box.setAttribute('aria-label', t('heatmap.label'));
  if (hm.data) draw();
}

/** Wires the strip over `video`: builds it, fetches on metadata and identity, follows the room. */
export function wireHeatmap(video) {
  hm.video = video;
  hm.box = $('heatmap');
  hm.box.style.bottom = `${CONTROLS_PX}px`;
  hm.box.style.height = `${HEATMAP_PX}px`;
  buildSvg();
  label();
  onLocaleChange(label);
  video.addEventListener('loadedmetadata', load);
  video.addEventListener('durationchange', () => {
    if (hm.data && videoDuration() && Math.abs(videoDuration() - hm.data.duration) > 0.5) scheduleRefetch();
  });
  // Another identity (a new socket, or a token refreshed in place) has another audience.
  const reloadForIdentity = () => {
    if (identityKey() !== hm.fetchedFor) load();
  };
  on('welcome', reloadForIdentity);
  on('refreshed', reloadForIdentity);
  on('event', onEvent);
  let lastBuckets = bucketCount();
  new ResizeObserver(() => {
    draw();
    // A much narrower or wider strip wants another bucket count (a phone turned round).
    const n = bucketCount();
    if (Math.abs(n - lastBuckets) >= 8) {
      lastBuckets = n;
      scheduleRefetch();
    }
  }).observe(hm.box);
  load();
}
