"""Runs a command handler's Deferred work in a worker thread, then the rest of it."""

from __future__ import annotations

import logging

import trio

from ..protocol import numerics as N

log = logging.getLogger(__name__)

MAX_WORKER_THREADS = 4


class Worker:
    def __init__(self, server, nursery: trio.Nursery):
        self.server = server
        self.nursery = nursery
        self.limiter = trio.CapacityLimiter(MAX_WORKER_THREADS)

    def start(self, session, command, label, captured, deferred) -> None:
        self.nursery.start_soon(self._finish, session, command, label, captured, deferred)

    async def _finish(self, session, command, label, captured, deferred) -> None:
        """Thread work, then the rest of the handler (inside the same labeled response),
        then the client's queued input. Others are served meanwhile."""
        server = self.server
        failed = False
        result = None
        try:
            result = await trio.to_thread.run_sync(deferred.work, limiter=self.limiter,
                                                   abandon_on_cancel=True)
        except Exception:
            log.exception("background work for %r from %s failed", command, session.display_nick)
            failed = True

        def rest() -> None:
            if failed:
                session.numeric(N.ERR_UNKNOWNERROR, command, "Internal error processing the command")
            else:
                deferred.then(result)

        server.resume(session, command, label, captured, rest)
