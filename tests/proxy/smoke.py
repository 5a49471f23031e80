"""Smoke checks through nginx (tests/proxy/run.sh starts it in front of two nodes).

A page and the spec load through the proxy; a socket opened through the proxy (with an
X-Forwarded-For the node must honour, nginx being a trusted proxy) joins a video; one
comment is posted directly on each node and one through the proxy, and the viewer gets
all three. Whichever node nginx gave the viewer, one of the direct posts was made on the
other node, so the cross-node path is exercised. Prints one line per check; exits 1 on
any failure.
"""

import asyncio
import json
import os
import sys
import time
import urllib.request

from websockets.asyncio.client import connect

TOKENS = json.loads(os.environ["DANMAKU_TOKENS"])
PROXY = os.environ["DANMAKU_PROXY"]
NODES = os.environ["DANMAKU_NODES"].split(",")
FORWARDED = os.environ["DANMAKU_FORWARDED"]
VIDEO = "proxy-smoke"
TIMEOUT = 10
failures = 0


def check(name, ok, detail=""):
    global failures
    print(f"proxy: {'ok  ' if ok else 'FAIL'} {name}{'' if ok or not detail else ': ' + detail}")
    if not ok:
        failures += 1


def http(method, url, body=None, token=None):
    """One request; returns (status, headers, body bytes). HTTP errors are answers too."""
    req = urllib.request.Request(url, method=method)
    if body is not None:
        req.data = json.dumps(body).encode()
        req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def post(base, who, text):
    status, _, body = http(
        "POST", f"http://{base}/api/videos/{VIDEO}/danmaku", {"text": text, "time": 1.5}, TOKENS[who]
    )
    check(f"POST via {base} answers 201", status == 201, f"{status} {body[:200]!r}")
    return json.loads(body)["id"] if status == 201 else None


def events(frame):
    """A server frame is one object or a JSON array of them (room batches)."""
    msg = json.loads(frame)
    return msg if isinstance(msg, list) else [msg]


async def main():
    status, headers, body = http("GET", f"http://{PROXY}/")
    check("the video page loads through the proxy", status == 200 and b"<html" in body.lower(),
          f"{status}")
    check("the page keeps its content type", headers.get("content-type", "").startswith("text/html"),
          headers.get("content-type", ""))
    status, _, body = http("GET", f"http://{PROXY}/openapi.json")
    check("the spec loads through the proxy", status == 200 and b'"openapi"' in body, f"{status}")

    url = f"ws://{PROXY}/ws?access_token={TOKENS['viewer']}"
    async with connect(url, additional_headers={"X-Forwarded-For": FORWARDED}, open_timeout=TIMEOUT) as ws:
        welcome = events(await asyncio.wait_for(ws.recv(), TIMEOUT))[0]
        check("a socket connects through the proxy", welcome.get("type") == "welcome", str(welcome))
        await ws.send(json.dumps({"op": "subscribe", "id": 1, "channel": f"video:{VIDEO}"}))
        deadline = time.monotonic() + TIMEOUT
        joined = False
        while not joined and time.monotonic() < deadline:
            for ev in events(await asyncio.wait_for(ws.recv(), TIMEOUT)):
                if ev.get("type") == "reply" and ev.get("id") == 1:
                    joined = ev.get("ok") is True
                    check("subscribe through the proxy", joined, str(ev))
        if not joined:
            return
        want = {post(NODES[0], "a", "on node a"), post(NODES[1], "b", "on node b"),
                post(PROXY, "via", "through the proxy")}
        want.discard(None)
        got = set()
        deadline = time.monotonic() + TIMEOUT
        while got != want and time.monotonic() < deadline:
            try:
                frame = await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                break
            for ev in events(frame):
                if ev.get("type") == "danmaku":
                    got.add(ev["data"]["id"])
        check("posts on both nodes and through the proxy reach the viewer (one crossed nodes)",
              got == want and len(want) == 3, f"want {sorted(want)}, got {sorted(got)}")


asyncio.run(main())
sys.exit(1 if failures else 0)
