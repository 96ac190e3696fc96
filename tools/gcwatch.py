#!/usr/bin/env python3
"""Run the server with every slow garbage collection logged: a diagnostic for benchmarks.

    python3 tools/gcwatch.py run --config ircd.toml        (same arguments as `python3 -m ircd`)

It registers a gc callback, then runs the ircd package as `python3 -m ircd` would; the
server's code is unchanged. Each collection that takes at least GCWATCH_MS milliseconds
(environment, default 5) writes one line to standard error, which ircnet-style servers
send to their ircd.log:

    gcwatch: gen2 collection 248.2 ms, 0 collected

tools/linkbench.py --gc-log starts its servers this way and adds up the collections'
time in each measurement window.
"""

from __future__ import annotations

import gc
import os
import runpy
import sys
import time

THRESHOLD_MS = float(os.environ.get("GCWATCH_MS", "5"))
_started = [0.0]


def _callback(phase: str, info: dict) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
        return
    ms = (time.perf_counter() - _started[0]) * 1000
    if ms >= THRESHOLD_MS:
        sys.stderr.write(f"gcwatch: gen{info['generation']} collection {ms:.1f} ms, "
                         f"{info['collected']} collected\n")
        sys.stderr.flush()


def main() -> None:
    gc.callbacks.append(_callback)
    sys.argv = ["ircd"] + sys.argv[1:]
    runpy.run_module("ircd", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
