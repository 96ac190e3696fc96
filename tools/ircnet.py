#!/usr/bin/env python3
"""Start a network of linked servers on loopback, for demos, tests and benchmarks.

    python3 tools/ircnet.py --servers 3 --topology chain
    python3 tools/ircnet.py --servers 7 --topology tree --dir /tmp/net --for 60

Each server gets a directory (config, data, log) under --dir, its own certificate,
and three ports counted up from --base-port: plain clients, TLS clients, links. The
table of servers and ports is printed once every server listens; the network runs
until Ctrl-C (or --for seconds), then every server gets SIGTERM. Topologies:

    chain   s1 - s2 - s3 - ...            (each connects to the one before)
    star    s1 in the middle, every other server connects to it
    tree    a binary tree: s(n) connects to s(n // 2)

The functions below (plan, write, start, stop) are what the end-to-end tests use.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ircd.tlsutil import certificate_fingerprint, ensure_certificate  # noqa: E402

TOPOLOGIES = ("chain", "star", "tree")


class Planned:
    """One server of the network to be: name, SID, directory, ports, uplink."""

    def __init__(self, index: int, base: Path, base_port: int | None):
        self.index = index
        self.name = f"s{index}.irc.test"
        self.sid = f"{index % 10}{chr(65 + index // 10 % 26)}A"
        self.dir = base / f"s{index}"
        ports = [base_port + 10 * (index - 1) + k for k in range(3)] if base_port else \
            [_free_port() for _ in range(3)]
        self.port, self.tls_port, self.link_port = ports
        self.uplink: Planned | None = None
        self.peers: list[Planned] = []
        self.fingerprint = ""
        self.proc: subprocess.Popen | None = None

    @property
    def config(self) -> Path:
        return self.dir / "ircd.toml"


_GIVEN: set[int] = set()


def _free_port() -> int:
    """A free port not handed out before (two calls in a row may get the same one)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port


def plan(count: int, topology: str, base: Path, base_port: int | None = None) -> list[Planned]:
    if topology not in TOPOLOGIES:
        raise ValueError(f"unknown topology {topology!r}: use one of {', '.join(TOPOLOGIES)}")
    servers = [Planned(i + 1, base, base_port) for i in range(count)]
    for s in servers[1:]:
        up = {"chain": s.index - 1, "star": 1, "tree": s.index // 2}[topology]
        s.uplink = servers[up - 1]
        s.peers.append(s.uplink)
        s.uplink.peers.append(s)
    return servers


def write(servers: list[Planned], extra: str = "", limits: dict | None = None,
          autoconnect: bool = True) -> None:
    """Make each server's certificate, then its config naming its peers' fingerprints.
    With autoconnect False nothing links by itself (an operator CONNECTs)."""
    for s in servers:
        s.dir.mkdir(parents=True, exist_ok=True)
        cert, _ = ensure_certificate(s.dir / "data", s.name, ("127.0.0.1",))
        s.fingerprint = certificate_fingerprint(cert)
    lim = {"flood_control": False, "max_connections_per_ip": 0, "link_retry_max": 2.0}
    lim.update(limits or {})
    for s in servers:
        text = (f'[server]\nname = "{s.name}"\nsid = "{s.sid}"\nnetwork = "TestNet"\n'
                f'description = "server {s.index} of {len(servers)}"\ndata_dir = "data"\n\n'
                f'[[listen]]\nhost = "127.0.0.1"\nport = {s.port}\n\n'
                f'[[listen]]\nhost = "127.0.0.1"\nport = {s.tls_port}\ntls = true\n\n'
                f'[[listen]]\nhost = "127.0.0.1"\nport = {s.link_port}\nlink = true\n')
        for peer in s.peers:
            text += (f'\n[[link]]\nname = "{peer.name}"\nhost = "127.0.0.1"\n'
                     f'port = {peer.link_port}\nfingerprint = "{peer.fingerprint}"\n'
                     f'autoconnect = {"true" if autoconnect and peer is s.uplink else "false"}\n')
        text += "\n[limits]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in lim.items())
        s.config.write_text(text + extra)


def _toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v) if isinstance(v, (int, float)) else f'"{v}"'


def start(s: Planned, pin_cpu: int | None = None) -> subprocess.Popen:
    """Start one server process (its log goes to <dir>/ircd.log)."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "ircd", "run", "--config", str(s.config)]
    if pin_cpu is not None:
        cmd = ["taskset", "-c", str(pin_cpu)] + cmd
    log = open(s.dir / "ircd.log", "ab")
    s.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=s.dir, env=env)
    log.close()
    return s.proc


def wait_listening(s: Planned, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if s.proc is not None and s.proc.poll() is not None:
            raise RuntimeError(f"{s.name} exited with {s.proc.returncode}; see {s.dir / 'ircd.log'}")
        try:
            socket.create_connection(("127.0.0.1", s.port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{s.name} is not listening on {s.port} after {timeout} s")


def stop(s: Planned, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
    """Stop a server we started (by its PID); returns its exit code."""
    proc = s.proc
    if proc is None or proc.poll() is not None:
        return proc.returncode if proc else None
    proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", "-n", type=int, default=3)
    parser.add_argument("--topology", "-t", choices=TOPOLOGIES, default="chain")
    parser.add_argument("--dir", type=Path, default=Path("ircnet"), help="where each server's "
                        "directory goes (default ./ircnet)")
    parser.add_argument("--base-port", type=int, default=16667,
                        help="first port; each server takes three (default 16667)")
    parser.add_argument("--for", dest="duration", type=float, default=None,
                        help="stop after this many seconds (default: until Ctrl-C)")
    args = parser.parse_args()
    if not 1 <= args.servers <= 50:
        parser.error("--servers must be from 1 to 50")
    servers = plan(args.servers, args.topology, args.dir.resolve(), args.base_port)
    write(servers)
    try:
        for s in servers:
            start(s)
        for s in servers:
            wait_listening(s)
        print(f"{'server':<16} {'sid':<4} {'clients':>7} {'tls':>6} {'links':>6} {'uplink':<16} pid")
        for s in servers:
            print(f"{s.name:<16} {s.sid:<4} {s.port:>7} {s.tls_port:>6} {s.link_port:>6} "
                  f"{s.uplink.name if s.uplink else '-':<16} {s.proc.pid}")
        print(f"logs: {args.dir}/s*/ircd.log   (Ctrl-C stops the network)", flush=True)
        if args.duration is None:
            signal.pause()
        else:
            time.sleep(args.duration)
    except KeyboardInterrupt:
        pass
    finally:
        for s in servers:
            stop(s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
