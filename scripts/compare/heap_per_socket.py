"""Live heap per socket from `heaptrack_print --print-leaks` of a server killed with N
idle sockets open (scripts/profile.sh heap): each allocation site holding at least 8 KB,
with bytes per socket and the first frames of our code or of the crate that allocated.

Usage: heap_per_socket.py HEAP.txt N
"""
import re
import sys

text, n = open(sys.argv[1]).read().split("\n"), int(sys.argv[2])
start = text.index("MEMORY LEAKS")
entries, cur = [], None
for line in text[start:]:
    m = re.match(r"^(\s*)([\d.]+)([KMG]?) leaked over (\d+) calls from(:?)", line)
    if m:
        size = float(m.group(2)) * {"": 1, "K": 1e3, "M": 1e6, "G": 1e9}[m.group(3)]
        cur = {"sub": m.group(5) == ":", "bytes": size, "calls": int(m.group(4)), "at": []}
        entries.append(cur)
        continue
    if cur is not None:
        m = re.search(r"at (\S+):(\d+)", line)
        if m and ("registry" in m.group(1) or m.group(1).startswith("src/")):
            where = re.sub(r".*index.crates.io-[0-9a-f]+/", "", m.group(1)) + ":" + m.group(2)
            if not re.match(r"tokio-[\d.]+/src/(runtime/task|loom)|.*alloc", where):
                cur["at"].append(where)
rows = sorted((e for e in entries if e["sub"] and e["bytes"] >= 8e3), key=lambda e: -e["bytes"])
per_socket = 0.0
for e in rows:
    share = e["bytes"] / n
    if e["calls"] >= n // 4:
        per_socket += share
    print(f"{share:8.1f} B/socket  {e['bytes'] / 1e3:8.1f} KB  {e['calls']:6d} calls  {' <- '.join(e['at'][:3])}")
print(f"{per_socket:8.1f} B/socket in sites with at least N/4 calls (per-socket allocations)")
