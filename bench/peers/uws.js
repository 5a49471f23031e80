// The uWebSockets reference peer for `danmaku bench` (run with `bun uws.js`).
//
// Bun's WebSocket server is uWebSockets, and its pub/sub (`subscribe` / `publish`) is
// uWS's own topic tree. This script speaks just the subset of protocol v1 that the
// bench uses (welcome, subscribe, ping, danmaku over WS, POST /api/videos/{id}/danmaku)
// and does nothing else: it stores nothing, verifies no token (it only decodes the JWT
// payload, unverified, to learn `sub`, `name` and `role`), has no cooldowns, no
// moderation and no replay. It is what "fan a comment out to a room" costs with uWS,
// the floor our server is measured against. See README.md beside it.
//
// Env: PORT (default 18090), UWS_COMPRESS=1 (permessage-deflate, shared compressor),
// UWS_IDLE_TIMEOUT (seconds, default 120), UWS_BACKPRESSURE (bytes, default 64 MiB).
import { createHash } from "node:crypto";

const PORT = Number(process.env.PORT || 18090);
const COMPRESS = process.env.UWS_COMPRESS === "1";
const IDLE_TIMEOUT = Number(process.env.UWS_IDLE_TIMEOUT || 120);
const BACKPRESSURE = Number(process.env.UWS_BACKPRESSURE || 64 * 1024 * 1024);
const json = (v) => JSON.stringify(v);

// The (unverified) claims of a JWT; no token or a bad one is a guest, as in our server
// a missing token is. A token without `name` shows a pseudonym, as ours does.
function identity(token) {
  try {
    const c = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
    if (typeof c.sub !== "string" || !["free", "member", "admin"].includes(c.role)) throw 0;
    const pseudo = "user-" + createHash("sha256").update(c.sub).digest("hex").slice(0, 6);
    return { sub: c.sub, name: c.name || pseudo, role: c.role };
  } catch {
    return { sub: null, name: "guest", role: "guest" };
  }
}

// A comment: the view (as our server's `View`) plus the event frame, with a per-channel
// increasing `seq`. Members-only comments go to the `#members` topic, which only members
// and admins join, so free viewers and guests never get them.
let nextId = 0;
const seqs = new Map();
function comment(who, video, body) {
  const audience = body.audience === "members" ? "members" : "everyone";
  const view = {
    id: ++nextId, video: String(video), time: Math.round((Number(body.time) || 0) * 1000) / 1000,
    text: String(body.text ?? ""), mode: "scroll", color: "#ffffff", size: "normal",
    audience, user: { name: who.name }, created_at: Date.now(),
  };
  const channel = `video:${view.video}`;
  const seq = (seqs.get(channel) || 0) + 1;
  seqs.set(channel, seq);
  const event = json({ type: "danmaku", channel, seq, ts: Date.now(), data: view });
  return { view, event, topic: audience === "members" ? `${channel}#members` : channel };
}

const isMember = (who) => who.role === "member" || who.role === "admin";
const notFound = () => Response.json({ code: "not_found", message: "no such route" }, { status: 404 });
let conns = 0;

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: PORT,
  async fetch(req, server) {
    const url = new URL(req.url);
    if (url.pathname === "/ws") {
      const who = identity(url.searchParams.get("access_token") || "");
      if (server.upgrade(req, { data: { who, conn: ++conns } })) return;
      return Response.json({ code: "bad_request", message: "WebSocket upgrade expected" }, { status: 400 });
    }
    if (url.pathname === "/healthz" && req.method === "GET") return new Response("ok");
    if (url.pathname === "/metrics" && req.method === "GET") return new Response("");
    const m = url.pathname.match(/^\/api\/videos\/([^/]+)\/danmaku$/);
    if (m && req.method === "POST") {
      const who = identity((req.headers.get("authorization") || "").replace(/^Bearer /i, ""));
      let body;
      try { body = await req.json(); } catch {
        return Response.json({ code: "bad_json", message: "body must be JSON" }, { status: 400 });
      }
      const c = comment(who, decodeURIComponent(m[1]), body);
      server.publish(c.topic, c.event, COMPRESS); // no socket posted it: nobody to skip
      return Response.json(c.view, { status: 201 });
    }
    return notFound();
  },
  websocket: {
    // "shared" is uWS's SHARED_COMPRESSOR (what `perMessageDeflate: true` means): no
    // per-socket sliding window, and a published message is deflated once for all its
    // subscribers (the cheapest compression uWS has). Off unless UWS_COMPRESS=1.
    perMessageDeflate: COMPRESS ? { compress: "shared", decompress: "shared" } : false,
    idleTimeout: IDLE_TIMEOUT,
    maxPayloadLength: 1024 * 1024,
    backpressureLimit: BACKPRESSURE,
    closeOnBackpressureLimit: false,
    publishToSelf: false, // as our server: a poster's own socket gets no echo
    open(ws) {
      const { who, conn } = ws.data;
      ws.send(json({ type: "welcome", protocol: 1, conn: String(conn), user: who, heartbeat_s: 25 }), COMPRESS);
    },
    message(ws, raw) {
      let f;
      try {
        f = JSON.parse(String(raw));
        if (typeof f !== "object" || f === null || Array.isArray(f)) throw 0;
      } catch {
        return ws.send(json({ type: "reply", id: null, ok: false, error: { code: "bad_json", message: "frames must be JSON objects" } }), COMPRESS);
      }
      const id = f.id ?? null;
      const who = ws.data.who;
      const ok = (extra) => ws.send(json({ type: "reply", id, ok: true, ...extra }), COMPRESS);
      const bad = (code, message) => ws.send(json({ type: "reply", id, ok: false, error: { code, message } }), COMPRESS);
      if ((f.op === "subscribe" || f.op === "unsubscribe") && typeof f.channel !== "string") return bad("bad_request", "this op needs a channel");
      if (f.op === "danmaku" && (f.video == null || typeof f.text !== "string")) return bad("bad_request", "danmaku needs a video and a text");
      switch (f.op) {
        case "subscribe":
          ws.subscribe(f.channel);
          if (f.channel.startsWith("video:") && isMember(who)) ws.subscribe(`${f.channel}#members`);
          return ok({ op: "subscribe", channel: f.channel, tier: "free", epoch: "uws", seq: 0 });
        case "unsubscribe":
          ws.unsubscribe(f.channel);
          ws.unsubscribe(`${f.channel}#members`);
          return ok({ op: "unsubscribe", channel: f.channel });
        case "ping":
          return ok({ op: "ping" });
        case "danmaku": {
          const c = comment(who, f.video, f);
          ok({ op: "danmaku", danmaku: c.view }); // acknowledge first, then publish, as ours
          ws.publish(c.topic, c.event, COMPRESS); // uWS skips the sender itself
          return;
        }
        default:
          return bad("unknown_op", `unknown op ${JSON.stringify(String(f.op)).slice(0, 40)}: this peer speaks subscribe, unsubscribe, ping and danmaku`);
      }
    },
  },
});

console.error(`uws peer (Bun ${Bun.version}) on http://127.0.0.1:${server.port}, compression ${COMPRESS ? "on" : "off"}`);
