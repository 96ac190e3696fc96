"""A network simulator: N real servers in one process, no sockets, no trio.

Each server is the real `ircd.server.Server` with its real registry, router, sessions
and links; only the transport is simulated. Link bytes wait in an outbox until the
simulator delivers them (so links can be cut, delayed and healed at will), time is a
virtual clock, and a server can be killed (its links drop without a word, its clients
vanish) and started again empty. The model beside it records who was in which channel
when, what each client sent and what each received, so a test can check after a heal
that every message reached every member who stayed, exactly once.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import textwrap
from pathlib import Path

from ircd.config import load_config
from ircd.net.connection import broadcast_each
from ircd.protocol.message import parse_line
from ircd.server import Server
from ircd.session import Session


class VirtualTime:
    def __init__(self):
        self.ms = 1_800_000_000_000
        self._heap: list = []
        self._n = itertools.count()

    def wall_ms(self) -> int:
        return self.ms

    def call_later(self, delay: float, fn) -> None:
        heapq.heappush(self._heap, (self.ms + int(delay * 1000), next(self._n), fn))

    def advance(self, ms: int) -> None:
        target = self.ms + ms
        while self._heap and self._heap[0][0] <= target:
            when, _, fn = heapq.heappop(self._heap)
            self.ms = max(self.ms, when)
            fn()
        self.ms = target


class _Timers:
    """One server's timers on the shared clock; a killed server's never fire."""

    def __init__(self, node):
        self.node = node

    def call_later(self, delay: float, fn) -> None:
        server = self.node.server

        def run():
            if self.node.server is server:
                fn()
        self.node.sim.time.call_later(delay, run)


class FakeConn:
    """What sessions and links see of a connection."""

    def __init__(self, sim, owner: str, port: int):
        self.sim = sim
        self.owner = owner
        self.ip = "127.0.0.1"
        self.port = port
        self.secure = False
        self.out: list[bytes] = []
        self.queued = 0
        self.sendq = 1 << 30
        self.closing = False
        self.dead = False
        self.protocol = None
        self.lines_in = self.bytes_in = self.lines_out = self.bytes_out = 0

    def write(self, data: bytes, lines: int = 1) -> None:
        if not self.dead and not self.closing:
            self.out.append(data)

    broadcast = staticmethod(broadcast_each)

    def discard_output(self) -> None:
        self.dead = True
        self.out.clear()

    def close(self) -> None:
        self.closing = True


class SimClient:
    """One client: a real Session on a fake connection, and every line it received."""

    def __init__(self, sim, node: "Node", nick: str, caps=("batch", "server-time", "message-tags")):
        self.sim = sim
        self.node = node
        self.nick = nick
        self.conn = FakeConn(sim, nick, next(sim.ports))
        self.session = Session(node.server, self.conn, node.server.next_client_id())
        self.conn.protocol = self.session
        assert node.server.admit(self.session) is None
        self.lines: list = []
        self.alive = True
        lines = ["CAP LS 302", f"NICK {nick}", f"USER {nick} 0 * :sim {nick}"]
        if caps:
            lines.append(f"CAP REQ :{' '.join(caps)}")
        self.send(*lines, "CAP END")

    @property
    def user(self):
        return self.session.user

    def send(self, *lines: str) -> None:
        if self.alive:
            self.session.data_received("".join(l + "\r\n" for l in lines).encode())
            self.collect()

    def collect(self) -> None:
        for data in self.conn.out:
            for raw in data.split(b"\r\n"):
                if raw:
                    self.lines.append(parse_line(raw.decode("utf-8", "replace")))
        self.conn.out.clear()


class Node:
    """One server slot: its config, and the running Server (None while it is down)."""

    def __init__(self, sim, index: int, base: Path):
        self.sim = sim
        self.name = f"n{index}.sim"
        self.sid = f"{index}SM"
        directory = base / self.name
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "ircd.toml"
        self.server: Server | None = None
        self.clients: list[SimClient] = []

    def write_config(self, peers, limits: dict) -> None:
        text = textwrap.dedent(f'''
            [server]
            name = "{self.name}"
            sid = "{self.sid}"
            data_dir = "data"
            [[listen]]
            host = "127.0.0.1"
            port = 1
            [limits]
            flood_control = false
            max_connections_per_ip = 0
        ''') + "".join(f"{k} = {v!r}\n" for k, v in limits.items())
        from ircd.tlsutil import certificate_fingerprint, ensure_certificate
        for peer in peers:
            cert, _ = ensure_certificate(peer.path.parent / "data", peer.name)
            text += (f'\n[[link]]\nname = "{peer.name}"\nhost = "127.0.0.1"\nport = 1\n'
                     f'fingerprint = "{certificate_fingerprint(cert)}"\n')
        self.path.write_text(text)

    def start(self) -> None:
        self.server = Server(load_config(self.path), _Timers(self), self.sim.time.wall_ms)
        self.server.shutdown_requested = None


class Network:
    def __init__(self, base: Path, count: int, edges, limits: dict | None = None):
        self.time = VirtualTime()
        self.ports = itertools.count(40000)
        self.nodes = [Node(self, i + 1, base) for i in range(count)]
        self.edges = [tuple(e) for e in edges]
        for node in self.nodes:
            peers = [self.nodes[j] for i, j in self.edges if i == node_index(self, node)] + \
                    [self.nodes[i] for i, j in self.edges if j == node_index(self, node)]
            node.write_config(peers, limits or {})
            node.start()
        self.links: dict = {}          # edge -> (link on i, link on j)
        self.errors: list[str] = []
        handler = _Collect(self.errors)
        logging.getLogger("ircd").addHandler(handler)
        self._handler = handler

    def close(self) -> None:
        logging.getLogger("ircd").removeHandler(self._handler)

    # -- links ----------------------------------------------------------------------------

    def link(self, edge) -> None:
        i, j = edge
        a, b = self.nodes[i], self.nodes[j]
        if edge in self.links or a.server is None or b.server is None:
            return
        ca, cb = FakeConn(self, a.name, next(self.ports)), FakeConn(self, b.name, next(self.ports))
        la = a.server.linking.new_link(ca, outgoing=b.name)
        lb = b.server.linking.new_link(cb)
        ca.protocol, cb.protocol = la, lb
        self.links[edge] = (la, lb)
        la.start()
        lb.start()
        self.pump()

    def cut(self, edge, reason: str = "cut by the simulator") -> None:
        pair = self.links.pop(edge, None)
        if pair is None:
            return
        for link in pair:
            link.conn.out.clear()
            if not link.closed:
                link.connection_lost(reason)
        self.pump()

    def heal_all(self) -> None:
        for node in self.nodes:
            if node.server is None:
                node.start()
        for edge in self.edges:
            self.link(edge)
        self.pump()

    # -- servers --------------------------------------------------------------------------

    def kill(self, index: int) -> None:
        node = self.nodes[index]
        if node.server is None:
            return
        for edge in [e for e in self.links if index in e]:
            la, lb = self.links.pop(edge)
            mine, theirs = (la, lb) if edge[0] == index else (lb, la)
            if not theirs.closed:
                theirs.connection_lost("Connection reset by peer")
        for c in node.clients:
            c.alive = False
        node.server = None
        self.pump()

    def client(self, index: int, nick: str) -> SimClient:
        node = self.nodes[index]
        c = SimClient(self, node, nick)
        node.clients.append(c)
        self.pump()
        return c

    # -- moving bytes ---------------------------------------------------------------------

    def pump(self, limit: int = 100_000) -> None:
        """Deliver link bytes until nothing moves; collect what clients received."""
        for _ in range(limit):
            moved = False
            for edge, (la, lb) in list(self.links.items()):
                for src, dst in ((la, lb), (lb, la)):
                    if src.conn.out and not dst.closed:
                        data = b"".join(src.conn.out)
                        src.conn.out.clear()
                        dst.data_received(data)
                        moved = True
                if la.closed or lb.closed:
                    self.links.pop(edge, None)
                    for link in (la, lb):
                        if not link.closed:
                            link.connection_lost("the other side closed the link")
                    moved = True
            for node in self.nodes:
                for c in node.clients:
                    if c.alive:
                        c.collect()
            if not moved:
                return
        raise AssertionError("the network did not settle")

    def servers(self) -> list[Server]:
        return [n.server for n in self.nodes if n.server is not None]


def node_index(net, node) -> int:
    return net.nodes.index(node)


class _Collect(logging.Handler):
    def __init__(self, errors):
        super().__init__(logging.ERROR)
        self.errors = errors

    def emit(self, record):
        self.errors.append(self.format(record))
