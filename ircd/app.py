"""The running server process: listeners, timers, signals, rehash and shutdown."""

from __future__ import annotations

import logging
import os
import resource
import signal
import sys
import time

import attrs
import trio

from . import tlsutil
from .config import ConfigError, load_config
from .net.flusher import Flusher
from .net.linker import Linker
from .net.listeners import Listeners
from .net.reactor import Reactor
from .net.timers import Timers
from .net.worker import Worker
from .protocol.message import build_line
from .server import Server

log = logging.getLogger(__name__)

SHUTDOWN_FLUSH_SECONDS = 2.0


def raise_fd_limit() -> None:
    """Many clients need many descriptors; take the hard limit the OS allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


class App:
    def __init__(self, config, log_level_override: str | None = None):
        self.config = config
        self.log_level_override = log_level_override
        self.timers = Timers()
        self.flusher = Flusher()
        self.server = Server(config, self.timers)
        self.server.shutdown_requested = self.request_shutdown
        self.server.rehash_requested = self.rehash
        self.restart = False
        self._stop = trio.Event()
        self.ready = trio.Event()      # set once listeners and signal handlers are in place
        self.listeners: Listeners | None = None
        self._nursery: trio.Nursery | None = None
        self.exit_code = 0

    def request_shutdown(self, reason: str, restart: bool = False) -> None:
        self.shutdown_reason = reason
        self.restart = restart
        self._stop.set()

    def rehash(self, oper_client=None) -> tuple[bool, str]:
        """Reload the config file; keep the running one if the new one is invalid."""
        path = self.config.path
        if path is None:
            return False, "running on the built-in default configuration; there is no file to reload"
        try:
            new = load_config(path)
        except ConfigError as exc:
            log.error("rehash refused, keeping the running configuration:\n%s", exc)
            return False, str(exc).replace("\n", "; ")
        if (new.server.name, new.server.sid) != (self.config.server.name, self.config.server.sid):
            log.warning("rehash: [server] name and sid cannot change while running; keeping %s (%s)",
                        self.config.server.name, self.config.server.sid)
            new = _with_server_identity(new, self.config)
        self.config = new
        self.server.apply_config(new)
        self._nursery.start_soon(self._apply_listeners)
        self.linker.apply(new)
        if self.log_level_override is None:
            logging.getLogger().setLevel(new.log_level.upper())
        log.info("configuration reloaded from %s", path)
        return True, f"reloaded {path}"

    async def _apply_listeners(self) -> None:
        for error in await self.listeners.apply(self.config, self._nursery):
            log.error("rehash: %s", error)

    async def main(self) -> int:
        raise_fd_limit()
        self.shutdown_reason = "Server shutting down"
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self.server.worker = Worker(self.server, nursery)
            async with trio.open_nursery() as connections:
                reactor = Reactor(self.flusher, self.timers)
                connections.start_soon(reactor.run)
                self.listeners = Listeners(self.server, reactor)
                self.linker = Linker(self.server, reactor, connections)
                nursery.start_soon(self.timers.run)
                nursery.start_soon(self.flusher.run)
                nursery.start_soon(self._housekeeping)
                errors = await self.listeners.apply(self.config, nursery)
                if errors:
                    for error in errors:
                        log.error("%s", error)
                    self.exit_code = 1
                    nursery.cancel_scope.cancel()
                    connections.cancel_scope.cancel()
                    return self.exit_code
                nursery.start_soon(self._signals)
                self.linker.apply(self.config)
                log.info("%s ready (network %s)", self.server.name, self.config.server.network)
                for line in tlsutil.certificate_summary(self.config):
                    log.info("%s", line)
                await self._stop.wait()
                await self._shutdown(connections)
            nursery.cancel_scope.cancel()
        return self.exit_code

    async def _shutdown(self, connections: trio.Nursery) -> None:
        log.info("shutting down: %s", self.shutdown_reason)
        self.listeners.close_all()
        for link in list(self.server.linking.links):
            link.close(self.shutdown_reason)
        for client in list(self.server.connections):
            self.server.quit_client(client, self.shutdown_reason)
        with trio.move_on_after(SHUTDOWN_FLUSH_SECONDS):
            while self.server.connections or self.server.linking.open:
                await trio.sleep(0.05)
        connections.cancel_scope.cancel()

    async def _signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            self.ready.set()
            async for signum in signals:
                if signum == signal.SIGHUP:
                    log.info("SIGHUP: reloading configuration")
                    self.rehash()
                else:
                    self.request_shutdown(f"Server shutting down ({signal.Signals(signum).name})")

    async def _housekeeping(self) -> None:
        """Registration timeouts and keep-alive PINGs, one scan for all connections."""
        server = self.server
        while True:
            lim = server.config.limits
            await trio.sleep(max(0.05, min(1.0, lim.registration_timeout / 4, lim.ping_interval / 4)))
            now = time.monotonic()
            ping = build_line(None, "PING", (server.name,), trailing=True)
            for client in list(server.connections):
                if client.closing:
                    continue
                if not client.registered:
                    if now - client.connected_at > lim.registration_timeout:
                        server.quit_client(client, "Registration timed out")
                    continue
                idle = now - client.last_recv
                if not client.ping_sent:
                    if idle > lim.ping_interval:
                        client.ping_sent = True
                        client.conn.write(ping)
                elif idle > lim.ping_interval + lim.ping_timeout:
                    server.quit_client(client, f"Ping timeout: {int(idle)} seconds")
            server.linking.keepalive(now)
            server.reap()


def _with_server_identity(config, running):
    """A rehash cannot rename the server or change its SID while users hold IDs under it."""
    return attrs.evolve(config, server=attrs.evolve(
        config.server, name=running.server.name, sid=running.server.sid))


def run(config, log_level_override: str | None = None) -> int:
    """Run a server until SIGTERM/SIGINT or DIE; RESTART re-executes the process."""
    app = App(config, log_level_override)
    code = trio.run(app.main)
    if app.restart:
        log.info("restarting")
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
    return code
