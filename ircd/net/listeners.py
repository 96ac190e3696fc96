"""Open, serve and (on rehash) replace the configured listeners.

Connections are served in a nursery that outlives any one listener, so removing or
changing a listener on rehash never drops a connected client.
"""

from __future__ import annotations

import logging

import trio

from ..protocol.message import build_line
from .. import tlsutil
from ..session import Session
from .connection import Connection
from .linker import serve_incoming

log = logging.getLogger(__name__)


def listener_key(config, listen) -> tuple:
    cert, key = (listen.cert, listen.key) if listen.tls else (None, None)
    return (listen.host, listen.port, listen.tls, listen.link, cert, key)


class Listeners:
    def __init__(self, server, connection_nursery: trio.Nursery, flusher):
        self.server = server
        self.flusher = flusher
        self.connections = connection_nursery
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
                sockets = await trio.open_tcp_listeners(listen.port, host=listen.host)
            except OSError as exc:
                errors.append(f"cannot listen on {listen.host}:{listen.port}: {exc.strerror or exc}")
                continue
            if listen.tls or listen.link:
                cert, keyfile = tlsutil.listener_cert_pair(config, listen)
                context = (tlsutil.link_ssl_context(cert, keyfile) if listen.link
                           else tlsutil.server_ssl_context(cert, keyfile))
                sockets = [trio.SSLListener(s, context, https_compatible=False) for s in sockets]
            scope = trio.CancelScope()
            self.running[key] = scope
            nursery.start_soon(self._serve, sockets, listen, scope)
            kind = "link" if listen.link else ("TLS" if listen.tls else "plain")
            log.info("listening on %s:%s (%s)", listen.host, listen.port, kind)
        return errors

    async def _serve(self, sockets, listen, scope: trio.CancelScope) -> None:
        if listen.link:
            handler = self._handle_link
        else:
            async def handler(stream):
                await self._handle_client(stream, listen.tls)
        with scope:
            try:
                await trio.serve_listeners(handler, sockets, handler_nursery=self.connections)
            finally:
                for s in sockets:
                    await trio.aclose_forcefully(s)

    def close_all(self) -> None:
        for scope in self.running.values():
            scope.cancel()
        self.running.clear()

    async def _handle_client(self, stream, secure: bool) -> None:
        server = self.server
        sock = stream.transport_stream.socket if secure else stream.socket
        try:
            ip, port = sock.getpeername()[:2]
        except OSError:
            await trio.aclose_forcefully(stream)
            return
        conn = Connection(stream, ip, port, secure, server.config.limits.sendq, self.flusher)
        session = Session(server, conn, server.next_client_id())
        refusal = server.admit(session)
        if refusal is not None:
            log.info("refused connection from %s:%s: %s", ip, port, refusal)
            await _refuse(stream, ip, refusal)
            return
        log.log(server.connection_log_level, "connection from %s:%s%s", ip, port,
                " (TLS)" if secure else "")
        await conn.run(session)

    async def _handle_link(self, stream) -> None:
        await serve_incoming(self.server, stream, self.flusher)


async def _refuse(stream, host: str, reason: str) -> None:
    with trio.move_on_after(2):
        try:
            await stream.send_all(build_line(None, "ERROR", (f"Closing Link: {host} ({reason})",), trailing=True))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
    await trio.aclose_forcefully(stream)
