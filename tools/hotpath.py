#!/usr/bin/env python3
"""The server's cost per message without sockets: CPU microseconds per PRIVMSG.

A real Server (tools/bench_server.toml) with real Sessions on in-memory connections:
clients register and join, then lines are fed to the sessions as the reactor would
(several lines per read) and the time is measured with the process CPU clock, so a
busy machine slows the run down but hardly changes the figure. It measures the IRC
logic the sockets benchmark (loadgen.py) cannot separate from system calls, and it
compares two commits quickly: run it in each checkout.

    python3 tools/hotpath.py chat   --clients 1000 --messages 200000
    python3 tools/hotpath.py fanout --members 100 --messages 20000
    python3 tools/hotpath.py link   --messages 100000

`link` is two linked servers in one process (tests/netsim.py, the network simulator):
a sender on one floods a channel whose other member is on the other; it reports each
side's CPU per message (the sender's server, and the receiver's with the
acknowledgements it sends back), the path that limits `resumebench.py`.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from ircd.config import load_config  # noqa: E402
from ircd.net.connection import broadcast_each  # noqa: E402
from ircd.server import Server  # noqa: E402
from ircd.session import Session  # noqa: E402


DIRTY: list = []        # connections with output since the last drain


class MemoryConnection:
    """What a session sees of a connection: output is collected and counted."""

    def __init__(self, port: int):
        self.ip, self.port, self.secure = "127.0.0.1", port, False
        self.out: list[bytes] = []
        self.queued = self.lines_in = self.bytes_in = self.lines_out = self.bytes_out = 0
        self.sendq = 1 << 40
        self.dead = self.closing = False
        self.protocol = None

    def write(self, data: bytes, lines: int = 1) -> None:
        if not self.out:
            DIRTY.append(self)
        self.out.append(data)

    broadcast = staticmethod(broadcast_each)

    def discard_output(self) -> None:
        self.dead = True

    def close(self) -> None:
        self.closing = True


class NoTimers:
    def call_later(self, delay, fn) -> None:
        pass


def make_server() -> Server:
    config = load_config(os.path.join(ROOT, "tools", "bench_server.toml"))
    return Server(config, NoTimers())


def client(server: Server, nick: str, caps: str | None) -> Session:
    conn = MemoryConnection(10000 + server.next_client_id())
    session = Session(server, conn, server.next_client_id())
    conn.protocol = session
    server.admit(session)
    lines = [f"NICK {nick}", f"USER {nick} 0 * :{nick}"]
    if caps:
        lines = ["CAP LS 302", *lines, f"CAP REQ :{caps}", "CAP END"]
    session.data_received("".join(line + "\r\n" for line in lines).encode())
    assert session.registered, conn.out
    return session


def drain(sessions) -> int:
    """Count and drop the output (the flusher's pass over dirty connections)."""
    total = 0
    for conn in DIRTY:
        total += len(conn.out)
        conn.out.clear()
    DIRTY.clear()
    return total


def run(sessions, feeds, per_read: int) -> tuple[float, int]:
    """Feed each (session, line) in groups of `per_read` lines per data_received."""
    gc.collect()
    start = time.process_time()
    delivered = 0
    for i, (session, chunk) in enumerate(feeds):
        session.data_received(chunk)
        if i % 64 == 63:
            delivered += drain(sessions)
    delivered += drain(sessions)
    return time.process_time() - start, delivered


def chat(args) -> dict:
    server = make_server()
    sessions = [client(server, f"c{i}", args.caps) for i in range(args.clients)]
    for i, s in enumerate(sessions):
        s.data_received(f"JOIN #p{i // 2}\r\n".encode())
    drain(sessions)
    text = "x" * args.size
    feeds = []
    rounds = max(1, args.messages // (args.clients * args.per_read))
    for r in range(rounds):
        for i, s in enumerate(sessions):
            chunk = "".join(f"PRIVMSG #p{i // 2} :{r} {k} {text}\r\n" for k in range(args.per_read))
            feeds.append((s, chunk.encode()))
    messages = rounds * args.clients * args.per_read
    seconds, delivered = run(sessions, feeds, args.per_read)
    assert delivered >= messages, (delivered, messages)
    return {"mode": "chat", "clients": args.clients, "messages": messages,
            "cpu_us_per_message": round(seconds / messages * 1e6, 3),
            "messages_per_cpu_s": round(messages / seconds)}


def fanout(args) -> dict:
    server = make_server()
    sessions = [client(server, f"m{i}", args.caps) for i in range(args.members + 1)]
    for s in sessions:
        s.data_received(b"JOIN #fan\r\n")
    drain(sessions)
    sender = sessions[0]
    text = "x" * args.size
    feeds = [(sender, "".join(f"PRIVMSG #fan :{r} {k} {text}\r\n" for k in range(args.per_read)).encode())
             for r in range(max(1, args.messages // args.per_read))]
    messages = len(feeds) * args.per_read
    seconds, delivered = run(sessions, feeds, args.per_read)
    assert delivered >= messages * args.members, (delivered, messages)
    return {"mode": "fanout", "members": args.members, "messages": messages,
            "cpu_us_per_message": round(seconds / messages * 1e6, 3),
            "cpu_ns_per_delivery": round(seconds / (messages * args.members) * 1e9, 1),
            "deliveries_per_cpu_s": round(messages * args.members / seconds)}


def link(args) -> dict:
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import logging
    import tempfile
    from pathlib import Path

    from netsim import Network, SimClient
    logging.disable(logging.INFO)
    net = Network(Path(tempfile.mkdtemp(prefix="hotpath-")), 2, [(0, 1)])
    net.link((0, 1))
    clients = []
    for index, nick in ((0, "receiver"), (1, "sender")):
        c = SimClient(net, net.nodes[index], nick, caps=tuple(args.caps.split()) if args.caps else ())
        net.nodes[index].clients.append(c)
        c.send("JOIN #load")
        net.pump()
        clients.append(c)
    receiver, sender = clients
    here, there = net.links[(0, 1)]          # (the receiver's link, the sender's)
    text = "x" * args.size
    rounds = max(1, args.messages // args.per_read)
    feeds = ["".join(f"PRIVMSG #load :{r} {k} {text}\r\n" for k in range(args.per_read)).encode()
             for r in range(rounds)]
    gc.collect()
    t_send = t_recv = 0.0
    session = sender.session
    for chunk in feeds:
        t0 = time.process_time()
        session.data_received(chunk)
        t1 = time.process_time()
        net.time.advance(1)
        data = b"".join(there.conn.out)
        there.conn.out.clear()
        here.data_received(data)
        acks = b"".join(here.conn.out)
        here.conn.out.clear()
        there.data_received(acks)             # (the sender's server handles acks: theirs)
        t_recv += time.process_time() - t1
        t_send += t1 - t0
        delivered = sum(map(len, receiver.conn.out))
        receiver.conn.out.clear()
        sender.conn.out.clear()
        assert delivered, "the receiver got nothing"
    messages = rounds * args.per_read
    return {"mode": "link", "messages": messages,
            "cpu_us_per_message": round(t_send / messages * 1e6, 3),
            "receiver_cpu_us_per_message": round(t_recv / messages * 1e6, 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    for name in ("chat", "fanout", "link"):
        p = sub.add_parser(name)
        p.add_argument("--messages", type=int, default=100_000)
        p.add_argument("--per-read", type=int, default=8, help="lines per data_received (default 8)")
        p.add_argument("--size", type=int, default=64, help="message text length (default 64)")
        p.add_argument("--caps", default=None, help="capabilities every client requests, e.g. "
                       "'server-time message-tags'")
        p.add_argument("--repeat", type=int, default=3, help="runs; the best is reported")
        if name == "chat":
            p.add_argument("--clients", type=int, default=1000)
        elif name == "fanout":
            p.add_argument("--members", type=int, default=100)
    args = ap.parse_args()
    bench = {"chat": chat, "fanout": fanout, "link": link}[args.mode]
    results = [bench(args) for _ in range(args.repeat)]
    best = min(results, key=lambda r: r["cpu_us_per_message"])
    print(json.dumps(best))
    return 0


if __name__ == "__main__":
    sys.exit(main())
