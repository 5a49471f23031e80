#!/usr/bin/env python3
"""Runs a command and writes its own CPU use (rusage of that child) as JSON.

    rusage.py OUT.json -- CMD [ARGS...]

OUT.json gets {"user_s", "sys_s", "wall_s", "rc", "max_rss_kb"}. The exit code is the
command's (128+N if a signal N killed it). Used by compare-uws.sh for the load
generator's CPU, so it does not depend on GNU time being installed.
"""

import json
import os
import signal
import subprocess
import sys
import time


def main() -> int:
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        print(__doc__.strip(), file=sys.stderr)
        return 2
    out, cmd = sys.argv[1], sys.argv[3:]
    started = time.monotonic()
    child = subprocess.Popen(cmd)
    # Pass a Ctrl-C or a kill on to the command rather than orphaning it.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda s, _f: child.send_signal(s))
    while True:
        try:
            _, status, ru = os.wait4(child.pid, 0)
            break
        except InterruptedError:
            continue
    wall = time.monotonic() - started
    rc = os.waitstatus_to_exitcode(status)
    rc = 128 - rc if rc < 0 else rc
    with open(out, "w") as f:
        json.dump(
            {
                "user_s": ru.ru_utime,
                "sys_s": ru.ru_stime,
                "wall_s": wall,
                "rc": rc,
                "max_rss_kb": ru.ru_maxrss,
            },
            f,
        )
    return rc


if __name__ == "__main__":
    sys.exit(main())
