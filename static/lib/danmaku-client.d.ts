// Type declarations of danmaku-client.js, the embeddable client of the danmaku server
// (WebSocket protocol v1: openapi/asyncapi.yaml; REST: openapi/openapi.json).

// ---------------------------------------------------------------------------------------
// Views and frames

export type Role = 'guest' | 'free' | 'member' | 'admin';
export type Tier = 'free' | 'member' | 'admin';
export type Mode = 'scroll' | 'top' | 'bottom';
export type Size = 'small' | 'normal' | 'large';
export type Audience = 'everyone' | 'members';

/** Who a socket is: `welcome.user`, and the user a refresh installs. */
export interface UserInfo {
  /** The token's `sub`; null for guests. */
  sub: string | null;
  /** The token's `name` claim, else `sub`; `guest` for guests. */
  name: string;
  role: Role;
}

/** A comment as stored and as viewers see it (never the author's `sub`). */
export interface DanmakuView {
  /** Store-assigned, strictly increasing. */
  id: number;
  video: string;
  /** Video position in seconds (millisecond precision). */
  time: number;
  /** The normalised text. */
  text: string;
  mode: Mode;
  /** `#rrggbb`, lowercase. */
  color: string;
  size: Size;
  audience: Audience;
  user: { name: string };
  /** Unix milliseconds (server clock). */
  created_at: number;
  /** Likes so far. */
  likes: number;
  /** In history items read with a user's token only: whether that user liked it. */
  liked?: boolean;
  /**
   * Only on comments hidden from the audience: `held` waits for a moderator's review
   * (its author sees it so, in history and in the post reply); `shadow` is a shadow-banned
   * author's (or a `shadow` block rule's) comment. Admins and the video's moderators get
   * both, in history and as marked `danmaku` events; a shadowed comment's author gets it
   * without `state`, like any comment. Absent: visible to its audience.
   */
  state?: CommentState;
}

/** Why a comment is hidden from the audience (see `DanmakuView.state`). */
export type CommentState = 'held' | 'shadow';

/** The outcome of a held comment's review (`danmaku_reviewed`). */
export type ReviewState = 'visible' | 'rejected';

/** What to post; the server fills in defaults and checks the role's privileges. */
export interface DanmakuDraft {
  text: string;
  /** Seconds, 0 to 86400; default 0. */
  time?: number;
  mode?: Mode;
  /** `#rrggbb`, case-insensitive; default `#ffffff`. */
  color?: string;
  size?: Size;
  audience?: Audience;
}

export interface WelcomeFrame {
  type: 'welcome';
  protocol: 1;
  /** Connection id (decimal string), for support and logs. */
  conn: string;
  user: UserInfo;
  /** Interval of the server's WebSocket pings; the client pings the app level as often. */
  heartbeat_s: number;
}

export interface SubscribeReply {
  type: 'reply';
  id: number;
  ok: true;
  op: 'subscribe';
  channel: string;
  tier: Tier;
  epoch?: string;
  seq?: number;
  /** Only when the subscribe carried `since`. */
  recovered?: boolean;
  replayed?: number;
}

export interface UnsubscribeReply {
  type: 'reply';
  id: number;
  ok: true;
  op: 'unsubscribe';
  channel: string;
}

/** Any channel event, as received (after batch unpacking). */
export interface ChannelEvent<T = unknown> {
  /** The event name: `danmaku`, `danmaku_deleted`, `danmaku_likes`, `danmaku_reviewed`, `danmaku_fold`, `presence`, a push's event... */
  type: string;
  channel: string;
  /** Absent only on comment events a node delivers while its bus is down. */
  seq?: number;
  /** Publication time, unix milliseconds (server clock). */
  ts: number;
  data: T;
}

/** Any server frame (the 'frame' event). */
export type ServerFrame =
  | WelcomeFrame
  | { type: 'reply'; id: number | string | null; ok: boolean; op?: string; error?: { code: string; message: string; retry_after_ms?: number }; [key: string]: unknown }
  | { type: 'unsubscribed'; channel: string; reason: string; message: string }
  | TokenExpiredFrame
  | ChannelEvent;

export interface TokenExpiredFrame {
  type: 'token_expired';
  /** Seconds left to refresh before the server closes the socket with 4001. */
  grace_s: number;
}

export interface DanmakuDeleted {
  id: number;
  video: string;
}

/**
 * A held comment was reviewed: to its author, the video's moderators and admins. After
 * `visible` the rest of the audience gets a plain `danmaku` event; after `rejected` the
 * author also gets `danmaku_deleted`.
 */
export interface DanmakuReviewed {
  id: number;
  video: string;
  state: ReviewState;
}

/**
 * A spam wave folded into its first comment (`danmaku_fold`): within the server's fold
 * window, later comments of the room whose text normalises the same (case, width, spaces,
 * repeated characters: `2333333` = `２３３３`) are stored but not published; instead this
 * event says that comment `id` now stands for `count` comments, itself included. Sent
 * again (about every 500 ms) while the count grows, within the first comment's audience.
 */
export interface DanmakuFold {
  id: number;
  video: string;
  /** The comments `id` stands for, itself included (2 or more). */
  count: number;
}

/** The answer to a report (`POST /api/danmaku/{id}/report`). */
export interface ReportResult {
  id: number;
  /** false when this user had already reported the comment (nothing changed). */
  new: boolean;
}

export interface DanmakuLikes {
  id: number;
  video: string;
  likes: number;
}

export interface Presence {
  /** Sockets subscribed to the room on the server. */
  total: number;
}

export interface History {
  video: string;
  count: number;
  /** Ordered by video time, then id. */
  items: DanmakuView[];
}

export interface HistoryOptions {
  /** Video time from, seconds (inclusive). */
  from?: number;
  /** Video time to, seconds (exclusive). */
  to?: number;
  /** Page size: server default 1000, at most 10000. */
  limit?: number;
  /** Only comments with a greater id. */
  afterId?: number;
}

export interface LikeState {
  id: number;
  likes: number;
  liked: boolean;
}

export interface Heatmap {
  video: string;
  /** The span counted, seconds of video time. */
  duration: number;
  bucket_seconds: number;
  /** Comments per bucket, `buckets` of them. */
  counts: number[];
  total: number;
  /** Up to 5, highest first; `time` is the bucket's centre. */
  peaks: { time: number; count: number }[];
}

// ---------------------------------------------------------------------------------------
// Options, events

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** Why the token provider is asked. */
export type TokenReason = 'connect' | 'reconnect' | 'refresh' | 'expired' | 'refused' | 'request';

export interface TokenContext {
  reason: TokenReason;
  /** With `refused`: how the server refused the last token (HTTP 401). */
  error?: DanmakuError;
}

export interface DanmakuClientOptions {
  /** ws(s) URL of `/ws`. Default: the page's origin; in Node, derived from `baseUrl`. */
  url?: string;
  /** REST origin. Default: the origin of `url` (the page's origin when `url` is not given). */
  baseUrl?: string;
  /** A JWT. Without `token` and `getToken` the client is a read-only guest. */
  token?: string;
  /**
   * Called before each connect, ~30 s before the token's `exp` (the new token is sent
   * with `refresh` on the live socket), on `token_expired`, and after a refused token
   * (returning the same token again stops the client). null: connect as a guest.
   */
  getToken?: (ctx: TokenContext) => Promise<string | null> | string | null;
  /** Exponential backoff with full jitter; `false`: never reconnect. Default 1000 / 30000. */
  reconnect?: { minMs?: number; maxMs?: number } | false;
  /** A WebSocket implementation (default: the global one). */
  WebSocket?: typeof WebSocket;
  /** A fetch implementation (default: the global one). */
  fetch?: typeof fetch;
  /** How long an op waits for its reply (default 10000 ms; then `timeout`). */
  requestTimeoutMs?: number;
  /** How long a socket may take to be welcomed (default 15000 ms). */
  connectTimeoutMs?: number;
  /** How long before `exp` the token is renewed (default 30000 ms; half the lifetime if shorter). */
  refreshLeadMs?: number;
}

/** What comes with each channel event. */
export interface EventMeta {
  channel: string;
  seq?: number;
  ts?: number;
  /** The event name (a push's `event`). */
  type?: string;
  /** Sent again by the server after a reconnect (`since` recovery). */
  replayed: boolean;
  /** Read from the history API after a reconnect the server could not replay. */
  refetched: boolean;
  /**
   * A comment id already delivered: only the 'event' listeners see it. A comment deleted
   * (`danmaku_deleted`) and published again (hidden by reports, then approved) is not one.
   */
  duplicate: boolean;
}

export interface PushMeta extends EventMeta {
  /** Scheduled pushes: which schedule and run sent it. */
  schedule?: { id: string; name: string; run: number };
}

export interface StateInfo {
  /** With 'connecting' and 'reconnecting': the attempt number (0 first). */
  attempt?: number;
  /** With 'reconnecting': the wait before the next attempt and when it ends (Date.now() ms). */
  delayMs?: number;
  retryAt?: number;
  /** With 'reconnecting': the close that caused it. */
  code?: number;
  reason?: string;
  /** With 'closed': the refusal (or, with reconnecting off, the loss) that stopped the client. */
  error?: DanmakuError;
}

export interface DanmakuClientEvents {
  state: (state: ConnectionState, info: StateInfo) => void;
  welcome: (frame: WelcomeFrame, info: { sameIdentity: boolean; reconnect: boolean }) => void;
  danmaku: (view: DanmakuView, meta: EventMeta) => void;
  danmaku_deleted: (data: DanmakuDeleted, meta: EventMeta) => void;
  danmaku_likes: (data: DanmakuLikes, meta: EventMeta) => void;
  danmaku_reviewed: (data: DanmakuReviewed, meta: EventMeta) => void;
  /** A spam wave folded into its first comment: that comment now stands for `count`. */
  danmaku_fold: (data: DanmakuFold, meta: EventMeta) => void;
  presence: (data: Presence, meta: EventMeta) => void;
  /** Pushes (broadcast, role, user, channel), payload unchanged; `meta.type` is the event name. */
  push: (payload: unknown, meta: PushMeta) => void;
  /** Every channel event frame, after batch unpacking (duplicates flagged in meta). */
  event: (frame: ChannelEvent, meta: EventMeta) => void;
  /** A subscription is active (also after each resubscribe); `refetching` while missed comments load. */
  subscribed: (info: { channel: string; recovered: boolean; reply: SubscribeReply; refetching: boolean }) => void;
  /** The server dropped a subscription (a downgrade), or refused it again on a reconnect (`resubscribe`). */
  unsubscribed: (info: { channel: string; error: DanmakuError; resubscribe: boolean }) => void;
  /** Protocol or transport errors not tied to a call. */
  error: (error: DanmakuError) => void;
  close: (info: { code: number; reason: string }) => void;
  /** Extension: a new token is in force on the live socket (`auto`: the client's own renewal). */
  refreshed: (info: { user: UserInfo; reply: unknown; auto: boolean }) => void;
  /** Extension: the server's expiry notice (the client also renews when it has `getToken`). */
  token_expired: (frame: TokenExpiredFrame) => void;
  /** Extension: an app-level ping round trip. */
  pong: (info: { rtt: number }) => void;
  /** Extension: every server frame, after batch unpacking, before it is handled (logs, devtools). */
  frame: (frame: ServerFrame) => void;
}

// ---------------------------------------------------------------------------------------
// Errors, the client, the REST helper

/**
 * Codes: the server's (asyncapi "Error codes in replies"; REST `{code}`), `http_<status>`
 * for a REST error without a body, and the client's own: `network_error` (no connection,
 * or the socket dropped before the reply), `timeout`, `closed` (close() was called),
 * `cancelled` (unsubscribed before the reply), `too_many_pending`, `frame_too_large`,
 * `too_many_subscriptions`, `bad_frame`, `token_unavailable`, `missing_token`, `no_fetch`,
 * `bad_options`.
 */
export class DanmakuError extends Error {
  constructor(code: string, message?: string, options?: { status?: number; retryAfter?: number; cause?: unknown });
  readonly name: 'DanmakuError' | string;
  code: string;
  /** The HTTP status of a REST failure; undefined for socket replies and network errors. */
  status: number | undefined;
  /** Seconds to wait before trying again (`cooldown`, 429), when the server said. */
  retryAfter: number | undefined;
  static fromReply(error: unknown): DanmakuError;
}

export interface RequestOptions {
  /** Origin the path is resolved against (default: the page's). */
  baseUrl?: string;
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string | null;
  fetch?: typeof fetch;
  /** Default 15000 ms; then `timeout`. */
  timeoutMs?: number;
  /** Resolve with the body as text (an empty body as '') instead of parsed JSON (the XML export). */
  raw?: boolean;
}

/** JSON in and out; rejects with DanmakuError; never retries. Resolves null for an empty body. */
export function request<T = any>(method: string, path: string, body?: unknown, options?: RequestOptions): Promise<T>;

export class DanmakuClient {
  constructor(options?: DanmakuClientOptions);

  readonly state: ConnectionState;
  /** The live socket's user; null when not open. */
  readonly user: UserInfo | null;
  /** Last app-level ping round trip (ms), or null. */
  readonly rtt: number | null;

  on<K extends keyof DanmakuClientEvents>(type: K, fn: DanmakuClientEvents[K]): () => void;
  off<K extends keyof DanmakuClientEvents>(type: K, fn: DanmakuClientEvents[K]): void;

  /** Resolves after `welcome` (retrying with backoff); rejects on a refused token or close(). */
  connect(): Promise<WelcomeFrame>;
  /** Extension: replaces the socket now with a fresh backoff (another token, a Reconnect button). */
  reconnect(): Promise<WelcomeFrame>;
  /** No reconnect after this; pending calls reject with `closed`. connect() opens again. */
  close(): void;

  /**
   * Joins a channel now, or after the next welcome; resubscribed on every reconnect with
   * `since`. `afterId`: the highest comment id the app already has for a `video:` room (a
   * number, or a function read when needed). A refetch starts after the highest of it, the
   * ids this client received, and what history() loaded; with none of them, from the start.
   */
  subscribe(channel: string, options?: { afterId?: number | (() => number) }): Promise<SubscribeReply>;
  /** Resolves null when no op had to be sent (not connected, or not subscribed). */
  unsubscribe(channel: string): Promise<UnsubscribeReply | null>;

  /** Over the socket when open (else REST); resolves with the stored view (`state: 'held'` when it waits for review); never retried. */
  post(video: string, draft: DanmakuDraft): Promise<DanmakuView>;
  /** Extension: a new token (default: from getToken) on the live socket; resolves with the user. */
  refresh(token?: string): Promise<UserInfo>;
  /** Extension: an app-level ping; resolves with the round trip in ms. */
  ping(): Promise<number>;

  history(video: string, options?: HistoryOptions): Promise<History>;
  like(id: number): Promise<LikeState>;
  unlike(id: number): Promise<LikeState>;
  /**
   * Reports someone else's comment (free users and members; `reason` at most 200
   * characters, blank sent as none). Rejects with `own_comment`, `forbidden` (admins),
   * `unknown_danmaku`, `invalid_reason`, `report_rate` (429, `retryAfter`), 401 for guests.
   */
  report(id: number, options?: { reason?: string }): Promise<ReportResult>;
  heatmap(video: string, options?: { buckets?: number; duration?: number }): Promise<Heatmap>;
  /** The REST helper with this client's origin, fetch and current token. */
  request<T = any>(method: string, path: string, body?: unknown, options?: { raw?: boolean }): Promise<T>;
  /** The video's comments as bilibili XML (`GET /api/videos/{id}/danmaku.xml`), within this client's audience. */
  exportXml(video: string): Promise<string>;
}
