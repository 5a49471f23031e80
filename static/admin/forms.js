// Admin console: pieces shared by the push and schedule forms. Owns the JSON payload
// editors (checked as you type), the target fields (user, users, channel, role) shown
// for the chosen kind of target, and how a target reads in the tables.
//
// SECURITY: text reaches the DOM through `textContent` and attributes only.

import { $, isObject } from '../lib/util.js';
import { localize, t, tValue } from '../lib/i18n.js';

/** Parses an editor's JSON and says below it whether it is valid. */
export function parseEditor(textarea, status) {
  try {
    const value = JSON.parse(textarea.value);
    status.dataset.ok = 'true';
    localize(status, () => t('admin.json.valid'));
    return { ok: true, value };
  } catch (e) {
    status.dataset.ok = 'false';
    // The parser's own message stays as the browser wrote it.
    localize(status, () => t('admin.json.invalid', { error: e.message }));
    return { ok: false };
  }
}

/** Checks an editor now and on every edit. */
export function watchEditor(textareaId, statusId) {
  const area = $(textareaId);
  const status = $(statusId);
  area.addEventListener('input', () => parseEditor(area, status));
  parseEditor(area, status);
}

/**
 * Shows the text (or role) field a kind of target needs, with a fitting placeholder.
 * Called again after a language switch, for the placeholder.
 */
export function syncTargetFields(kind, targetLabel, targetInput, roleLabel) {
  if (roleLabel) roleLabel.hidden = kind !== 'role';
  const needsText = kind === 'user' || kind === 'users' || kind === 'channel' || (!roleLabel && kind === 'role');
  targetLabel.hidden = !needsText;
  const placeholder = {
    user: () => t('admin.target.placeholder_user'),
    users: () => t('admin.target.placeholder_users'),
    channel: () => t('admin.target.placeholder_channel'),
    role: () => t('admin.target.placeholder_role'),
  }[kind];
  targetInput.placeholder = placeholder ? placeholder() : '';
}

/** User ids from a comma- or space-separated list. */
export function splitUsers(text) {
  return text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
}

/** A push or schedule target (`{kind, role | user | users | channel}`) in words. */
export function describeTarget(target) {
  if (!isObject(target)) return '?';
  switch (target.kind) {
    case 'broadcast': return t('admin.target.desc_everyone');
    case 'role': return t('admin.target.desc_role', { role: tValue('common.role.', target.role) });
    case 'user': return t('admin.target.desc_user', { user: target.user });
    case 'users': return t('admin.target.desc_users', { users: (target.users || []).join(', ') });
    case 'channel': return t('admin.target.desc_channel', { channel: target.channel });
    default: return String(target.kind);
  }
}
