#!/usr/bin/env python3
"""History-window benchmark: 1 M stored comments on one video, then time 10-second
window queries over HTTP. Usage: scripts/bench-history.py [target/release/danmaku]

It starts the server once to create the schema, stops it, bulk-inserts the comments
with Python's sqlite3 (same table the server writes), restarts the server and times
`GET /api/videos/big/danmaku?from=T&to=T+10` at random positions (median, p90, max)."""
import json, os, random, signal, sqlite3, statistics, subprocess, sys, tempfile, time, urllib.request

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/danmaku"
N = 1_000_000
LENGTH_S = 7200

def start(data):
    env = dict(os.environ, NO_COLOR="1")
    p = subprocess.Popen([BIN, "serve", "--bind", "127.0.0.1:0", "--data-dir", data, "--log", "info"],
                         stderr=subprocess.PIPE, text=True, env=env)
    for line in p.stderr:
        if "listening" in line and "addr=" in line:
            addr = line.split("addr=")[1].split()[0]
            return p, addr
    raise SystemExit("server did not start")

def stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)

data = tempfile.mkdtemp()
p, _ = start(data)
stop(p)
db = sqlite3.connect(os.path.join(data, "danmaku.db"))
rng = random.Random(7)
t0 = time.time()
rows = ((("big", rng.randrange(LENGTH_S * 1000), f"comment {i}", "scroll", 16777215, "normal",
          "everyone", f"u{i % 5000}", f"user {i % 5000}", 1_700_000_000_000 + i)) for i in range(N))
db.executemany("INSERT INTO danmaku (video, time_ms, text, mode, color, size, audience, sub, name, created_at)"
               " VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
db.commit()
db.close()
print(f"inserted {N} comments in {time.time() - t0:.1f} s")
p, addr = start(data)
lat, counts = [], []
for _ in range(200):
    t = rng.randrange(LENGTH_S - 10)
    url = f"http://{addr}/api/videos/big/danmaku?from={t}&to={t + 10}"
    s = time.perf_counter()
    body = urllib.request.urlopen(url).read()
    lat.append((time.perf_counter() - s) * 1000)
    counts.append(json.loads(body)["count"])
stop(p)
lat.sort()
print(f"10 s window over {N} comments: {statistics.median(counts):.0f} comments per window; "
      f"latency median {statistics.median(lat):.2f} ms, p90 {lat[int(len(lat) * 0.9)]:.2f} ms, "
      f"max {lat[-1]:.2f} ms (200 queries, HTTP included)")
