"""Smoke client of danmaku behind nginx (deploy/nginx.conf), run by tests/proxy/run.sh.

It talks to the proxy from 127.0.0.2 (Linux routes all of 127.0.0.0/8 to loopback),
while nginx reaches the nodes from 127.0.0.1, the one trusted proxy: so a node that
honours nginx's X-Forwarded-For sees this client as 127.0.0.2, and one that did not
would see 127.0.0.1. Every request also carries a made-up X-Forwarded-For entry
(SPOOF): nginx appends the real address after it, and the nodes must take that one.
run.sh checks the nodes' logs for both afterwards.

Checks: the page loads through the proxy; a socket upgrades through it; comments posted
through the proxy's REST API (round robin: run.sh checks that both nodes took some)
reach a viewer through the proxy and viewers connected straight to node A and to
node B, so each direct viewer got comments posted on the other node.
"""

import asyncio
import http.client
import json
import os
import sys

from websockets.asyncio.client import connect

PROXY = os.environ["PROXY"]  # 127.0.0.1:PORT
NODES = {"A": os.environ["NODE_A"], "B": os.environ["NODE_B"]}  # host:port
# Members' tokens, one per post (a member's cooldown would refuse a second post at once).
TOKENS = os.environ["POSTER_TOKENS"].split()
CLIENT = "127.0.0.2"
SPOOF = "198.51.100.9"
VIDEO = "proxy-smoke"
POSTS = len(TOKENS)
TIMEOUT = 10.0
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


def request(method, path, body=None, headers=None):
    """One HTTP request to the proxy from CLIENT; returns (status, headers, body)."""
    host, port = PROXY.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT,
                                      source_address=(CLIENT, 0))
    h = {"X-Forwarded-For": SPOOF, **(headers or {})}
    conn.request(method, path, body=body, headers=h)
    resp = conn.getresponse()
    out = resp.status, resp.headers, resp.read()
    conn.close()
    return out


async def viewer(addr, through_proxy):
    """A guest socket subscribed to the smoke video, welcome read."""
    # Direct viewers connect from 127.0.0.1, the trusted proxy's own address: they send
    # no X-Forwarded-For (from there a node would rightly believe it).
    kwargs = ({"local_addr": (CLIENT, 0), "additional_headers": {"X-Forwarded-For": SPOOF}}
              if through_proxy else {})
    ws = await connect(f"ws://{addr}/ws", open_timeout=TIMEOUT, **kwargs)
    welcome = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    assert welcome.get("type") == "welcome", welcome
    await ws.send(json.dumps({"op": "subscribe", "id": 1, "channel": f"video:{VIDEO}"}))
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        for f in msg if isinstance(msg, list) else [msg]:
            if f.get("type") == "reply" and f.get("id") == 1:
                assert f.get("ok") is True, f
                return ws


async def texts(ws, want):
    """The smoke comments a viewer receives, until all of `want` came (or timeout)."""
    got = set()
    try:
        while not want <= got:
            msg = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
            for f in msg if isinstance(msg, list) else [msg]:
                if f.get("type") == "danmaku":
                    got.add(f["data"]["text"])
    except asyncio.TimeoutError:
        pass
    return got


async def main():
    status, headers, body = request("GET", "/")
    check("page: / loads through the proxy as HTML",
          status == 200 and "text/html" in headers.get("Content-Type", "")
          and b"<html" in body.lower(), f"{status} {headers.get('Content-Type')}")

    status, _, body = request("GET", "/ws")
    check("socket path: a plain GET reaches the node (426, not an nginx error)",
          status == 426 and b"not_websocket" in body, f"{status} {body[:200]!r}")

    proxied = await viewer(PROXY, through_proxy=True)
    check("socket: upgraded through the proxy, welcome and subscribe answered", True)
    direct = {name: await viewer(addr, through_proxy=False) for name, addr in NODES.items()}

    sent = set()
    for i in range(POSTS):
        text = f"through nginx {i}"
        status, _, body = request(
            "POST", f"/api/videos/{VIDEO}/danmaku",
            body=json.dumps({"text": text, "time": float(i)}),
            headers={"Authorization": f"Bearer {TOKENS[i]}",
                     "Content-Type": "application/json"})
        check(f"post {i}: 201 through the proxy", status == 201, f"{status} {body[:200]!r}")
        sent.add(text)

    got = await texts(proxied, sent)
    check("delivery: the viewer through the proxy got every comment", got == sent,
          sorted(sent - got))
    for name, ws in direct.items():
        got = await texts(ws, sent)
        check(f"delivery: the viewer on node {name} got every comment", got == sent,
              sorted(sent - got))
    for ws in [proxied, *direct.values()]:
        await ws.close()

    print(f"proxy smoke: {passed} passed, {len(failures)} failed")
    if failures:
        print("failed:", ", ".join(failures))
        sys.exit(1)


asyncio.run(main())
