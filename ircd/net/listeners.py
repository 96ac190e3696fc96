"""Open, serve and (on rehash) replace the configured listeners.

Each listening socket has one task that accepts every waiting connection when it
wakes, and hands each to the reactor. Connections outlive the listener that accepted
them, so removing or changing a listener on rehash never drops a connected client.
"""

from __future__ import annotations

import logging
import socket

import trio
from trio.lowlevel import wait_readable

from ..protocol.message import build_line
from .. import tlsutil
from ..session import Session
from .connection import Connection
from .linker import serve_incoming

log = logging.getLogger(__name__)

ACCEPT_RETRY_SECONDS = 0.1
ACCEPTS_PER_WAKE = 64


def listener_key(config, listen) -> tuple:
    cert, key = (listen.cert, listen.key) if listen.tls else (None, None)
    return (listen.host, listen.port, listen.tls, listen.link, cert, key)


class Listeners:
    def __init__(self, server, reactor):
        self.server = server
        self.reactor = reactor
        self.running: dict[tuple, trio.CancelScope] = {}

    async def apply(self, config, nursery: trio.Nursery) -> list[str]:
        """Make the running listeners match `config`; return a list of failures."""
        wanted = {listener_key(config, listen): listen for listen in config.listen}
        for key in list(self.running):
            if key not in wanted:
                self.running.pop(key).cancel()
                log.info("stopped listening on %s:%s", key[0], key[1])
        errors = []
        for key, listen in wanted.items():
            if key in self.running:
                continue
            try:
                listeners = await trio.open_tcp_listeners(listen.port, host=listen.host)
            except OSError as exc:
                errors.append(f"cannot listen on {listen.host}:{listen.port}: {exc.strerror or exc}")
                continue
            context = None
            if listen.tls or listen.link:
                cert, keyfile = tlsutil.listener_cert_pair(config, listen)
                context = (tlsutil.link_ssl_context(cert, keyfile) if listen.link
                           else tlsutil.server_ssl_context(cert, keyfile))
            scope = trio.CancelScope()
            self.running[key] = scope
            for listener in listeners:
                # the engine reads sockets itself: take the plain socket out of trio's
                sock = socket.socket(fileno=listener.socket.detach())
                sock.setblocking(False)
                nursery.start_soon(self._accept, sock, listen, context, scope)
            kind = "link" if listen.link else ("TLS" if listen.tls else "plain")
            log.info("listening on %s:%s (%s)", listen.host, listen.port, kind)
        return errors

    async def _accept(self, sock, listen, context, scope: trio.CancelScope) -> None:
        """Accept every waiting connection at each wake-up (a burst of connects costs
        one wait, not one per client)."""
        admit = self._link if listen.link else self._client
        accepted = 0
        with scope, sock:
            while True:
                if accepted >= ACCEPTS_PER_WAKE:    # let the accepted ones be served too
                    accepted = 0
                    await trio.lowlevel.checkpoint()
                try:
                    conn_sock, addr = sock.accept()
                except (BlockingIOError, InterruptedError):
                    accepted = 0
                    await wait_readable(sock)
                    continue
                except OSError as exc:        # out of descriptors, or the like: wait a bit
                    log.warning("cannot accept on %s:%s: %s", listen.host, listen.port,
                                exc.strerror or exc)
                    await trio.sleep(ACCEPT_RETRY_SECONDS)
                    continue
                accepted += 1
                conn_sock.setblocking(False)
                try:
                    conn_sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    admit(conn_sock, addr[0], addr[1], context)
                except OSError:
                    conn_sock.close()

    def close_all(self) -> None:
        for scope in self.running.values():
            scope.cancel()
        self.running.clear()

    def _client(self, sock, ip: str, port: int, context) -> None:
        server = self.server
        conn = Connection(self.reactor, sock, ip, port, server.config.limits.sendq, context)
        session = Session(server, conn, server.next_client_id())
        refusal = server.admit(session)
        if refusal is not None:
            log.info("refused connection from %s:%s: %s", ip, port, refusal)
            _refuse(sock, context, ip, refusal)
            return
        log.log(server.connection_log_level, "connection from %s:%s%s", ip, port,
                " (TLS)" if context is not None else "")
        conn.start(session)

    def _link(self, sock, ip: str, port: int, context) -> None:
        serve_incoming(self.server, self.reactor, sock, ip, port, context)


def _refuse(sock, context, host: str, reason: str) -> None:
    """Say why in one line if the socket takes it at once (a plain one always does)."""
    if context is None:
        try:
            sock.send(build_line(None, "ERROR", (f"Closing Link: {host} ({reason})",), trailing=True))
        except OSError:
            pass
    sock.close()
