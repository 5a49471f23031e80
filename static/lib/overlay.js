// The danmaku overlay: draws comments over the video and replays stored ones in sync
// with the video time.
//
// - Stored comments live in a timeline sorted by video time. Each animation frame, the
//   comments whose time the video just crossed are drawn. A comment seen at video time t
//   that was posted at time c is drawn where it would be after (t - c) seconds of flight,
//   and its animation is paused and resumed with the video: pausing pauses them, and a
//   seek redraws what belongs on screen at the new position (nothing older), never the
//   comments the jump skipped.
// - Live comments (WebSocket events, and the sender's own comment from the reply) are
//   drawn at once and move in real time. They join the timeline marked as already shown,
//   so they replay after a later seek but are not drawn twice.
// - Scrolling comments move right to left at one speed, so two comments of one lane
//   never catch up with each other: a lane takes a new comment only when the comments
//   already in it leave room for it (and will keep leaving room). `top` and `bottom`
//   comments stay centred for a few seconds, one per lane. When no lane is free a
//   replayed comment is skipped (and counted); a live one waits a little for a lane.
// - With an `onCommentPointer` hook, stored comments (those with an id) take pointer
//   events (the rest of the overlay never does, so the video's controls keep working);
//   the page can `hold` one comment still while it shows something next to it, and
//   `setLikes` updates a comment's like count and the viewer's own-like marker.
// - Text goes in with `textContent` only.

const LANE_H = 36;
const GAP_PX = 28;
const STATIC_MS = 4500;
/** Space left at the bottom for the native video controls (the default; see `bottomReserve`). */
const BOTTOM_RESERVE = 44;
const POINTER_EVENTS = ['pointerenter', 'pointerleave', 'pointerdown'];
/** Seconds a scrolling comment takes to cross the overlay's width (plus its own width). */
const CROSS_S = 7;
const LIVE_WAIT_MS = 4000;
const MAX_ON_SCREEN = 200;
const COLOR_RE = /^#[0-9a-fA-F]{6}$/;
const SIZES = new Set(['small', 'normal', 'large']);
const MODES = new Set(['scroll', 'top', 'bottom']);

export const DEFAULT_SETTINGS = Object.freeze({
  opacity: 1,
  density: 1,
  hideScroll: false,
  hideTop: false,
  hideBottom: false,
});

/** Timeline order: by video time, then id (stable for equal times). */
function cmp(a, b) {
  return a.time - b.time || a.id - b.id;
}

/** First index whose time is > t (upper bound). */
function upperBound(list, t) {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid].time <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Normalises a comment view; returns null when it cannot be drawn. */
function normalize(d) {
  if (!d || typeof d.text !== 'string' || !d.text.trim()) return null;
  const id = Number.isSafeInteger(d.id) ? d.id : null;
  return {
    id,
    time: Number.isFinite(d.time) && d.time >= 0 ? d.time : 0,
    text: d.text.replace(/\s+/g, ' ').slice(0, 200),
    mode: MODES.has(d.mode) ? d.mode : 'scroll',
    color: typeof d.color === 'string' && COLOR_RE.test(d.color) ? d.color.toLowerCase() : '#ffffff',
    size: SIZES.has(d.size) ? d.size : 'normal',
    audience: d.audience === 'members' ? 'members' : 'everyone',
    user: d.user && typeof d.user.name === 'string' ? d.user.name : '',
    likes: Number.isSafeInteger(d.likes) && d.likes > 0 ? d.likes : 0,
    liked: d.liked === true,
    fold: Number.isSafeInteger(d.fold) && d.fold > 1 ? d.fold : 0,
  };
}

/** The fold badge's words when the page gives none: the count only. */
const FOLD_LABEL = (count) => ({ text: `\u00d7${count}`, title: '' });

export class DanmakuOverlay {
  /**
   * @param {HTMLElement} root the overlay box, positioned over the video
   * @param {HTMLVideoElement} video the player whose time drives the replay
   * @param {{onStats?: (s: object) => void,
   *   onCommentPointer?: (type: string, ev: PointerEvent, c: {id: number, node: HTMLElement}) => void,
   *   onLive?: (view: object) => void, bottomReserve?: number,
   *   foldLabel?: (count: number) => {text: string, title: string}} options
   *   `onCommentPointer` gets pointerenter / pointerleave / pointerdown on stored comments;
   *   `onLive` each live comment that joins the timeline (once per id); `bottomReserve`
   *   the px kept free at the bottom (controls, and whatever the page draws above them);
   *   `foldLabel` the words of a folded comment's badge (`×N`: it stands for N comments).
   */
  constructor(root, video, { onStats, onCommentPointer, onLive, bottomReserve, foldLabel } = {}) {
    this.root = root;
    this.video = video;
    this.onStats = onStats || (() => {});
    this.onCommentPointer = onCommentPointer || null;
    this.onLive = onLive || (() => {});
    this.foldLabel = foldLabel || FOLD_LABEL;
    this.bottomReserve = Number.isFinite(bottomReserve) && bottomReserve >= 0 ? bottomReserve : BOTTOM_RESERVE;
    this.settings = { ...DEFAULT_SETTINGS };
    /** Timeline entries {id, time, view, shownEpoch}, sorted by (time, id). */
    this.timeline = [];
    this.byId = new Map();
    /** Bumped on every seek: entries shown in an older epoch may replay. */
    this.epoch = 0;
    /** The last video time processed, or null before the first frame. */
    this.last = null;
    /** Items on screen: {node, anim, mode, lane, w, x0, v, source, id, time}. */
    this.items = new Set();
    /** Live comments waiting for a lane: {view, source, until}. */
    this.waiting = [];
    this.frozen = null;
    this.dropped = 0;
    this.shown = 0;
    video.addEventListener('seeking', () => this.onSeek());
    video.addEventListener('emptied', () => this.onSeek());
    // Follow play/pause at once, not at the next animation frame (frames can be slow).
    for (const ev of ['pause', 'play', 'playing', 'ended', 'seeked']) {
      video.addEventListener(ev, () => this.syncFrozen());
    }
    const loop = () => {
      try {
        this.tick();
      } finally {
        requestAnimationFrame(loop);
      }
    };
    requestAnimationFrame(loop);
  }

  // ---- Timeline --------------------------------------------------------------------

  /** Replaces the stored comments (history). Live entries already shown are kept. */
  setHistory(views) {
    const keep = this.timeline.filter((e) => e.shownEpoch === this.epoch && e.live);
    this.timeline = [];
    this.byId.clear();
    for (const e of keep) this.insert(e);
    this.merge(views);
    this.clear('replay');
    this.last = null;
    this.stats();
  }

  /** Adds stored comments without drawing them now (they replay when their time comes). */
  merge(views) {
    for (const d of views) {
      const view = normalize(d);
      if (!view || view.id == null || this.byId.has(view.id)) continue;
      this.insert({ id: view.id, time: view.time, view, shownEpoch: -1, live: false });
    }
  }

  /** Puts an entry in its (time, id) place and indexes it by id. */
  insert(entry) {
    const i = upperBound(this.timeline, entry.time);
    // Keep (time, id) order among equal times.
    let j = i;
    while (j > 0 && this.timeline[j - 1].time === entry.time && this.timeline[j - 1].id > entry.id) j--;
    this.timeline.splice(j, 0, entry);
    if (entry.id != null) this.byId.set(entry.id, entry);
  }

  /** The largest comment id known, for catching up after a reconnect. */
  maxId() {
    let max = 0;
    for (const id of this.byId.keys()) if (id > max) max = id;
    return max;
  }

  /**
   * Draws a live comment now. `source` is `live` (from the room) or `own` (the reply to
   * this page's post). Returns false when it is not drawn (hidden mode, duplicate).
   */
  addLive(d, source = 'live') {
    const view = normalize(d);
    if (!view) return false;
    if (view.id != null) {
      const known = this.byId.get(view.id);
      if (known) {
        if (known.shownEpoch === this.epoch) return false;
        known.shownEpoch = this.epoch;
        // A count that arrived before (danmaku_fold) stays with it.
        if (!view.fold) view.fold = known.view.fold;
      } else {
        this.insert({ id: view.id, time: view.time, view, shownEpoch: this.epoch, live: true });
        this.onLive(view);
      }
    }
    if (this.isHidden(view.mode)) return false;
    if (!this.place(view, source, 0)) {
      if (source === 'own') this.place(view, source, 0, true);
      else this.waiting.push({ view, source, until: performance.now() + LIVE_WAIT_MS });
    }
    this.stats();
    return true;
  }

  /** Forgets a deleted comment and takes it off the screen. Unknown ids are ignored. */
  remove(id) {
    const entry = this.byId.get(id);
    if (entry) {
      this.byId.delete(id);
      const i = this.timeline.indexOf(entry);
      if (i >= 0) this.timeline.splice(i, 1);
    }
    for (const item of [...this.items]) if (item.id === id) this.drop(item);
    this.waiting = this.waiting.filter((w) => w.view.id !== id);
    this.stats();
  }

  /** Draws a comment without storing it (a local preview). */
  preview(d) {
    const view = normalize({ ...d, id: null });
    if (view) this.place(view, 'preview', 0, true);
  }

  // ---- Likes and holding one comment ----------------------------------------------

  /** Like count and own-like flag of a stored comment, or null when it is unknown. */
  likesOf(id) {
    const entry = this.byId.get(id);
    return entry ? { likes: entry.view.likes, liked: entry.view.liked } : null;
  }

  /**
   * Updates a comment's like count (and, when `liked` is a boolean, whether the viewer
   * likes it) in the timeline and on screen, so a replay draws it the same way.
   */
  setLikes(id, likes, liked) {
    const entry = this.byId.get(id);
    if (entry) {
      if (Number.isSafeInteger(likes) && likes >= 0) entry.view.likes = likes;
      if (typeof liked === 'boolean') entry.view.liked = liked;
    }
    for (const item of this.items) {
      if (item.id !== id) continue;
      if (Number.isSafeInteger(likes) && likes >= 0) item.node.dataset.likes = String(likes);
      if (typeof liked === 'boolean') item.node.classList.toggle('liked', liked);
    }
  }

  /** The author's display name of a stored comment, or null when it is unknown. */
  authorOf(id) {
    const entry = this.byId.get(id);
    return entry ? entry.view.user : null;
  }

  // ---- Spam-wave folds -----------------------------------------------------------

  /**
   * A folded wave: the stored comment `id` now stands for `count` comments (itself
   * included). Kept in the timeline (a replay draws the badge) and shown on screen at once.
   */
  setFold(id, count) {
    if (!Number.isSafeInteger(count) || count < 2) return;
    const entry = this.byId.get(id);
    if (entry) entry.view.fold = count;
    for (const item of this.items) {
      if (item.id !== id) continue;
      this.drawFold(item.node, count);
      this.refit(item);
    }
  }

  /** The fold count of a stored comment (0 when it stands for itself only). */
  foldOf(id) {
    const entry = this.byId.get(id);
    return entry ? entry.view.fold : 0;
  }

  /** Puts (or updates) the `×N` badge on a drawn comment. */
  drawFold(node, count) {
    let badge = node.querySelector('.danmaku-fold');
    if (!badge) {
      badge = document.createElement('span');
      badge.className = 'danmaku-fold';
      node.append(badge);
    }
    const label = this.foldLabel(count);
    badge.textContent = label.text;
    if (label.title) badge.title = label.title;
    node.dataset.fold = String(count);
  }

  /** Redraws the fold badges on screen (after a language switch). */
  relabelFolds() {
    for (const item of this.items) {
      const count = Number(item.node.dataset.fold);
      if (count > 1) {
        this.drawFold(item.node, count);
        this.refit(item);
      }
    }
  }

  /**
   * After a flying comment changed width (a fold badge added or relabelled): a scrolling
   * one travels on to its new width's end, at the same speed from the same start, so it
   * is where it was now and leaves the screen whole. Lane checks use the new width.
   */
  refit(item) {
    const w = item.node.offsetWidth;
    if (w === item.w) return;
    item.w = w;
    if (item.mode !== 'scroll' || !(item.v > 0)) return;
    const effect = item.anim.effect;
    effect.setKeyframes([{ transform: `translateX(${item.x0}px)` }, { transform: `translateX(${-w}px)` }]);
    effect.updateTiming({ duration: ((item.x0 + w) / item.v) * 1000 });
  }

  /** The on-screen item drawn for this node, if any. */
  itemOf(node) {
    for (const item of this.items) if (item.node === node) return item;
    return null;
  }

  /** Stops one comment where it is (hover or tap), whatever the video does. */
  hold(node) {
    const item = this.itemOf(node);
    if (!item || item.held) return;
    item.held = true;
    node.dataset.held = 'true';
    item.anim.pause();
  }

  /**
   * Lets a held comment fly on from where it stopped. A replayed one keeps the lag it
   * took, so later pauses and plays of the video do not make it jump.
   */
  release(node) {
    const item = this.itemOf(node);
    if (!item || !item.held) return;
    item.held = false;
    delete node.dataset.held;
    if (item.source === 'replay') {
      const age = Math.max(0, this.video.currentTime - item.time) * 1000;
      item.lag = Math.max(0, age - (Number(item.anim.currentTime) || 0));
    }
    if (this.moving(item.source)) item.anim.play();
  }

  // ---- Settings --------------------------------------------------------------------

  /** Applies viewer settings (opacity, density, hidden modes); drops what they now hide. */
  applySettings(s) {
    this.settings = { ...this.settings, ...s };
    const st = this.settings;
    this.root.style.opacity = String(Math.min(1, Math.max(0.1, Number(st.opacity) || 1)));
    this.root.dataset.hideScroll = String(Boolean(st.hideScroll));
    this.root.dataset.hideTop = String(Boolean(st.hideTop));
    this.root.dataset.hideBottom = String(Boolean(st.hideBottom));
    for (const item of [...this.items]) {
      if (this.isHidden(item.mode) || item.lane >= this.laneCount()) this.drop(item);
    }
    this.stats();
  }

  /** Whether the viewer hid comments of this mode. */
  isHidden(mode) {
    const st = this.settings;
    return (mode === 'scroll' && st.hideScroll) || (mode === 'top' && st.hideTop)
      || (mode === 'bottom' && st.hideBottom);
  }

  /** Lanes that fit above the bottom reserve, scaled by the density setting. */
  laneCount() {
    const h = Math.max(LANE_H, this.root.clientHeight - this.bottomReserve);
    const all = Math.max(1, Math.floor(h / LANE_H));
    const density = Math.min(1, Math.max(0.1, Number(this.settings.density) || 1));
    return Math.max(1, Math.round(all * density));
  }

  // ---- The frame loop --------------------------------------------------------------

  /** A seek: replayed comments leave, and the new position is drawn from scratch. */
  onSeek() {
    this.epoch += 1;
    this.clear('replay');
    this.last = null;
  }

  /** Removes items of one source (`replay`) or all (`null`). */
  clear(source = null) {
    for (const item of [...this.items]) if (!source || item.source === source) this.drop(item);
    this.stats();
  }

  /** Pauses or resumes the replayed comments with the video. */
  syncFrozen() {
    const v = this.video;
    const frozen = v.paused || v.ended || v.seeking;
    if (frozen === this.frozen) return;
    this.frozen = frozen;
    this.root.dataset.paused = String(frozen);
    for (const item of this.items) this.syncReplayItem(item);
  }

  /** One animation frame: draws the comments whose time the video just crossed. */
  tick() {
    const v = this.video;
    this.syncFrozen();
    if (!v.seeking) {
      const t = v.currentTime;
      if (this.last === null || t < this.last - 0.3) {
        // First frame, after a seek, or the video went back by itself: show what belongs
        // on screen at t (comments still in flight), nothing older.
        if (this.last !== null && t < this.last) {
          this.epoch += 1;
          this.clear('replay');
        }
        this.emit(t - this.lookback(), t);
        this.last = t;
      } else if (t > this.last + 2) {
        // A jump forward without a seek event (a throttled tab): skip what was jumped.
        this.emit(t - 0.25, t);
        this.last = t;
      } else if (t > this.last) {
        this.emit(this.last, t);
        this.last = t;
      }
    }
    if (this.waiting.length) this.drainWaiting();
  }

  /** How far back a comment can have started and still be on screen, in seconds. */
  lookback() {
    return Math.max(CROSS_S, STATIC_MS / 1000);
  }

  /** Draws timeline entries with from < time <= to (at their position for `to`). */
  emit(from, to) {
    const list = this.timeline;
    let i = upperBound(list, from);
    for (; i < list.length && list[i].time <= to; i++) {
      const e = list[i];
      if (e.shownEpoch === this.epoch) continue;
      e.shownEpoch = this.epoch;
      if (this.isHidden(e.view.mode)) continue;
      const age = Math.max(0, to - e.time);
      if (!this.place(e.view, 'replay', age)) this.dropped += 1;
    }
    this.stats();
  }

  /** Gives waiting live comments a lane when one frees up; drops them after LIVE_WAIT_MS. */
  drainWaiting() {
    const now = performance.now();
    const still = [];
    for (const w of this.waiting) {
      if (this.isHidden(w.view.mode)) continue;
      if (this.place(w.view, w.source, 0)) continue;
      if (now < w.until) still.push(w);
      else this.dropped += 1;
    }
    this.waiting = still;
    this.stats();
  }

  // ---- Placement -------------------------------------------------------------------

  /** Whether an item moves now: live ones always, replayed ones while the video plays. */
  moving(source) {
    return source !== 'replay' || !this.frozen;
  }

  /** Current left edge of a scrolling item, in px. */
  xOf(item) {
    const t = Number(item.anim.currentTime) || 0;
    return item.x0 - (item.v * t) / 1000;
  }

  /**
   * Draws `view` as if it had been flying for `age` seconds. Returns false when no lane
   * can take it (unless `force`).
   */
  place(view, source, age, force = false) {
    if (this.items.size >= MAX_ON_SCREEN) {
      if (!force) return false;
      const oldest = this.items.values().next().value;
      if (oldest) this.drop(oldest);
    }
    const W = this.root.clientWidth || 640;
    const lanes = this.laneCount();
    const node = document.createElement('div');
    node.className = 'danmaku';
    node.textContent = view.text;
    node.style.color = view.color;
    node.style.visibility = 'hidden';
    node.dataset.mode = view.mode;
    node.dataset.size = view.size;
    node.dataset.source = source;
    node.dataset.audience = view.audience;
    if (view.id != null) node.dataset.id = String(view.id);
    node.dataset.time = view.time.toFixed(3);
    if (view.user) node.title = `${view.user} · ${view.time.toFixed(1)} s`;
    node.dataset.likes = String(view.likes);
    if (view.liked) node.classList.add('liked');
    if (view.fold > 1) this.drawFold(node, view.fold);
    if (this.onCommentPointer && view.id != null) this.listenPointer(node, view.id);
    this.root.append(node);
    const w = node.offsetWidth;
    const moving = this.moving(source);
    let lane = -1;
    let anim;
    let x0 = 0;
    let v = 0;
    if (view.mode === 'scroll') {
      v = (W + 0) / CROSS_S;
      const duration = ((W + w) / v) * 1000;
      const elapsed = Math.min(duration, age * 1000);
      const xNow = W - (v * elapsed) / 1000;
      lane = this.scrollLane(lanes, xNow, w, moving, force);
      if (lane < 0) {
        node.remove();
        return false;
      }
      x0 = W;
      node.style.top = `${4 + lane * LANE_H}px`;
      anim = node.animate(
        [{ transform: `translateX(${W}px)` }, { transform: `translateX(${-w}px)` }],
        { duration, easing: 'linear', fill: 'both' },
      );
      anim.currentTime = elapsed;
    } else {
      lane = this.staticLane(view.mode, lanes, force);
      if (lane < 0) {
        node.remove();
        return false;
      }
      const h = this.root.clientHeight;
      const top = view.mode === 'top'
        ? 4 + lane * LANE_H
        : Math.max(4, h - this.bottomReserve - (lane + 1) * LANE_H);
      node.style.top = `${top}px`;
      anim = node.animate(
        [{ transform: 'translateX(-50%)' }, { transform: 'translateX(-50%)' }],
        { duration: STATIC_MS, fill: 'both' },
      );
      anim.currentTime = Math.min(STATIC_MS, age * 1000);
    }
    node.style.visibility = '';
    const item = {
      node, anim, mode: view.mode, lane, w, x0, v, source, id: view.id, time: view.time, held: false, lag: 0,
    };
    this.items.add(item);
    if (!moving) anim.pause();
    anim.finished.then(() => this.drop(item), () => {});
    this.shown += 1;
    return true;
  }

  /** Makes a stored comment take pointer events and hands them to the page's hook. */
  listenPointer(node, id) {
    node.dataset.interactive = 'true';
    for (const type of POINTER_EVENTS) {
      node.addEventListener(type, (ev) => this.onCommentPointer(type, ev, { id, node }));
    }
  }

  /** A scrolling lane where a comment at `x`, `w` wide, overlaps nothing now or later; -1 if none. */
  scrollLane(lanes, x, w, moving, force) {
    let best = -1;
    let bestRoom = -Infinity;
    for (let lane = 0; lane < lanes; lane++) {
      let ok = true;
      let room = Infinity;
      for (const it of this.items) {
        if (it.mode !== 'scroll' || it.lane !== lane) continue;
        const ex = this.xOf(it);
        const eMoving = !it.held && this.moving(it.source);
        // Overlapping now?
        if (x < ex + it.w + GAP_PX && ex < x + w + GAP_PX) {
          ok = false;
        } else if (moving && !eMoving && x > ex) {
          ok = false; // we would run into a paused comment ahead of us
        } else if (!moving && eMoving && ex > x) {
          ok = false; // a moving comment behind us would run into us
        }
        room = Math.min(room, x - (ex + it.w));
        if (!ok) break;
      }
      if (ok) return lane;
      if (room > bestRoom) {
        bestRoom = room;
        best = lane;
      }
    }
    return force ? Math.max(0, best) : -1;
  }

  /** The first lane no other top (or bottom) comment uses; -1 if none. */
  staticLane(mode, lanes, force) {
    const used = new Set();
    for (const it of this.items) if (it.mode === mode) used.add(it.lane);
    for (let lane = 0; lane < lanes; lane++) if (!used.has(lane)) return lane;
    return force ? 0 : -1;
  }

  /** Puts a replayed comment where the video clock says, playing or paused with the video. */
  syncReplayItem(item) {
    if (item.source !== 'replay') return;
    // Align with the video clock: a replayed comment is where its age puts it (less the
    // time it was held still by the viewer).
    const age = Math.max(0, (this.video.currentTime - item.time) * 1000 - (item.lag || 0));
    const total = Number(item.anim.effect.getTiming().duration) || 0;
    if (age >= total && !item.held) {
      this.drop(item);
      return;
    }
    if (this.frozen || item.held) item.anim.pause();
    else item.anim.play();
    if (!item.held) item.anim.currentTime = age;
  }

  /** Takes an item off the screen and stops its animation. */
  drop(item) {
    if (!this.items.delete(item)) return;
    try {
      item.anim.cancel();
    } catch {
      // already gone
    }
    item.node.remove();
  }

  /** Reports the counts shown in the player bar. */
  stats() {
    this.onStats({
      onScreen: this.items.size,
      stored: this.timeline.length,
      dropped: this.dropped,
      waiting: this.waiting.length,
    });
  }
}
