#!/usr/bin/env python3
"""Benchmarks of linked servers: each starts its own network on loopback and stops it.

    python3 tools/linkbench.py fanout  [--repeat 3] [--members 1000] [--duration 10]
    python3 tools/linkbench.py split   [--repeat 3] [--members 1000] [--duration 10]
    python3 tools/linkbench.py burst   [--repeat 3] [--users 5000] [--channels 500]
    python3 tools/linkbench.py connect
    python3 tools/linkbench.py all     (the four, one after the other)

fanout   chain s1 - s2 - s3. In one run, alternately: fan-out (deliveries/s, window
         100) and latency (100 messages/s) with the sender and the receivers on s3
         ("local", the single-server figure) and with the sender on s1, two hops
         from the receivers on s3 ("cross"). Targets: cross fan-out >= half of local,
         cross latency p99 < 20 ms. Pins: s3 on core 0; s1, s2 and the generator on 1.
split    s1 - s2, s1 on core 0 and s2 on core 1. Fan-out to one channel with every
         receiver on s1 ("one server") and with the receivers split round-robin
         between s1 and s2 ("two servers"); the sender is on s1 in both. The
         generator is not pinned (it shares the cores with the servers). Target:
         two servers' aggregate deliveries/s above one server's.
burst    s1 (core 0) holds --users idle clients (this process, a raw-socket pool on
         core 1), each in --per-client of --channels channels; then s2 (core 1) is
         started and links to s1 by itself. Reads s2's log line "burst from s1...
         complete ... (N ms after connecting)" (target < 500 ms) and checks with a
         client on s2 that LUSERS counts every user and channel. s2 is stopped and
         started again for each repeat; the pool stays connected to s1.
connect  chain s1 - s2 - s3 with autoconnect off and an [[oper]] block (hash from
         `python3 -m ircd mkpasswd`): LUSERS on each server sees 1 server; an
         operator on s1 sends CONNECT s2.irc.test, one on s3 CONNECT s2.irc.test, and
         LUSERS on every server must then count 3 servers and every user.

Servers get their directories under --dir (default /tmp/linkbench) and ports from
--base-port (default 27000; each server takes three, ten apart), with flood control
off and the limits of tools/bench_server.toml. Load comes from tools/loadgen.py
(one subprocess per measurement, its command printed), which also reports each
server's CPU share and how long its main thread waited for a CPU (ms per second,
from /proc/PID/schedstat): on a shared two-core machine that wait is often what
separates two runs.

Diagnostics: --profile DIR runs every server under cProfile (DIR/<benchmark>-sN.prof,
top 25 by tottime printed when it stops; profiled figures are slower and only say
where the time goes, setup included); --gc-log starts the servers through
tools/gcwatch.py and adds up the garbage collections they logged; --parts runs only
some of fanout's four measurements; --pins 1,1,0 and --gen-cpu N|none override the
cores chosen above, --no-pin pins nothing, --gen-nice N runs the generator niced.

Human-readable lines go to stdout as the run goes, then a table of min / median /
max for each figure; the last line of stdout is one JSON object with every run.
Only the processes this program started are stopped (by PID), also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
REPO = TOOLS.parent
sys.path.insert(0, str(TOOLS))

import ircnet  # noqa: E402
import loadgen  # noqa: E402

LIMITS = {"max_clients": 20000, "max_channels": 50, "sendq": 4194304}
BURST_RE = re.compile(r"burst from (\S+) complete: (\d+) servers, (\d+) users, (\d+) channels "
                      r"\((\d+) ms after connecting\)")
GC_RE = re.compile(r"gcwatch: gen(\d) collection ([\d.]+) ms")
SENT_RE = re.compile(r"linked with (\S+) .*sent our burst of (\d+) events in ([\d.]+) ms")


class Failed(Exception):
    """A benchmark could not run or a check failed (the message says which)."""


def say(msg: str = "") -> None:
    print(msg, flush=True)


# --------------------------------------------------------------------------- servers


class Network:
    """Servers planned and written by tools/ircnet.py; started (pinned, optionally under
    cProfile) and stopped by us."""

    def __init__(self, args, name: str, count: int, pins: list[int | None],
                 autoconnect: bool = True, extra: str = ""):
        self.args = args
        self.name = name
        base = Path(args.dir).resolve() / name
        if base.exists():
            shutil.rmtree(base)
        self.servers = ircnet.plan(count, "chain", base, args.base_port)
        ircnet.write(self.servers, extra=extra, limits=LIMITS)
        if not autoconnect:
            for s in self.servers:
                s.config.write_text(s.config.read_text().replace("autoconnect = true",
                                                                 "autoconnect = false"))
        if args.pins is not None:
            pins = (args.pins + [None] * count)[:count]
        self.pins = [None if args.no_pin else p for p in pins]

    def __getitem__(self, i: int) -> ircnet.Planned:
        return self.servers[i - 1]

    def start(self, i: int, wait: bool = True) -> ircnet.Planned:
        s = self[i]
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        cmd = [sys.executable]
        if self.args.profile:
            prof = Path(self.args.profile).resolve() / f"{self.name}-s{i}.prof"
            prof.parent.mkdir(parents=True, exist_ok=True)
            cmd += ["-m", "cProfile", "-o", str(prof)]
        if self.args.gc_log:
            cmd += [str(TOOLS / "gcwatch.py"), "run", "--config", str(s.config)]
        else:
            cmd += ["-m", "ircd", "run", "--config", str(s.config)]
        pin = self.pins[i - 1]
        if pin is not None:
            cmd = ["taskset", "-c", str(pin)] + cmd
        with open(s.dir / "ircd.log", "ab") as log:
            s.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=s.dir, env=env)
        if wait:
            ircnet.wait_listening(s)
        return s

    def start_all(self) -> None:
        for i in range(1, len(self.servers) + 1):
            self.start(i, wait=False)
        for s in self.servers:
            ircnet.wait_listening(s)

    def stop(self, i: int) -> None:
        ircnet.stop(self[i])

    def stop_all(self) -> None:
        for s in self.servers:
            ircnet.stop(s)
        if self.args.profile:
            for i in range(1, len(self.servers) + 1):
                show_profile(Path(self.args.profile).resolve() / f"{self.name}-s{i}.prof")

    def pids(self) -> list[int]:
        return [s.proc.pid for s in self.servers if s.proc is not None and s.proc.poll() is None]

    def name_cpu(self, res: dict) -> dict:
        """Add to a loadgen result each server's CPU share ("cpu": {"s1": ...}) and its
        main thread's wait for a CPU ("wait_ms_per_s"), keyed by server instead of PID."""
        by_pid = {str(s.proc.pid): f"s{s.index}" for s in self.servers if s.proc is not None}
        res["cpu"] = {by_pid[p]: v for p, v in res.get("servers_cpu", {}).items() if p in by_pid}
        res["wait_ms_per_s"] = {by_pid[p]: v for p, v in res.get("servers_runq_wait_ms_per_s", {}).items()
                                if p in by_pid}
        return res

    def log_sizes(self) -> list[int]:
        return [len(self.log(s.index)) if (s.dir / "ircd.log").exists() else 0 for s in self.servers]

    def gc_ms(self, since: list[int]) -> dict:
        """With --gc-log: ms of garbage collection each server logged since `since`
        (offsets from log_sizes()), as {"s1": {"gen2": ms, "all": ms}}."""
        out = {}
        for s, start in zip(self.servers, since):
            text = self.log(s.index)[start:] if (s.dir / "ircd.log").exists() else ""
            gen2 = total = 0.0
            for m in GC_RE.finditer(text):
                total += float(m.group(2))
                if m.group(1) == "2":
                    gen2 += float(m.group(2))
            out[f"s{s.index}"] = {"gen2": round(gen2, 1), "all": round(total, 1)}
        return out

    def log(self, i: int) -> str:
        return (self[i].dir / "ircd.log").read_text(errors="replace")

    def wait_log(self, i: int, pattern: re.Pattern, after: int = 0, timeout: float = 20.0,
                 poll=None) -> re.Match:
        """The first match of pattern in server i's log beyond offset `after`."""
        deadline = time.monotonic() + timeout
        while True:
            m = pattern.search(self.log(i), after)
            if m:
                return m
            if time.monotonic() > deadline:
                raise Failed(f"no {pattern.pattern!r} in {self[i].dir / 'ircd.log'} after {timeout:g}s")
            if poll is not None:
                poll(0.02)
            else:
                time.sleep(0.02)

    def wait_linked(self, timeout: float = 20.0) -> None:
        """Every server's log says the burst from each of its neighbours is complete."""
        for s in self.servers:
            for peer in s.peers:
                self.wait_log(s.index, re.compile(r"burst from %s complete" % re.escape(peer.name)),
                              timeout=timeout)


def show_profile(path: Path, top: int = 25) -> None:
    if not path.exists():
        say(f"  (no profile written at {path})")
        return
    say(f"--- {path}: top {top} by tottime")
    stats = pstats.Stats(str(path), stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(top)


# --------------------------------------------------------------------------- clients


def run_loadgen(args, cpu: int | None, argv: list[str]) -> dict:
    """Run tools/loadgen.py once (pinned to `cpu`, or --gen-cpu); its results dict."""
    if args.gen_cpu is not None:
        cpu = None if args.gen_cpu == "none" else int(args.gen_cpu)
    cmd = [sys.executable, str(TOOLS / "loadgen.py")] + argv
    if cpu is not None and not args.no_pin:
        cmd = ["taskset", "-c", str(cpu)] + cmd
    if args.gen_nice:
        cmd = ["nice", "-n", str(args.gen_nice)] + cmd
    say("  $ " + " ".join(cmd[cmd.index(sys.executable):]).replace(sys.executable, "python3")
        + (f"   (pinned to core {cpu})" if cpu is not None and not args.no_pin else "")
        + (f"   (nice {args.gen_nice})" if args.gen_nice else ""))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration * 3 + 180)
    except subprocess.TimeoutExpired:
        raise Failed(f"loadgen did not finish: {' '.join(argv)}") from None
    lines = proc.stdout.strip().splitlines()
    for line in lines[:-1]:
        say("    " + line)
    try:
        out = json.loads(lines[-1]) if lines else {}
    except ValueError:
        out = {}
    if proc.returncode != 0 or "results" not in out:
        raise Failed(f"loadgen failed ({out.get('error') or proc.stderr.strip()[-500:] or proc.returncode})")
    return out["results"]


class Probe:
    """One blocking raw-socket client for checks: registers, sends, reads lines, answers PING."""

    def __init__(self, port: int, nick: str, timeout: float = 10.0):
        self.nick = nick
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.timeout = timeout
        self.send(f"NICK {nick}\r\nUSER {nick} 0 * :linkbench\r\n")
        self.until(lambda p: p[1] == "001", "001")

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode())

    def lines(self, deadline: float):
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                text = line.decode("utf-8", "replace").rstrip("\r")
                if text.startswith("PING"):
                    self.send("PONG" + text[4:] + "\r\n")
                    continue
                yield text
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return
            if not data:
                return
            self.buf += data

    def until(self, pred, what: str, timeout: float | None = None) -> list[list[str]]:
        """Read lines until pred(parts) is true; all lines read (split, prefix kept)."""
        got = []
        deadline = time.monotonic() + (timeout or self.timeout)
        for text in self.lines(deadline):
            parts = text.split(" ")
            if len(parts) < 2:
                parts.append("")
            got.append(parts)
            if pred(parts):
                return got
        seen = " | ".join(" ".join(p) for p in got[-5:])
        raise Failed(f"{self.nick}: no {what} within {timeout or self.timeout:g}s (last lines: {seen})")

    def lusers(self) -> dict:
        """LUSERS as numbers: users (global), servers, channels, local."""
        self.send("LUSERS\r\n")
        got = self.until(lambda p: p[1] == "266", "266 (LUSERS)")
        out = {}
        for p in got:
            if p[1] == "251":
                m = re.search(r"There are (\d+) users and (\d+) invisible on (\d+) servers", " ".join(p))
                if m:
                    out["servers"] = int(m.group(3))
            elif p[1] == "254":
                out["channels"] = int(p[3])
            elif p[1] == "265":
                out["local"] = int(p[3])
            elif p[1] == "266":
                out["users"] = int(p[3])
        return out

    def close(self) -> None:
        try:
            self.send("QUIT :linkbench done\r\n")
        except OSError:
            pass
        self.sock.close()


def wait_lusers(probe: Probe, pred, what: str, timeout: float = 20.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        lu = probe.lusers()
        if pred(lu):
            return lu
        if time.monotonic() > deadline:
            raise Failed(f"{probe.nick}: LUSERS never showed {what} (last: {lu})")
        time.sleep(interval)


# --------------------------------------------------------------------------- summaries


def spread(values: list[float]) -> dict:
    vals = sorted(v for v in values if v is not None)
    if not vals:
        return {}
    return {"min": vals[0], "median": statistics.median(vals), "max": vals[-1], "n": len(vals)}


def fmt(v: float, unit: str) -> str:
    if unit == "M/s":
        return f"{v / 1e6:.2f}"
    if unit in ("ms", "ms/s"):
        return f"{v:.1f}"
    return f"{v:,.0f}"


def table(rows: list[tuple[str, list[float], str]]) -> list[str]:
    out = [f"  {'figure':<46} {'min':>8} {'median':>8} {'max':>8}  unit", "  " + "-" * 80]
    for name, vals, unit in rows:
        s = spread(vals)
        if not s:
            out.append(f"  {name:<46} {'-':>8}")
            continue
        out.append(f"  {name:<46} {fmt(s['min'], unit):>8} {fmt(s['median'], unit):>8} "
                   f"{fmt(s['max'], unit):>8}  {unit}")
    return out


def proc_stat(pid: int) -> tuple[float, float, int]:
    """(user s, system s, minor page faults) of a process so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return (0.0, 0.0, 0)
    tck = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) / tck, int(fields[12]) / tck, int(fields[7]))


def machine_load() -> str:
    """Load average, and the share of the last 60 s in which some runnable task waited
    for a CPU (PSI), if the kernel reports it: how busy the shared machine was."""
    try:
        text = " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        text = "?"
    try:
        some = open("/proc/pressure/cpu").readline()
        text += f"; cpu pressure avg60 {some.split('avg60=')[1].split()[0]}%"
    except (OSError, IndexError):
        pass
    return text


# --------------------------------------------------------------------------- benchmarks


def wait_col(runs: list, key: str, *servers: str) -> list:
    """Per run: ms per second that these servers together waited for a CPU during `key`."""
    return [sum(r[key]["wait_ms_per_s"].get(s, 0) for s in servers) for r in runs
            if key in r and r[key].get("wait_ms_per_s")]


def bench_fanout(args) -> dict:
    say(f"== fanout: chain s1 - s2 - s3; {args.members} receivers on s3; sender on s3 (local) "
        f"or on s1 (cross, two hops); {args.repeat} repeats; load average {machine_load()}")
    net = Network(args, "fanout", 3, pins=[1, 1, 0])
    runs = []
    try:
        net.start_all()
        net.wait_linked()
        s1, s3 = net[1], net[3]
        common = ["--pid", str(s3.proc.pid), "--pids", ",".join(map(str, net.pids())),
                  "--duration", str(args.duration), "--timeout", "30"]
        for r in range(1, args.repeat + 1):
            say(f"-- repeat {r} of {args.repeat}")
            run = {}
            for kind, extra in (("local", []), ("cross", ["--sender-port", str(s1.port)])):
                if f"fanout-{kind}" in args.parts:
                    before = net.log_sizes()
                    res = run_loadgen(args, 1, ["fanout", "--port", str(s3.port), "--members",
                                                str(args.members), "--window", str(args.window)]
                                      + extra + common)
                    run[f"fanout_{kind}"] = net.name_cpu(res[f"fanout_{args.members}"])
                    if args.gc_log:
                        run[f"fanout_{kind}"]["gc_ms"] = net.gc_ms(before)
            for kind, extra in (("local", []), ("cross", ["--sender-port", str(s1.port)])):
                if f"latency-{kind}" in args.parts:
                    before = net.log_sizes()
                    res = run_loadgen(args, 1, ["latency", "--port", str(s3.port), "--members",
                                                str(args.members), "--rate", str(args.rate)]
                                      + extra + common)
                    run[f"latency_{kind}"] = net.name_cpu(res["latency"])
                    if args.gc_log:
                        run[f"latency_{kind}"]["gc_ms"] = net.gc_ms(before)
            if "fanout_local" in run and "fanout_cross" in run:
                fl, fc = run["fanout_local"]["deliveries_per_s"], run["fanout_cross"]["deliveries_per_s"]
                run["cross_over_local"] = round(fc / fl, 3) if fl else None
            say(f"   repeat {r}: " + "; ".join(
                f"{k.replace('_', ' ')} " + (f"{v['deliveries_per_s'] / 1e6:.2f} M/s" if "window" in v
                                              else f"p50 {v['p50_ms']:.1f} ms p99 {v['p99_ms']:.1f} ms")
                + f" (s3 cpu {v['cpu'].get('s3', 0):.0%}, waited {v['wait_ms_per_s'].get('s3', 0):.0f} ms/s"
                + (f", gc ms {v['gc_ms']}" if "gc_ms" in v else "") + ")"
                for k, v in run.items() if isinstance(v, dict))
                + (f"; cross/local {run['cross_over_local']:.0%}" if "cross_over_local" in run else ""))
            runs.append(run)
    finally:
        net.stop_all()
    col = lambda k, f: [r[k][f] for r in runs if k in r]  # noqa: E731
    rows = [
        (f"fan-out, local (sender on s3), {args.members} members", col("fanout_local", "deliveries_per_s"), "M/s"),
        ("fan-out, cross (sender on s1, 2 hops)", col("fanout_cross", "deliveries_per_s"), "M/s"),
        ("cross / local (target >= 50)", [r["cross_over_local"] * 100 for r in runs
                                          if "cross_over_local" in r], "%"),
        ("latency local p50", col("latency_local", "p50_ms"), "ms"),
        ("latency local p99", col("latency_local", "p99_ms"), "ms"),
        ("latency cross p50", col("latency_cross", "p50_ms"), "ms"),
        ("latency cross p99 (target < 20)", col("latency_cross", "p99_ms"), "ms"),
        ("s3 waiting for a CPU: fan-out local", wait_col(runs, "fanout_local", "s3"), "ms/s"),
        ("s3 waiting for a CPU: fan-out cross", wait_col(runs, "fanout_cross", "s3"), "ms/s"),
        ("s3 waiting for a CPU: latency local", wait_col(runs, "latency_local", "s3"), "ms/s"),
        ("s3 waiting for a CPU: latency cross", wait_col(runs, "latency_cross", "s3"), "ms/s"),
        ("s1 + s2 waiting for a CPU: latency cross", wait_col(runs, "latency_cross", "s1", "s2"), "ms/s"),
    ]
    verdict = {}
    ratios = [r["cross_over_local"] for r in runs if "cross_over_local" in r]
    if ratios:
        verdict["cross_fanout_at_least_half"] = statistics.median(ratios) >= 0.5
    if col("latency_cross", "p99_ms"):
        verdict["cross_latency_p99_under_20ms"] = statistics.median(col("latency_cross", "p99_ms")) < 20.0
    return {"runs": runs, "rows": rows, "verdict": verdict}


def bench_split(args) -> dict:
    say(f"== split: s1 (core 0) - s2 (core 1); {args.members} receivers all on s1 (one server) "
        f"or split round-robin between s1 and s2 (two servers); sender on s1; generator not "
        f"pinned; {args.repeat} repeats; load average {machine_load()}")
    net = Network(args, "split", 2, pins=[0, 1])
    runs = []
    try:
        net.start_all()
        net.wait_linked()
        s1, s2 = net[1], net[2]
        common = ["--pid", str(s1.proc.pid), "--pids", ",".join(map(str, net.pids())),
                  "--duration", str(args.duration), "--window", str(args.window),
                  "--members", str(args.members), "--timeout", "30"]
        for r in range(1, args.repeat + 1):
            say(f"-- repeat {r} of {args.repeat}")
            run = {}
            for kind, extra in (("one", []),
                                ("two", ["--receiver-ports", f"{s1.port},{s2.port}"])):
                before = net.log_sizes()
                res = run_loadgen(args, None, ["fanout", "--port", str(s1.port)] + extra + common)
                run[kind] = net.name_cpu(res[f"fanout_{args.members}"])
                if args.gc_log:
                    run[kind]["gc_ms"] = net.gc_ms(before)
            a, b = run["one"]["deliveries_per_s"], run["two"]["deliveries_per_s"]
            run["two_over_one"] = round(b / a, 3) if a else None
            say(f"   repeat {r}: one server {a / 1e6:.2f} M/s, two servers {b / 1e6:.2f} M/s "
                f"({run['two_over_one']:.0%}); cpu one {run['one']['cpu']}, two {run['two']['cpu']}, "
                f"generator {run['one']['generator_cpu']:.0%} / {run['two']['generator_cpu']:.0%}; "
                f"waited for a CPU (ms/s) one {run['one']['wait_ms_per_s']}, two {run['two']['wait_ms_per_s']}")
            runs.append(run)
    finally:
        net.stop_all()
    rows = [
        (f"one server, {args.members} receivers", [r["one"]["deliveries_per_s"] for r in runs], "M/s"),
        ("two servers, receivers split", [r["two"]["deliveries_per_s"] for r in runs], "M/s"),
        ("two / one (target > 100)", [r["two_over_one"] * 100 for r in runs], "%"),
        ("s1 CPU share, one server", [r["one"]["cpu"].get("s1", 0) * 100 for r in runs], "%"),
        ("s1 + s2 CPU share, two servers", [(r["two"]["cpu"].get("s1", 0) + r["two"]["cpu"].get("s2", 0))
                                            * 100 for r in runs], "%"),
        ("generator CPU share, one server", [r["one"]["generator_cpu"] * 100 for r in runs], "%"),
        ("generator CPU share, two servers", [r["two"]["generator_cpu"] * 100 for r in runs], "%"),
        ("s1 + s2 waiting for a CPU, two servers", wait_col(runs, "two", "s1", "s2"), "ms/s"),
    ]
    verdict = {"two_servers_above_one": statistics.median([r["two_over_one"] for r in runs]) > 1.0}
    return {"runs": runs, "rows": rows, "verdict": verdict}


def bench_burst(args) -> dict:
    users, nch, per = args.users, args.channels, args.per_client
    say(f"== burst: s1 (core 0) holds {users} clients in {nch} channels ({per} each); s2 (core 1) "
        f"starts empty and links to s1; {args.repeat} repeats; load average {machine_load()}")
    if not args.no_pin:
        os.sched_setaffinity(0, {1})
    loadgen.raise_nofile()
    net = Network(args, "burst", 2, pins=[0, 1])
    runs = []
    pool = None
    try:
        net.start(1)
        s1, s2 = net[1], net[2]
        pool = loadgen.Net("127.0.0.1", s1.port, 60.0)
        run_id = loadgen.Run()
        p = run_id.prefix()
        nicks = [p + loadgen.b36(i) for i in range(users)]
        chans = [f"#{p}{loadgen.b36(k)}" for k in range(nch)]
        t0 = time.monotonic()
        pool.setup(nicks, lambda i: [chans[(per * i + k) % nch] for k in range(per)], 100,
                   "connecting and joining")
        say(f"  {users} clients registered and joined on s1 in {time.monotonic() - t0:.1f}s")
        q = run_id.prefix()            # probes' nicks: another prefix, never a pool nick
        check = Probe(s1.port, f"{q}chk")
        lu = check.lusers()
        check.close()
        say(f"  LUSERS on s1: {lu}")
        for r in range(1, args.repeat + 1):
            offset2 = len(net.log(2)) if (s2.dir / "ircd.log").exists() else 0
            offset1 = len(net.log(1))
            pool.idle(1.0)
            s1_cpu0, s1_wait0 = loadgen.proc_cpu_s(s1.proc.pid), loadgen.runq_wait_s(s1.proc.pid)
            s1_stat0 = proc_stat(s1.proc.pid)
            before = net.log_sizes()
            t_spawn = time.monotonic()
            net.start(2, wait=False)
            m = net.wait_log(2, BURST_RE, after=offset2, timeout=30.0, poll=pool.poll)
            t_log = time.monotonic()
            s1_cpu, s1_wait = loadgen.proc_cpu_s(s1.proc.pid), loadgen.runq_wait_s(s1.proc.pid)
            s1_stat = proc_stat(s1.proc.pid)
            s2_cpu, s2_wait = loadgen.proc_cpu_s(s2.proc.pid), loadgen.runq_wait_s(s2.proc.pid)
            ircnet.wait_listening(s2)
            probe = Probe(s2.port, f"{q}p{r}")
            lu2 = wait_lusers(probe, lambda lu: lu.get("users", 0) >= users + 1 and
                              lu.get("channels", 0) >= nch, f">= {users + 1} users, {nch} channels",
                              timeout=20.0)
            t_seen = time.monotonic()
            probe.close()
            sent = SENT_RE.search(net.log(1), offset1)
            run = {
                "burst_ms": int(m.group(5)),
                "burst_users": int(m.group(3)),
                "burst_channels": int(m.group(4)),
                "s1_burst_events": int(sent.group(2)) if sent else None,
                "s1_burst_build_ms": float(sent.group(3)) if sent else None,
                "spawn_to_log_s": round(t_log - t_spawn, 3),
                # CPU used and time spent waiting for a CPU between s2's start and its log
                # line (s2: everything since its start, including Python's start-up)
                "s1_cpu_ms": round((s1_cpu - s1_cpu0) * 1000) if s1_cpu is not None else None,
                "s1_wait_ms": round((s1_wait - s1_wait0) * 1000) if s1_wait is not None else None,
                "s2_cpu_ms": round(s2_cpu * 1000) if s2_cpu is not None else None,
                "s2_wait_ms": round(s2_wait * 1000) if s2_wait is not None else None,
                "s1_user_sys_minflt": [round(b - a, 3) for a, b in zip(s1_stat0, s1_stat)],
                "spawn_to_lusers_s": round(t_seen - t_spawn, 3),
                "lusers_s2": lu2,
            }
            say(f"-- repeat {r}: s2 log: {m.group(0)}")
            say(f"   s1 log: {sent.group(0) if sent else '(no linked line)'}")
            say(f"   LUSERS on s2: {lu2}; s2 process start to burst line {run['spawn_to_log_s']:.2f}s, "
                f"to LUSERS showing everyone {run['spawn_to_lusers_s']:.2f}s")
            if args.gc_log:
                run["gc_ms"] = net.gc_ms(before)
                say(f"   garbage collection (ms) until then: {run['gc_ms']}")
            say(f"   from s2's start to its burst line: s1 used {run['s1_cpu_ms']} ms of CPU (user, system "
                f"s, minor faults: {run['s1_user_sys_minflt']}) and waited {run['s1_wait_ms']} ms for "
                f"one; s2 used {run['s2_cpu_ms']} ms (with start-up) and waited {run['s2_wait_ms']} ms")
            runs.append(run)
            net.stop(2)
            # s1 sees the split; wait until it has dropped the link before the next repeat
            net.wait_log(1, re.compile(r"link to s2\.irc\.test \S+ lost"),
                         after=sent.end() if sent else offset1, timeout=10.0, poll=pool.poll)
            pool.idle(1.0)
    finally:
        if pool is not None:
            pool.quit_all(timeout=10.0)
        net.stop_all()
    rows = [
        ("burst complete on s2 (log, after connecting)", [r["burst_ms"] for r in runs], "ms"),
        ("s1: building and queueing its burst", [r["s1_burst_build_ms"] for r in runs], "ms"),
        ("s2 process start -> LUSERS shows everyone", [r["spawn_to_lusers_s"] * 1000 for r in runs], "ms"),
        ("s1 CPU, s2 start -> burst line", [r["s1_cpu_ms"] for r in runs], "ms"),
        ("s2 CPU since its start (with start-up)", [r["s2_cpu_ms"] for r in runs], "ms"),
        ("s1 + s2 waiting for a CPU meanwhile", [(r["s1_wait_ms"] or 0) + (r["s2_wait_ms"] or 0)
                                                for r in runs], "ms"),
    ]
    if args.gc_log:
        rows += [("s1 full (gen2) garbage collections meanwhile", [r["gc_ms"]["s1"]["gen2"] for r in runs], "ms"),
                 ("s2 full (gen2) garbage collections meanwhile", [r["gc_ms"]["s2"]["gen2"] for r in runs], "ms")]
    verdict = {"burst_under_500ms": statistics.median([r["burst_ms"] for r in runs]) < 500}
    return {"runs": runs, "rows": rows, "verdict": verdict}


def bench_connect(args) -> dict:
    say("== connect: chain s1 - s2 - s3, autoconnect off, an [[oper]] block on every server")
    password = secrets.token_urlsafe(12)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    mk = subprocess.run([sys.executable, "-m", "ircd", "mkpasswd"], input=password + "\n",
                        capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    if mk.returncode != 0:
        raise Failed(f"ircd mkpasswd failed: {mk.stderr.strip()}")
    hashed = mk.stdout.strip().splitlines()[-1]
    say(f"  python3 -m ircd mkpasswd  ->  {hashed[:24]}...")
    extra = f'\n[[oper]]\nname = "bench"\npassword = "{hashed}"\nhosts = ["*@127.0.0.1"]\n'
    net = Network(args, "connect", 3, pins=[0, 1, 0], autoconnect=False, extra=extra)
    probes: list[Probe] = []
    steps = []
    ok = True
    try:
        net.start_all()
        probes = [Probe(net[i].port, f"watch{i}") for i in (1, 2, 3)]

        def lusers_all(label: str, *expect: tuple[int, int]) -> None:
            """LUSERS on s1, s2, s3 must reach (servers, users) = expect[0], [1], [2]."""
            nonlocal ok
            row = []
            for i, pr in enumerate(probes, 1):
                servers, users = expect[i - 1]
                try:
                    lu = wait_lusers(pr, lambda lu: lu.get("servers") == servers and
                                     lu.get("users") == users, f"{servers} servers, {users} users",
                                     timeout=10.0, interval=0.05)
                except Failed:
                    ok = False
                    lu = pr.lusers()
                row.append(lu)
                say(f"  {label}: LUSERS on s{i}: {lu}")
            steps.append({"step": label, "expect": expect, "lusers": row})

        lusers_all("before", (1, 1), (1, 1), (1, 1))
        oper1 = Probe(net[1].port, "oper1")
        oper1.send(f"OPER bench {password}\r\n")
        oper1.until(lambda p: p[1] == "381", "381 (you are now an operator)")
        say("  oper1 on s1: OPER bench ... -> 381")
        oper1.send("CONNECT s3.irc.test 0 s2.irc.test\r\n")
        got = oper1.until(lambda p: p[1] in ("402", "NOTICE", "481", "461"), "an answer to CONNECT")
        remote = " ".join(got[-1])
        say(f"  oper1 on s1: CONNECT s3.irc.test 0 s2.irc.test (remote form) -> {remote}")
        t0 = time.monotonic()
        oper1.send("CONNECT s2.irc.test\r\n")
        got = oper1.until(lambda p: p[1] == "NOTICE" and "Connecting" in " ".join(p), "the CONNECT notice")
        say(f"  oper1 on s1: CONNECT s2.irc.test -> {' '.join(got[-1])}")
        lusers_all("after CONNECT s2 from s1", (2, 3), (2, 3), (1, 1))
        say(f"  s1 and s2 counted each other's users {time.monotonic() - t0:.2f}s after CONNECT")
        oper3 = Probe(net[3].port, "oper3")
        oper3.send(f"OPER bench {password}\r\n")
        oper3.until(lambda p: p[1] == "381", "381 (you are now an operator)")
        oper3.send("CONNECT s2.irc.test\r\n")
        got = oper3.until(lambda p: p[1] == "NOTICE" and "Connecting" in " ".join(p), "the CONNECT notice")
        say(f"  oper3 on s3: CONNECT s2.irc.test -> {' '.join(got[-1])}")
        lusers_all("after CONNECT s2 from s3", (3, 5), (3, 5), (3, 5))
        oper1.send("CONNECT s2.irc.test\r\n")
        got = oper1.until(lambda p: p[1] == "NOTICE" and "CONNECT" in " ".join(p), "the CONNECT notice")
        say(f"  oper1 on s1, again: CONNECT s2.irc.test -> {' '.join(got[-1])}")
        probes += [oper1, oper3]
        links = []
        probes[0].send("LINKS\r\n")
        for p in probes[0].until(lambda p: p[1] == "365", "365 (end of LINKS)"):
            if p[1] == "364":
                links.append(" ".join(p[3:]))
        say("  LINKS on s1: " + " | ".join(links))
    finally:
        for pr in probes:
            pr.close()
        net.stop_all()
    return {"steps": steps, "remote_connect_reply": remote, "links": links, "verdict": {"all_lusers_ok": ok},
            "rows": []}


FANOUT_PARTS = ("fanout-local", "fanout-cross", "latency-local", "latency-cross")
BENCHES = {"fanout": bench_fanout, "split": bench_split, "burst": bench_burst, "connect": bench_connect}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=list(BENCHES) + ["all"])
    ap.add_argument("--repeat", type=int, default=3, help="repeats of each measurement (default 3)")
    ap.add_argument("--members", type=int, default=1000, help="fanout/split: receivers (default 1000)")
    ap.add_argument("--duration", type=float, default=10.0, help="fanout/split/latency: seconds (default 10)")
    ap.add_argument("--window", type=int, default=100, help="fan-out: messages in flight (default 100)")
    ap.add_argument("--rate", type=float, default=100.0, help="latency: messages/s (default 100)")
    ap.add_argument("--parts", type=lambda t: t.split(","), default=list(FANOUT_PARTS),
                    help="fanout: which of " + ",".join(FANOUT_PARTS) + " to run (default all; "
                         "e.g. one part with --profile)")
    ap.add_argument("--users", type=int, default=5000, help="burst: clients on s1 (default 5000)")
    ap.add_argument("--channels", type=int, default=500, help="burst: channels (default 500)")
    ap.add_argument("--per-client", type=int, default=2,
                    help="burst: channels each client joins (default 2: 20 members a channel)")
    ap.add_argument("--dir", default="/tmp/linkbench", help="server directories (default /tmp/linkbench)")
    ap.add_argument("--base-port", type=int, default=27000, help="first port (default 27000)")
    ap.add_argument("--no-pin", action="store_true", help="pin nothing to a core")
    ap.add_argument("--pins", default=None, type=lambda t: [None if c in ("", "-") else int(c)
                                                             for c in t.split(",")],
                    help="cores of s1,s2,... instead of each benchmark's own ('-': not pinned)")
    ap.add_argument("--gen-nice", type=int, default=0,
                    help="run the load generator with this niceness (e.g. 10: a server that "
                         "wakes up runs before it)")
    ap.add_argument("--gen-cpu", default=None, help="core of the load generator instead of each "
                    "benchmark's own, or 'none'")
    ap.add_argument("--gc-log", action="store_true",
                    help="start the servers through tools/gcwatch.py and report the time "
                         "their garbage collections took")
    ap.add_argument("--profile", metavar="DIR", default=None,
                    help="run the servers under cProfile, write DIR/<bench>-sN.prof, print the top 25")
    args = ap.parse_args(argv)
    bad = [p for p in args.parts if p not in FANOUT_PARTS]
    if bad:
        ap.error(f"--parts: unknown {', '.join(bad)} (use {', '.join(FANOUT_PARTS)})")
    modes = list(BENCHES) if args.mode == "all" else [args.mode]
    out: dict = {"mode": args.mode, "results": {}}
    summary: list[str] = []
    status = 0
    for mode in modes:
        try:
            res = BENCHES[mode](args)
        except (Failed, loadgen.BenchError, RuntimeError, OSError) as e:
            say(f"ERROR in {mode}: {e}")
            out["results"][mode] = {"error": str(e)}
            status = 1
            continue
        except KeyboardInterrupt:
            out["error"] = "interrupted"
            print(json.dumps(out), flush=True)
            return 130
        rows = res.pop("rows")
        out["results"][mode] = res
        summary.append(f"{mode}: {json.dumps(res['verdict'])}")
        summary += table(rows) if rows else []
    say("")
    say(f"== summary ({args.repeat} repeats: min / median / max); load average {machine_load()}")
    for line in summary:
        say(line)
    print(json.dumps(out), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
