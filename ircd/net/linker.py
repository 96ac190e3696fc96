"""Server links over the network: accepting them, making them, and keeping them up.

Every link is TLS. The connecting side checks the listener's certificate against the
fingerprint configured for it before a byte of IRC state is exchanged; the handshake
(linkproto.handshake) then pins the connecting side's certificate too. Autoconnect
retries a lost or refused link with a backoff that doubles up to
`[limits] link_retry_max` seconds.
"""

from __future__ import annotations

import logging

import trio

from .. import tlsutil
from .connection import Connection

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0


async def serve_incoming(server, stream, flusher) -> None:
    """A connection on a link listener (already wrapped in TLS)."""
    sock = stream.transport_stream.socket
    try:
        ip, port = sock.getpeername()[:2]
        with trio.fail_after(CONNECT_TIMEOUT):
            await stream.do_handshake()
    except (OSError, trio.BrokenResourceError, trio.TooSlowError) as exc:
        log.warning("link connection from %s refused: TLS handshake failed (%s)",
                    sock.getpeername()[0] if _connected(sock) else "?", exc.__class__.__name__)
        await trio.aclose_forcefully(stream)
        return
    log.info("link connection from %s:%s", ip, port)
    conn = Connection(stream, ip, port, True, server.config.limits.link_sendq, flusher)
    link = server.linking.new_link(conn)
    link.start()
    await conn.run(link)


def _connected(sock) -> bool:
    try:
        sock.getpeername()
        return True
    except OSError:
        return False


class Linker:
    """Outgoing links: one task per autoconnect block, and CONNECT on request."""

    def __init__(self, server, flusher, nursery: trio.Nursery):
        self.server = server
        self.flusher = flusher
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
                    delay = 1.0 if linked else min(delay * 2, self.server.config.limits.link_retry_max)
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
                stream = trio.SSLStream(tcp, context, server_hostname=block.name)
                await stream.do_handshake()
        except (OSError, trio.BrokenResourceError, trio.TooSlowError) as exc:
            log.info("cannot link to %s at %s:%s: %s", block.name, block.host, block.port,
                     _why(exc))
            return False
        peer_cert = stream.getpeercert(binary_form=True)
        got = tlsutil.der_fingerprint(peer_cert)
        if got != block.fingerprint:
            log.warning("link to %s refused: its certificate is %s, but its [[link]] block pins "
                        "%s", block.name, got, block.fingerprint)
            await trio.aclose_forcefully(stream)
            return False
        ip, port = tcp.socket.getpeername()[:2]
        conn = Connection(stream, ip, port, True, server.config.limits.link_sendq, self.flusher)
        link = server.linking.new_link(conn, outgoing=block.name, tls_peer_cert=peer_cert)
        link.start()
        await conn.run(link)
        return link.established


def _why(exc: BaseException) -> str:
    if isinstance(exc, trio.TooSlowError):
        return f"no answer within {CONNECT_TIMEOUT:.0f} s"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    cause = exc.__cause__
    return f"TLS failed ({cause or exc.__class__.__name__})"
