// Video page: the connection indicator in the top bar (#conn-state: live with its ping
// time, connecting, closed with the close code and the retry countdown) and the
// Reconnect button.
//
// SECURITY: text reaches the DOM through `textContent` only.

import { $ } from '../lib/util.js';
import { state } from './state.js';
import { reconnectNow } from './connection.js';

/** Shows the connection state; called on every `status` event of the connection. */
export function renderConn() {
  const node = $('conn-state');
  let kind;
  let text;
  const ws = state.ws;
  if (state.welcomed) {
    kind = 'open';
    text = `live${state.rtt != null ? ` · ${state.rtt} ms` : ''}`;
  } else if (ws && ws.readyState <= WebSocket.OPEN) {
    kind = 'connecting';
    text = ws.readyState === WebSocket.OPEN ? 'connecting · waiting for welcome' : 'connecting…';
  } else if (!ws && state.gen > 0 && !state.lastClose && !state.stopped) {
    kind = 'connecting';
    text = 'connecting…';
  } else {
    kind = 'closed';
    text = closedText();
  }
  node.dataset.state = kind;
  node.textContent = text;
}

function closedText() {
  const c = state.lastClose;
  let text = c ? `closed · ${c.code}${c.reason ? ` ${c.reason}` : ''}` : 'closed';
  if (state.retryTimer) {
    const s = Math.max(0, Math.ceil((state.retryAt - Date.now()) / 1000));
    text += ` · retrying in ${s}s`;
  } else if (state.stopped) {
    text += ' · not retrying';
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
