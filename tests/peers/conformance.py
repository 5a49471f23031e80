"""WebSocket conformance of danmaku against an independent peer: Python's `websockets`.

Run by tests/peers/run.sh, which starts the real server and passes its address and
tokens. Every check runs twice over: with permessage-deflate offered (RFC 7692, the
library's default offer) and with compression off, and the mixed room puts a compressed
and a plain viewer side by side. Any failed check exits non-zero with its name.

What it proves, beyond our own Rust client (tests/fanout.rs) and Chromium (tests/e2e):
- the handshake's extension answer is one this library accepts, and none when no
  offer is made;
- the server reads compressed and fragmented client messages, control frames
  interleaved, and answers Ping;
- compressed and plain viewers of one room get the same events in the same order
  (room batches unpacked: a frame is one event object or a JSON array of them);
- a compressed message that inflates past ws_max_message closes with 1009, corrupt
  deflate data with 1007 or 1002, and neither disturbs the other sockets;
- the close handshake completes with the code the client chose.
"""

import asyncio
import json
import os
import sys
import zlib

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

BASE = os.environ["DANMAKU_WS"]  # ws://127.0.0.1:PORT/ws
TOKENS = json.loads(os.environ["DANMAKU_TOKENS"])  # {"member": ..., "free": ..., ...}
MAX_MESSAGE = int(os.environ.get("DANMAKU_WS_MAX_MESSAGE", "16384"))
TIMEOUT = 10.0
VIDEO = "conformance"
failures = []
passed = 0


def check(name, ok, detail=""):
    global passed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failures.append(name)
        print(f"FAIL {name} {detail}")


async def open_socket(role, compress):
    """Connects as `role`, with the library's default deflate offer or none."""
    ws = await connect(
        f"{BASE}?access_token={TOKENS[role]}",
        compression="deflate" if compress else None,
        max_size=4 * 1024 * 1024,
        open_timeout=TIMEOUT,
    )
    welcome = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    assert welcome.get("type") == "welcome", welcome
    return ws


def negotiated(ws):
    return ws.response.headers.get("Sec-WebSocket-Extensions")


async def frames(ws):
    """One server frame as a list of objects (a batch is a JSON array)."""
    msg = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    return msg if isinstance(msg, list) else [msg]


async def until_reply(ws, rid, seen=None):
    """Reads until the reply with id `rid`; other frames go to `seen`."""
    while True:
        for f in await frames(ws):
            if f.get("type") == "reply" and f.get("id") == rid:
                return f
            if seen is not None:
                seen.append(f)


async def subscribe(ws, rid):
    await ws.send(json.dumps({"op": "subscribe", "id": rid, "channel": f"video:{VIDEO}"}))
    reply = await until_reply(ws, rid)
    assert reply.get("ok") is True, reply
    return reply


async def collect(ws, texts, want):
    """Danmaku texts (from the set `texts`) in arrival order, until `want` have come."""
    got = []
    while len(got) < want:
        for f in await frames(ws):
            if f.get("type") == "danmaku" and f["data"]["text"] in texts:
                got.append(f["data"]["text"])
    return got


async def handshake_and_ops(compress):
    tag = "deflate" if compress else "plain"
    ws = await open_socket("member", compress)
    ext = negotiated(ws)
    if compress:
        check(f"{tag}: deflate negotiated", ext is not None and ext.startswith("permessage-deflate"), ext)
    else:
        check(f"{tag}: no extension without an offer", ext is None, ext)

    pong = await ws.ping(b"conformance")
    await asyncio.wait_for(pong, TIMEOUT)
    check(f"{tag}: Ping answered with Pong", True)

    # A fragmented op (three continuation frames), with a Ping in between the sends.
    op = json.dumps({"op": "ping", "id": 1})
    await ws.send([op[:5], op[5:11], op[11:]])
    reply = await until_reply(ws, 1)
    check(f"{tag}: fragmented op reassembled", reply.get("ok") is True and reply.get("op") == "ping", reply)

    # A large op well under the cap (compresses to a few bytes when deflate is on).
    pad = "x" * (MAX_MESSAGE - 200)
    await ws.send(json.dumps({"op": "ping", "id": 2, "pad": pad}))
    reply = await until_reply(ws, 2)
    check(f"{tag}: message near the cap accepted", reply.get("ok") is True, reply)

    await ws.close(code=1000, reason="done")
    check(f"{tag}: close handshake echoes 1000", ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1000,
          ws.protocol.close_rcvd)


async def mixed_room():
    """A compressed and a plain viewer in one room, posts from a compressed and a plain
    poster: both viewers get every comment, in the same order; no echo to the poster."""
    viewers = [await open_socket("free", True), await open_socket("free", False)]
    posters = [await open_socket("member", True), await open_socket("admin", False)]
    for i, ws in enumerate(viewers + posters):
        await subscribe(ws, 100 + i)
    check("mixed: viewer sockets negotiated as asked",
          negotiated(viewers[0]) is not None and negotiated(viewers[1]) is None)

    texts = [f"conformance {n}" for n in range(12)]
    mine = [texts[0::2], texts[1::2]]
    seen = [[], []]
    await asyncio.gather(*(post_paced(posters[i], mine[i], 1000 * (i + 1), seen[i]) for i in (0, 1)))
    got = await asyncio.gather(*(collect(v, set(texts), len(texts)) for v in viewers))
    check("mixed: compressed viewer got every comment", sorted(got[0]) == sorted(texts), got[0])
    check("mixed: plain viewer got every comment", sorted(got[1]) == sorted(texts), got[1])
    check("mixed: same order on both", got[0] == got[1])
    # Each poster also reads until it has the other's comments: its own never come.
    for i in (0, 1):
        others = set(mine[1 - i])
        rest = [f["data"]["text"] for f in seen[i] if f.get("type") == "danmaku"]
        while not others <= set(rest):
            rest += [f["data"]["text"] for f in await frames(posters[i])
                     if f.get("type") == "danmaku" and f["data"]["text"] in texts]
        check(f"mixed: poster {i} got the other's comments, none of its own",
              set(rest) == others and len(rest) == len(others), rest)
    for ws in viewers + posters:
        await ws.close()


async def post_paced(ws, mine, base_id, seen):
    """Posts each text; a `cooldown` refusal is retried after its `retry_after_ms`."""
    for n, text in enumerate(mine):
        rid = base_id + n
        while True:
            await ws.send(json.dumps({"op": "danmaku", "id": rid, "video": VIDEO,
                                      "text": text, "time": 1.0 + n}))
            reply = await until_reply(ws, rid, seen)
            if reply.get("ok") is True:
                break
            err = reply.get("error", {})
            assert err.get("code") == "cooldown", reply
            await asyncio.sleep(err.get("retry_after_ms", 100) / 1000)


def raw_deflate(data):
    c = zlib.compressobj(wbits=-15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    return out[:-4] if out.endswith(b"\x00\x00\xff\xff") else out


async def bad_compressed():
    """The bomb and corrupt data close only their own socket."""
    bystander = await open_socket("member", False)

    bomb = await open_socket("member", True)
    payload = json.dumps({"op": "ping", "id": 9, "pad": " " * (MAX_MESSAGE * 64)})
    try:
        await bomb.send(payload)  # ~1 MB inflating from ~1 KB on the wire
        await asyncio.wait_for(bomb.recv(), TIMEOUT)
        while True:
            await asyncio.wait_for(bomb.recv(), TIMEOUT)
    except ConnectionClosed:
        pass
    code = bomb.protocol.close_rcvd.code if bomb.protocol.close_rcvd else None
    check("bad: a decompression bomb closes with 1009", code == 1009, code)

    corrupt = await open_socket("member", True)
    # A frame with RSV1 set whose payload is not deflate data: bypass the library's
    # encoder by writing the frame ourselves on its transport.
    garbage = b"\xff\xff\xff\xff not deflate at all"
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(garbage))
    frame = bytes([0x80 | 0x40 | 0x1, 0x80 | len(garbage)]) + mask + body
    corrupt.transport.write(frame)
    try:
        while True:
            await asyncio.wait_for(corrupt.recv(), TIMEOUT)
    except ConnectionClosed:
        pass
    code = corrupt.protocol.close_rcvd.code if corrupt.protocol.close_rcvd else None
    check("bad: corrupt deflate data closes with 1007 or 1002", code in (1007, 1002), code)

    await bystander.send(json.dumps({"op": "ping", "id": 3}))
    reply = await until_reply(bystander, 3)
    check("bad: another socket is unaffected", reply.get("ok") is True, reply)
    await bystander.close()


async def main():
    for compress in (True, False):
        await handshake_and_ops(compress)
    await mixed_room()
    await bad_compressed()
    print(f"conformance: {passed} passed, {len(failures)} failed")
    if failures:
        print("failed:", ", ".join(failures))
        sys.exit(1)


asyncio.run(main())
