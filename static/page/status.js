// Video page: the connection indicator in the top bar (#conn-state: live with its ping
// time, connecting, closed with the close code and the retry countdown) and the
// Reconnect button.
//
// SECURITY: text reaches the DOM through `textContent` only.

import { $ } from '../lib/util.js';
import { t } from '../lib/i18n.js';
import { state } from './state.js';
import { reconnectNow } from './connection.js';

/** Shows the connection state; called on every `status` event of the connection. */
export function renderConn() {
  const node = $('conn-state');
  let kind;
  let text;
  if (state.welcomed) {
    kind = 'open';
    text = state.rtt != null ? t('conn.live_rtt', { ms: state.rtt }) : t('conn.live');
  } else if (state.phase === 'open') {
    kind = 'connecting';
    text = t('conn.awaiting_welcome');
  } else if (state.phase === 'connecting' || (state.gen > 0 && !state.lastClose && !state.stopped && !state.retryTimer)) {
    kind = 'connecting';
    text = t('conn.connecting');
  } else {
    kind = 'closed';
    text = closedText();
  }
  node.dataset.state = kind;
  node.textContent = text;
}

function closedText() {
  const c = state.lastClose;
  let text = c ? t('conn.closed_code', { code: c.code, reason: c.reason ? ` ${c.reason}` : '' }) : t('conn.closed');
  if (state.retryTimer) {
    const s = Math.max(0, Math.ceil((state.retryAt - Date.now()) / 1000));
    text += t('conn.retrying', { s });
  } else if (state.stopped) {
    text += t('conn.not_retrying');
  }
  return text;
}

/** Wires the Reconnect button (a fresh backoff). */
export function wireReconnect() {
  $('reconnect').addEventListener('click', reconnectNow);
}

/** Keeps the retry countdown fresh while a reconnect is waiting. */
export function tickRetryCountdown() {
  setInterval(() => {
    if (state.retryTimer) renderConn();
  }, 1000);
}
