"""Server links over the network: accepting them, making them, and keeping them up.

Every link is TLS. The connecting side checks the listener's certificate against the
fingerprint configured for it before a byte of IRC state is exchanged; the handshake
(linkproto.handshake) then pins the connecting side's certificate too. Autoconnect
retries a lost or refused link with a backoff that doubles up to
`[limits] link_retry_max` seconds.
"""

from __future__ import annotations

import logging
import socket

import trio

from .. import tlsutil
from .connection import Connection

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0


class AwaitingTLS:
    """A link connection's protocol until its Link takes over: it records why the
    connection ended, if it does, and keeps what the peer sent meanwhile (its Hello
    can arrive with the end of the TLS handshake, before the Link exists)."""

    __slots__ = ("error", "on_closed", "early")

    def __init__(self, on_closed) -> None:
        self.error: str | None = None
        self.on_closed = on_closed
        self.early: list[bytes] = []

    def data_received(self, data: bytes) -> None:
        self.early.append(data)

    def hand_over(self, conn, link) -> None:
        """Make `link` the connection's protocol: it says Hello, then reads what came."""
        conn.protocol = link
        link.start()
        if self.early:
            data, self.early = b"".join(self.early), []
            link.data_received(data)

    def send_queue_exceeded(self) -> None:
        pass

    def connection_lost(self, reason: str) -> None:
        self.error = reason

    def connection_closed(self) -> None:
        if self.error is None:
            self.error = "connection closed"
        self.on_closed()


def serve_incoming(server, reactor, sock, ip: str, port: int, context) -> None:
    """A connection on a link listener: its TLS handshake, then a Link."""
    conn = Connection(reactor, sock, ip, port, server.config.limits.link_sendq, context)

    def ready(conn) -> None:
        log.info("link connection from %s:%s", ip, port)
        waiting.hand_over(conn, server.linking.new_link(conn))

    def closed() -> None:
        log.warning("link connection from %s refused: TLS handshake failed (%s)", ip,
                    waiting.error)

    waiting = AwaitingTLS(closed)
    conn.on_ready = ready
    conn.start(waiting)
    reactor.timers.call_later(CONNECT_TIMEOUT, lambda: _handshake_timeout(conn))


def _handshake_timeout(conn) -> None:
    if conn.handshaking and not conn.closing:
        conn.fail(f"no TLS handshake within {CONNECT_TIMEOUT:.0f} s")


class Linker:
    """Outgoing links: one task per autoconnect block, and CONNECT on request."""

    def __init__(self, server, reactor, nursery: trio.Nursery):
        self.server = server
        self.reactor = reactor
        self.nursery = nursery
        self._autoconnect: dict[str, trio.CancelScope] = {}
        server.linking.connect_requested = self.connect_soon

    def apply(self, config) -> None:
        """Start or stop autoconnect tasks to match the config (at start and on rehash)."""
        wanted = {b.name.lower(): b for b in config.links if b.autoconnect}
        for name in list(self._autoconnect):
            if name not in wanted:
                self._autoconnect.pop(name).cancel()
        for name, block in wanted.items():
            if name not in self._autoconnect:
                scope = trio.CancelScope()
                self._autoconnect[name] = scope
                self.nursery.start_soon(self._keep_up, block.name, scope)

    def connect_soon(self, name: str) -> None:
        self.nursery.start_soon(self._connect_once, name)

    async def _connect_once(self, name: str) -> None:
        block = self.server.linking.link_config(name)
        if block is not None:
            await self.connect(block)

    async def _keep_up(self, name: str, scope: trio.CancelScope) -> None:
        delay = 1.0
        with scope:
            while True:
                block = self.server.linking.link_config(name)
                if block is None:
                    return
                if self.server.linking.linked_to(name) is None and not self._reached(name):
                    # (a server already reached through another link is an alternate:
                    # it is dialled when that way is gone, so the tree re-forms)
                    linked = await self.connect(block)
                    # refused because it is reached another way (two uplinks dialled at
                    # once): no backoff, so it is dialled soon when that way goes
                    if linked or self._reached(name):
                        delay = 1.0
                    else:
                        delay = min(delay * 2, self.server.config.limits.link_retry_max)
                    await trio.sleep(delay)
                else:
                    await trio.sleep(1.0)

    def _reached(self, name: str) -> bool:
        """Is the server on the network through a live link (not one held to resume)?"""
        linking = self.server.linking
        for entry in self.server.registry.servers.values():
            if entry.name.lower() == name.lower():
                return entry.direction not in linking.suspended
        return False

    async def connect(self, block) -> bool:
        """Connect to a [[link]] and serve it until it closes; True if it got linked."""
        server = self.server
        if server.linking.linked_to(block.name) is not None:
            return False
        cert, key = tlsutil.server_cert_pair(server.config)
        context = tlsutil.link_client_ssl_context(cert, key)
        try:
            with trio.fail_after(CONNECT_TIMEOUT):
                tcp = await trio.open_tcp_stream(block.host, block.port)
        except (OSError, trio.TooSlowError) as exc:
            log.info("cannot link to %s at %s:%s: %s", block.name, block.host, block.port,
                     _why(exc))
            return False
        # the engine reads sockets itself: take the plain socket out of trio's stream
        ip, port = tcp.socket.getpeername()[:2]
        sock = socket.socket(fileno=tcp.socket.detach())
        sock.setblocking(False)
        conn = Connection(self.reactor, sock, ip, port, server.config.limits.link_sendq,
                          context, server_side=False, server_hostname=block.name)
        settled = trio.Event()            # the handshake is done, or the connection gone
        conn.on_ready = lambda _conn: settled.set()
        conn.closed_event = trio.Event()
        waiting = AwaitingTLS(settled.set)
        conn.start(waiting)
        with trio.move_on_after(CONNECT_TIMEOUT):
            await settled.wait()
        if conn.handshaking or conn.closing:
            conn.fail(f"no TLS handshake within {CONNECT_TIMEOUT:.0f} s")
            log.info("cannot link to %s at %s:%s: TLS failed (%s)", block.name, block.host,
                     block.port, waiting.error or "timed out")
            return False
        peer_cert = conn.peer_certificate()
        got = tlsutil.der_fingerprint(peer_cert)
        if got != block.fingerprint:
            log.warning("link to %s refused: its certificate is %s, but its [[link]] block pins "
                        "%s", block.name, got, block.fingerprint)
            conn.fail("certificate mismatch")
            return False
        link = server.linking.new_link(conn, outgoing=block.name, tls_peer_cert=peer_cert)
        waiting.hand_over(conn, link)
        await conn.closed_event.wait()
        return link.established


def _why(exc: BaseException) -> str:
    if isinstance(exc, trio.TooSlowError):
        return f"no answer within {CONNECT_TIMEOUT:.0f} s"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    cause = exc.__cause__
    return f"TLS failed ({cause or exc.__class__.__name__})"
