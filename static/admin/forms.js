// Admin console: pieces shared by the push and schedule forms. Owns the JSON payload
// editors (checked as you type) and the target fields (user, users, channel, role)
// shown for the chosen kind of target.
//
// SECURITY: text reaches the DOM through `textContent` only.

import { $ } from '../lib/util.js';

/** Parses an editor's JSON and says below it whether it is valid. */
export function parseEditor(textarea, status) {
  try {
    const value = JSON.parse(textarea.value);
    status.dataset.ok = 'true';
    status.textContent = 'valid JSON';
    return { ok: true, value };
  } catch (e) {
    status.dataset.ok = 'false';
    status.textContent = `not JSON: ${e.message}`;
    return { ok: false };
  }
}

/** Checks an editor now and on every edit. */
export function watchEditor(textareaId, statusId) {
  const t = $(textareaId);
  const s = $(statusId);
  t.addEventListener('input', () => parseEditor(t, s));
  parseEditor(t, s);
}

/** Shows the text (or role) field a kind of target needs, with a fitting placeholder. */
export function syncTargetFields(kind, targetLabel, targetInput, roleLabel) {
  if (roleLabel) roleLabel.hidden = kind !== 'role';
  const needsText = kind === 'user' || kind === 'users' || kind === 'channel' || (!roleLabel && kind === 'role');
  targetLabel.hidden = !needsText;
  targetInput.placeholder = {
    user: 'user id, e.g. bob',
    users: 'ids, comma-separated: alice, bob',
    channel: 'e.g. video:demo or news',
    role: 'guest, free, member or admin',
  }[kind] || '';
}

/** User ids from a comma- or space-separated list. */
export function splitUsers(text) {
  return text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
}
