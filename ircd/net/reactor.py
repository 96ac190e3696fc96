"""The I/O engine: one task reads every ready connection, with no task per connection.

The reactor keeps its own epoll object holding every connection's socket, and waits
for that one descriptor in trio. When it wakes, it reads each ready socket once, hands
the bytes to the connection's protocol object, and at the end of the pass writes every
connection that has output (`Flusher.flush`). After a busy pass it only yields to
trio's other tasks (a checkpoint, 4 us) and reads on, instead of waiting on the
descriptor again (9 us). A thousand clients that each sent a line cost one wake-up,
not a thousand task switches, and an idle client costs a socket and two small
objects: no coroutine frame, no task, no buffer.

TLS runs on the same engine (`ssl.SSLObject` over memory buffers), so a TLS client and
a server link are connections like any other on the hot path.
"""

from __future__ import annotations

import logging
import select

from trio.lowlevel import checkpoint, wait_readable

log = logging.getLogger(__name__)

MAX_EVENTS = 1024            # ready sockets handled per pass; the rest wait one round
BUSY_PASS = 16               # a pass this full suggests more input is already waiting
FAN_OUT = 8                  # dirty connections per handled event that make a pass a fan-out
MORE_EVENTS = 16             # ready sockets handled mid-flush at a time (Flusher.flush)
EPOLLIN = select.EPOLLIN
EPOLLOUT = select.EPOLLOUT
READ_EVENTS = EPOLLIN | select.EPOLLERR | select.EPOLLHUP


class Reactor:
    """Owns the epoll object; runs as one task in the connections' nursery."""

    def __init__(self, flusher, timers):
        self.flusher = flusher
        self.timers = timers
        self.epoll = select.epoll()
        self.connections: dict = {}

    def add(self, conn) -> None:
        self.connections[conn.fd] = conn
        self.watch(conn, EPOLLIN)

    def watch(self, conn, mask: int) -> None:
        """Set the events epoll reports for `conn` (0: none, and out of the epoll set)."""
        if mask == conn.events:
            return
        if conn.events == 0:
            self.epoll.register(conn.fd, mask)
        elif mask == 0:
            self.epoll.unregister(conn.fd)
        else:
            self.epoll.modify(conn.fd, mask)
        conn.events = mask

    def remove(self, conn) -> None:
        self.watch(conn, 0)
        if self.connections.get(conn.fd) is conn:
            del self.connections[conn.fd]

    def _handle(self, events) -> None:
        connections = self.connections
        for fd, mask in events:
            conn = connections.get(fd)
            if conn is None:
                continue
            try:
                if mask & EPOLLOUT:
                    conn.writable()
                if mask & READ_EVENTS and not conn.closing:
                    conn.readable()
            except Exception:  # a bug in one connection must not stop the rest
                log.exception("connection %s:%s failed", conn.ip, conn.port)
                conn.finish()

    def _handle_more(self) -> None:
        """Mid-flush: handle what became ready meanwhile (see Flusher.flush)."""
        events = self.epoll.poll(0, MORE_EVENTS)
        if events:
            self._handle(events)

    async def run(self) -> None:
        epoll = self.epoll
        connections = self.connections
        flusher = self.flusher
        try:
            while True:
                events = epoll.poll(0, MAX_EVENTS)
                if not events:
                    await wait_readable(epoll)
                    continue
                flusher.in_pass = True      # (writes wait for the flush at the end)
                try:
                    self._handle(events)
                    # a fan-out (much more to write than was read): look for new input
                    # while writing it; for many small conversations it would only delay
                    # the writes that are due
                    fan_out = len(flusher.dirty) >= FAN_OUT * len(events)
                    flusher.flush(self._handle_more if fan_out else None)
                finally:
                    flusher.in_pass = False
                if len(events) < BUSY_PASS:
                    await wait_readable(epoll)  # quiet: wait for the next input
                else:
                    await checkpoint()          # busy: let the other tasks run, then read on
        finally:
            for conn in list(connections.values()):
                conn.finish()
            epoll.close()
