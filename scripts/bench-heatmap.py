#!/usr/bin/env python3
"""Heatmap benchmark: 1 M stored comments on one 2-hour video (a fifth members-only),
then time `GET /api/videos/big/heatmap?buckets=200` cold (the first read after a server
start, nothing cached) and warm. Usage: scripts/bench-heatmap.py [target/release/danmaku]

It starts the server once to create the schema, stops it, bulk-inserts the comments
with Python's sqlite3 into the same table the server writes (the schema's triggers keep
the per-second density as they would for the server's own inserts), then three times:
starts the server, times one cold read as a guest and one as a member, then 200 warm
reads, and stops it. Latencies are HTTP included, on a kept-alive connection."""
import http.client, json, os, random, signal, sqlite3, statistics, subprocess, sys, tempfile, time

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/danmaku"
N = 1_000_000
LENGTH_S = 7200
RUNS = 3

def start(data):
    env = dict(os.environ, NO_COLOR="1")
    p = subprocess.Popen([BIN, "serve", "--demo", "--bind", "127.0.0.1:0", "--data-dir", data, "--log", "info"],
                         stderr=subprocess.PIPE, text=True, env=env)
    for line in p.stderr:
        if "listening" in line and "addr=" in line:
            addr = line.split("addr=")[1].split()[0]
            return p, addr
    raise SystemExit("server did not start")

def stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)

def timed(conn, path, headers):
    s = time.perf_counter()
    conn.request("GET", path, headers=headers)
    r = conn.getresponse()
    body = r.read()
    ms = (time.perf_counter() - s) * 1000
    if r.status != 200:
        raise SystemExit(f"{path}: {r.status} {body[:200]!r}")
    return ms, json.loads(body)

def member_token(addr):
    c = http.client.HTTPConnection(addr)
    c.request("POST", "/api/demo/token", body=json.dumps({"sub": "alice", "role": "member"}),
              headers={"content-type": "application/json"})
    r = c.getresponse()
    body = json.loads(r.read())
    if r.status != 200:
        raise SystemExit(f"demo token: {r.status} {body}")
    return body["token"]

data = tempfile.mkdtemp()
p, _ = start(data)
stop(p)
db = sqlite3.connect(os.path.join(data, "danmaku.db"))
rng = random.Random(7)
t0 = time.time()
rows = ((("big", int(rng.triangular(0, LENGTH_S * 1000, LENGTH_S * 600)), f"comment {i}", "scroll",
          16777215, "normal", "members" if i % 5 == 0 else "everyone", f"u{i % 5000}",
          f"user {i % 5000}", 1_700_000_000_000 + i)) for i in range(N))
db.executemany("INSERT INTO danmaku (video, time_ms, text, mode, color, size, audience, sub, name, created_at)"
               " VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
db.commit()
rows_density = db.execute("SELECT COUNT(*) FROM danmaku_density WHERE video = 'big'").fetchone()[0]
db.close()
print(f"inserted {N} comments in {time.time() - t0:.1f} s ({rows_density} density rows)")
path = "/api/videos/big/heatmap?buckets=200"
cold_guest, cold_member, warm = [], [], []
for run in range(RUNS):
    p, addr = start(data)
    token = member_token(addr)
    conn = http.client.HTTPConnection(addr)
    conn.request("GET", "/api/videos")  # open the connection before timing
    conn.getresponse().read()
    ms, h = timed(conn, path, {})
    cold_guest.append(ms)
    assert h["total"] == N - N // 5, h["total"]
    ms, h = timed(conn, path + "&duration=7200", {"authorization": f"Bearer {token}"})
    cold_member.append(ms)  # cached by the guest read: the same counts, another view
    assert h["total"] == N, h["total"]
    for _ in range(200):
        ms, _ = timed(conn, path, {})
        warm.append(ms)
    stop(p)
    print(f"run {run + 1}: cold {cold_guest[-1]:.2f} ms, member view {cold_member[-1]:.2f} ms, "
          f"warm median {statistics.median(warm[-200:]):.3f} ms")
warm.sort()
print(f"1 M comments, 200 buckets: cold read median {statistics.median(cold_guest):.2f} ms "
      f"(runs {', '.join(f'{x:.2f}' for x in cold_guest)}); warm median {statistics.median(warm):.3f} ms, "
      f"p99 {warm[int(len(warm) * 0.99)]:.3f} ms over {len(warm)} reads; HTTP included")
