// Video page: the like gesture on flying comments, as on bilibili. Hovering a comment
// with a mouse, or tapping it (touch, pen), holds that one comment still and shows a
// small popover next to it: a ♥ button (aria-pressed) and the like count. The button
// likes or unlikes through the REST client; `danmaku_likes` events of the room keep the
// counts of drawn and stored comments current. Guests see the count and a disabled
// button whose title asks them to sign in. Comments the viewer likes carry a marker
// (class `liked`, drawn by static/css/player.css).
//
// The same popover offers free users and members a Report button on other people's
// comments (never to guests or admins, never on the viewer's own): it opens a small form
// with an optional reason (200 characters at most) and posts the report
// (POST /api/danmaku/{id}/report); the outcome shows in the popover: reported, already
// reported (`new: false`), or the server's refusal as `code: message`. While the form
// has the focus the popover stays open; a tap elsewhere closes it.
//
// The overlay stays generic: it hands pointer events on stored comments to
// `onCommentPointer` and offers hold / release / likesOf / setLikes.
//
// SECURITY: text reaches the DOM through textContent and attributes only.

import { $, el, isObject, showToast } from '../lib/util.js';
import { formatNumber, onLocaleChange, t } from '../lib/i18n.js';
import { VIDEO_CHANNEL, currentRole, identityKey, state } from './state.js';
import { on } from './connection.js';
import { overlay, restClient } from './overlay-wiring.js';
import { CONTROLS_PX } from './player.js';
import { isOwnComment } from './comments.js';

/** Mouse: the grace to move from the comment onto the popover before it closes. */
const LEAVE_MS = 400;
/** Touch and pen: how long a tapped comment stays held. */
const TAP_MS = 4000;

const ui = {
  pop: null, btn: null, count: null, label: null, reportBtn: null, form: null, reason: null, send: null, outcome: null,
};
/** The server's cap on a report's reason. */
const REASON_MAX = 200;
/** Reports this identity filed in this page: id -> 'reported' | 'already' (reset on a new identity). */
const reported = new Map();
let reportedFor = null;
let reportBusy = false;
/** The outcome line's message for the popover's comment: a function (re-rendered on a language switch), or null. */
let outcome = null;
/** The comment the popover is for: {id, node}, or null when it is closed. */
let current = null;
let hideTimer = null;
/** The kind of pointer that last opened or entered the popover ('mouse', 'touch', 'pen'). */
let lastPointer = 'mouse';
let busy = false;
/** While the popover is open: checks every 500 ms that its comment is still on screen. */
let goneTimer = null;
let watchGone = () => {};

/** Builds the popover (once) inside the stage, above the overlay. */
function buildPopover() {
  ui.label = el('span', { class: 'visually-hidden' });
  ui.count = el('span', { class: 'like-count' });
  ui.btn = el('button', { type: 'button', class: 'like-btn', 'aria-pressed': 'false', onclick: toggle },
    el('span', { class: 'like-heart', 'aria-hidden': 'true', text: '\u2665' }), ui.label, ui.count);
  ui.reportBtn = el('button', {
    type: 'button', class: 'report-btn', 'aria-expanded': 'false', onclick: toggleReportForm,
  });
  ui.reason = el('input', {
    type: 'text', class: 'report-reason', maxlength: String(REASON_MAX), autocomplete: 'off',
  });
  ui.send = el('button', { type: 'submit', class: 'report-send' });
  ui.form = el('form', { class: 'report-form', hidden: true, onsubmit: sendReport }, ui.reason, ui.send);
  ui.outcome = el('p', { class: 'report-outcome', role: 'status', hidden: true });
  ui.pop = el('div', { id: 'like-pop', class: 'like-pop', role: 'group', hidden: true }, ui.btn, ui.reportBtn, ui.form, ui.outcome);
  // A mouse over the popover keeps it open; a finger's tap on it (pointerenter comes
  // first) restarts the tap's timer instead, so the comment flies on afterwards.
  ui.pop.addEventListener('pointerenter', (ev) => {
    lastPointer = ev.pointerType || 'mouse';
    if (ev.pointerType === 'mouse') clearTimeout(hideTimer);
    else scheduleHide(TAP_MS);
  });
  ui.pop.addEventListener('pointerleave', (ev) => {
    if (ev.pointerType === 'mouse') scheduleHide(LEAVE_MS);
  });
  $('stage').append(ui.pop);
}

/**
 * The overlay's hook: a mouse entering a comment (or a tap on one) opens the popover for
 * it; the mouse leaving closes it after a grace period.
 */
export function onCommentPointer(type, ev, { id, node }) {
  const mouse = ev.pointerType === 'mouse';
  if (type !== 'pointerleave') lastPointer = ev.pointerType || 'mouse';
  if (type === 'pointerenter' && mouse) show(id, node, 0);
  else if (type === 'pointerleave' && mouse) scheduleHide(LEAVE_MS);
  else if (type === 'pointerdown' && !mouse) {
    // A tap: no click goes through to the video under it.
    ev.preventDefault();
    show(id, node, TAP_MS);
  }
}

/** Holds the comment and opens the popover next to it; `autoHideMs` > 0 closes it later. */
function show(id, node, autoHideMs) {
  clearTimeout(hideTimer);
  if (current && current.node !== node) overlay.release(current.node);
  if (!current || current.id !== id) resetReport();
  current = { id, node };
  overlay.hold(node);
  ui.pop.dataset.id = String(id);
  render();
  ui.pop.hidden = false;
  place(node);
  if (autoHideMs > 0) scheduleHide(autoHideMs);
  if (!goneTimer) goneTimer = setInterval(() => watchGone(), 500);
}

/**
 * Closes the popover and lets its comment fly on; not while the report form has the
 * focus (someone is typing a reason) unless `force` (a tap elsewhere, the comment gone).
 */
function hide(force = false) {
  clearTimeout(hideTimer);
  if (!force && current && !ui.form.hidden && ui.pop.contains(document.activeElement)) return;
  if (current) overlay.release(current.node);
  current = null;
  ui.pop.hidden = true;
  delete ui.pop.dataset.id;
  clearInterval(goneTimer);
  goneTimer = null;
}

/** Closes the popover after `ms` unless the pointer comes back first. */
function scheduleHide(ms) {
  clearTimeout(hideTimer);
  hideTimer = setTimeout(hide, ms);
}

/** Puts the popover under the comment (above it when that would reach the controls). */
function place(node) {
  const stage = $('stage').getBoundingClientRect();
  const r = node.getBoundingClientRect();
  const pw = ui.pop.offsetWidth;
  const ph = ui.pop.offsetHeight;
  const centre = Math.min(Math.max(r.left, stage.left), stage.right) - stage.left
    + Math.min(r.width, Math.max(0, stage.right - r.left)) / 2;
  const left = Math.min(Math.max(4, centre - pw / 2), stage.width - pw - 4);
  let top = r.bottom - stage.top + 2;
  if (top + ph > stage.height - CONTROLS_PX) top = r.top - stage.top - ph - 2;
  ui.pop.style.left = `${Math.round(left)}px`;
  ui.pop.style.top = `${Math.round(Math.max(2, top))}px`;
}

/** Whether the viewer may report this comment: free users and members, on others' comments. */
function canReport(id, node) {
  const role = currentRole();
  if (role !== 'free' && role !== 'member') return false;
  if (node.dataset.source === 'own' || isOwnComment(id)) return false;
  // History carries the author's name only: a comment under the viewer's own name is theirs.
  const author = overlay.authorOf(id);
  return !(state.user && author && author === state.user.name);
}

/** Forgets the form and the outcome (another comment, another identity). */
function resetReport() {
  ui.form.hidden = true;
  ui.reason.value = '';
  ui.reportBtn.setAttribute('aria-expanded', 'false');
  outcome = null;
  delete ui.pop.dataset.reporting;
  delete ui.outcome.dataset.outcome;
}

/** The Report button: opens (or closes) the reason form under the like button. */
function toggleReportForm() {
  if (!current || reported.has(current.id)) return;
  const open = ui.form.hidden;
  ui.form.hidden = !open;
  ui.reportBtn.setAttribute('aria-expanded', String(open));
  if (open) {
    ui.pop.dataset.reporting = 'true';
    ui.reason.focus();
  } else delete ui.pop.dataset.reporting;
  render();
  place(current.node);
}

/** Posts the report of the popover's comment; the outcome shows under it. */
async function sendReport(ev) {
  ev.preventDefault();
  if (!current || reportBusy) return;
  const { id, node } = current;
  const who = identityKey();
  const reason = ui.reason.value.trim().slice(0, REASON_MAX);
  reportBusy = true;
  render();
  try {
    const reply = await restClient().report(id, { reason });
    if (who !== identityKey()) return;
    const kind = isObject(reply) && reply.new === false ? 'already' : 'reported';
    reported.set(id, kind);
    if (current && current.id === id) {
      ui.form.hidden = true;
      ui.reason.value = '';
      delete ui.pop.dataset.reporting;
      outcome = { kind, text: kind === 'already' ? () => t('report.already') : () => t('report.done') };
    }
  } catch (e) {
    if (who !== identityKey()) return;
    if (current && current.id === id) outcome = { kind: 'error', text: () => t('report.failed', { error: `${e.code}: ${e.message}` }) };
  } finally {
    reportBusy = false;
    render();
    if (current && current.node === node && node.isConnected) place(node);
  }
}

/** The report button, form and outcome line of the popover's comment. */
function renderReport() {
  if (reportedFor !== identityKey()) {
    reportedFor = identityKey();
    reported.clear();
    resetReport();
  }
  const allowed = canReport(current.id, current.node);
  const done = reported.get(current.id);
  ui.reportBtn.hidden = !allowed;
  ui.reportBtn.disabled = !allowed || Boolean(done) || reportBusy;
  ui.reportBtn.textContent = done ? t('report.reported') : t('report.button');
  ui.reportBtn.title = done ? t('report.reported_title') : t('report.button_title');
  ui.pop.dataset.report = !allowed ? 'off' : (done || 'open');
  if (!allowed) ui.form.hidden = true;
  ui.reason.placeholder = t('report.reason_placeholder');
  ui.reason.setAttribute('aria-label', t('report.reason'));
  ui.send.textContent = t('report.send');
  ui.send.disabled = reportBusy;
  ui.form.setAttribute('aria-label', t('report.form'));
  ui.outcome.hidden = !outcome || !allowed;
  ui.outcome.textContent = outcome && allowed ? outcome.text() : '';
  if (outcome) ui.outcome.dataset.outcome = outcome.kind;
  else delete ui.outcome.dataset.outcome;
}

/** Fills the popover from the overlay's copy of the comment: count, pressed, guest lock. */
function render() {
  if (!current) return;
  renderReport();
  const known = overlay.likesOf(current.id) || { likes: 0, liked: false };
  const guest = currentRole() === 'guest';
  ui.count.textContent = formatNumber(known.likes);
  ui.pop.dataset.likes = String(known.likes);
  ui.btn.setAttribute('aria-pressed', String(known.liked));
  ui.btn.classList.toggle('liked', known.liked);
  ui.btn.disabled = guest || busy;
  ui.label.textContent = t('likes.like');
  if (guest) ui.btn.title = t('likes.sign_in');
  else ui.btn.title = known.liked ? t('likes.unlike') : t('likes.like');
  ui.pop.setAttribute('aria-label', t('likes.popover'));
}

/** Likes or unlikes the popover's comment; the reply's count is the one shown. */
async function toggle() {
  if (!current || busy || currentRole() === 'guest') return;
  const { id } = current;
  const known = overlay.likesOf(id) || { liked: false };
  // The reply belongs to the viewer who clicked: dropped if someone else signed in since.
  const who = state.token;
  busy = true;
  render();
  try {
    const client = restClient();
    const reply = await (known.liked ? client.unlike(id) : client.like(id));
    if (who !== state.token) return;
    if (isObject(reply) && Number.isSafeInteger(reply.id)) overlay.setLikes(reply.id, reply.likes, reply.liked === true);
  } catch (e) {
    showToast({ title: t('likes.failed'), body: `${e.code}: ${e.message}`, tone: 'warn' });
  } finally {
    busy = false;
    render();
  }
}

/** A room event: `danmaku_likes` updates the count wherever the comment is. */
function onEvent({ frame }) {
  if (frame.channel !== VIDEO_CHANNEL || frame.type !== 'danmaku_likes' || !isObject(frame.data)) return;
  const { id, likes } = frame.data;
  if (!Number.isSafeInteger(id) || !Number.isSafeInteger(likes)) return;
  overlay.setLikes(id, likes);
  if (current && current.id === id) render();
}

/** Wires the popover: build it, listen to the room, close on a tap elsewhere. */
export function wireLikes() {
  buildPopover();
  on('event', onEvent);
  // The identity decides the guest lock; the language the labels.
  on('welcome', render);
  on('refreshed', render);
  onLocaleChange(render);
  document.addEventListener('pointerdown', (ev) => {
    if (current && !ui.pop.contains(ev.target) && ev.target !== current.node && !current.node.contains(ev.target)) hide(true);
  });
  // The focus leaving the report form (Tab, a click elsewhere): the popover may close again.
  ui.pop.addEventListener('focusout', (ev) => {
    if (current && !ui.pop.contains(ev.relatedTarget) && !ui.pop.matches(':hover')) scheduleHide(lastPointer === 'mouse' ? LEAVE_MS : TAP_MS);
  });
  ui.reason.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') toggleReportForm();
  });
  // A seek or the end of its flight can take the comment away under the popover:
  // checked while it is open (started by show(), stopped by hide()).
  watchGone = () => {
    if (current && !current.node.isConnected) hide(true);
  };
}
