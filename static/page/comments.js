// Video page: the comment list (#comment-list, the newest comments first, capped) and the
// comments hidden from the audience. Owns which comment is hidden and why, as the server
// says in `state`:
//
//   - `held`: waiting for a moderator's review. Its author gets it so in history and in the
//     post reply, marked "pending review"; admins and the video's moderators get it (and
//     others' held comments) in history and as marked `danmaku` events, marked "held".
//   - `shadow`: a shadow-banned author's comment, marked "shadowed" for admins and
//     moderators. Its author gets it without `state`, so on their page it is an ordinary
//     comment in every way: nothing here can tell, and nothing here tries to.
//
// Hidden comments are listed with their badge but NOT flown over the video and kept out of
// the overlay's timeline (the overlay draws what the audience sees). A `danmaku_reviewed`
// event settles a held one: `visible` clears its mark and flies it now (the rest of the
// audience receives it live at that moment); `rejected` takes it away (its author is told
// with a toast).
//
// A spam wave folded by the server (`danmaku_fold {id, count}`: later copies of the same
// text are stored but not published) shows as `×N` on its first comment here and on its
// flying copy (static/lib/overlay.js); the copies never reach this page live.
//
// SECURITY: text reaches the DOM through `el` (textContent, createElement) only.

import { $, el, isObject, showToast, videoTime } from '../lib/util.js';
import { formatNumber, onLocaleChange, t } from '../lib/i18n.js';
import { state } from './state.js';

/** Entries kept in the list: the newest ones by id. */
const CAP = 100;
const HIDDEN = new Set(['held', 'shadow']);

/** id -> {view, hidden: 'held' | 'shadow' | null, mine} for the listed comments. */
const entries = new Map();
/** Ids this page posted (their reply said so): a held one is "pending review" for us. */
const ownIds = new Set();
/** id -> how many comments a folded wave's first comment stands for (2 or more). */
const folds = new Map();

/** Whether this page posted the comment (the reply to its post said so). */
export function isOwnComment(id) {
  return ownIds.has(id);
}

/** The words of a fold badge: `×N`, and a title saying what it means. */
export function foldLabel(count) {
  const n = formatNumber(count);
  return { text: t('comments.fold', { n }), title: t('comments.fold_title', { n }) };
}

/** A `danmaku_fold` event: comment `id` now stands for `count` comments (itself included). */
export function setFoldCount(id, count) {
  if (!Number.isSafeInteger(id) || !Number.isSafeInteger(count) || count < 2) return;
  if (folds.get(id) === count) return;
  // Kept even before the comment is listed (a history load may bring it afterwards).
  folds.delete(id);
  folds.set(id, count);
  while (folds.size > CAP * 2) folds.delete(folds.keys().next().value);
  if (entries.has(id)) renderCommentList();
}

/** Why a comment is hidden from the audience ('held', 'shadow'), or null when it is not. */
export function hiddenState(view) {
  return isObject(view) && HIDDEN.has(view.state) ? view.state : null;
}

/** Whether a listed held comment is the viewer's own (moderators and admins are never held). */
function isMine(view) {
  if (ownIds.has(view.id)) return true;
  const user = state.user;
  if (!user || !user.sub || user.role === 'admin') return false;
  return hiddenState(view) === 'held' && isObject(view.user) && view.user.name === user.name;
}

/** Replaces the list with a history load (every item, hidden ones included). */
export function listHistory(items) {
  entries.clear();
  const newest = items.filter((v) => isObject(v) && Number.isSafeInteger(v.id))
    .sort((a, b) => b.id - a.id).slice(0, CAP).reverse();
  for (const view of newest) entries.set(view.id, { view, hidden: hiddenState(view), mine: false });
  for (const entry of entries.values()) entry.mine = isMine(entry.view);
  renderCommentList();
}

/** Lists one comment (live, caught up, or this page's own post); a known id is updated. */
export function listComment(view, { mine = false } = {}) {
  if (!isObject(view) || !Number.isSafeInteger(view.id) || typeof view.text !== 'string') return;
  if (mine) ownIds.add(view.id);
  const known = entries.get(view.id);
  entries.delete(view.id); // re-inserted last: newest
  entries.set(view.id, { view, hidden: hiddenState(view), mine: mine || (known ? known.mine : isMine(view)) });
  while (entries.size > CAP) {
    let oldest = Infinity;
    for (const id of entries.keys()) oldest = Math.min(oldest, id);
    entries.delete(oldest);
  }
  renderCommentList();
}

/** Takes a comment off the list (deleted, rejected). */
export function unlist(id) {
  if (entries.delete(id)) renderCommentList();
}

/**
 * A `danmaku_reviewed` event. Returns what to fly: `{view, mine}` (the view without its
 * mark) after an approval of a comment this page listed; null otherwise.
 */
export function onReviewed(data) {
  if (!isObject(data) || !Number.isSafeInteger(data.id)) return null;
  const entry = entries.get(data.id);
  if (data.state === 'rejected') {
    if (entry) {
      entries.delete(data.id);
      renderCommentList();
      if (entry.mine) showToast({ title: t('comments.rejected'), body: entry.view.text, tone: 'warn', dataset: { reviewed: 'rejected' } });
    }
    return null;
  }
  if (data.state !== 'visible' || !entry || !entry.hidden) return null;
  const { state: _, ...view } = entry.view;
  entry.view = view;
  entry.hidden = null;
  renderCommentList();
  return { view, mine: entry.mine };
}

/** The badge of a hidden comment: pending (the viewer's own), held or shadowed. */
function badge(entry) {
  if (!entry.hidden) return null;
  let kind = entry.hidden;
  if (kind === 'held' && entry.mine) kind = 'pending';
  const text = {
    pending: () => t('comments.badge_pending'),
    held: () => t('comments.badge_held'),
    shadow: () => t('comments.badge_shadow'),
  }[kind];
  const title = {
    pending: () => t('comments.badge_pending_title'),
    held: () => t('comments.badge_held_title'),
    shadow: () => t('comments.badge_shadow_title'),
  }[kind];
  return el('span', { class: 'comment-badge', dataset: { badge: kind }, title: title(), text: text() });
}

/** The `×N` of a folded wave's first comment; null for the others. */
function foldBadge(id) {
  const count = folds.get(id);
  if (!count) return null;
  const label = foldLabel(count);
  return el('span', { class: 'comment-fold', dataset: { fold: String(count) }, title: label.title, text: label.text });
}

/** Draws the list, newest first (again after a language switch). */
export function renderCommentList() {
  const list = $('comment-list');
  if (!list) return;
  const items = [...entries.values()].sort((a, b) => b.view.id - a.view.id);
  list.replaceChildren(...items.map((entry) => {
    const v = entry.view;
    const dataset = { id: String(v.id) };
    // Only hidden entries carry marks: the viewer's own visible (or shadowed) comment is
    // drawn exactly like anyone's.
    if (entry.hidden) dataset.state = entry.hidden;
    if (entry.hidden && entry.mine) dataset.mine = 'true';
    return el('li', { class: 'comment-item', dataset },
      el('span', { class: 'comment-at', text: videoTime(v.time) }),
      el('span', { class: 'comment-user', text: isObject(v.user) && typeof v.user.name === 'string' ? v.user.name : '' }),
      el('span', { class: 'comment-text', text: v.text }),
      foldBadge(v.id),
      badge(entry));
  }));
}

/** Redraws the badges after a language switch. */
export function wireCommentList() {
  onLocaleChange(renderCommentList);
  renderCommentList();
}
