"""One TCP or TLS connection: bytes in, bytes out, send queue, close. No IRC here.

The connection reads into its protocol object (`data_received`, `connection_lost`)
and buffers what the protocol writes. Writes are appended to `out`; the flusher writes
each dirty plain-TCP connection with one non-blocking write() per round, and the
writer task takes over what the kernel would not accept at once (and does all TLS
writing), so a slow reader never blocks anyone. Client sessions use it; server links
will too.
"""

from __future__ import annotations

import logging
import os

import trio
from trio.lowlevel import Abort, current_task, reschedule, wait_task_rescheduled

log = logging.getLogger(__name__)

CLOSE_GRACE_SECONDS = 2.0     # how long a closing connection may take to flush
TLS_CLOSE_SECONDS = 1.0       # how long to wait for the TLS close alert to go out


class Connection:
    __slots__ = ("stream", "fd", "ip", "port", "secure", "out", "queued", "sendq",
                 "writer_task", "closing", "dead", "cancel_scope", "flusher", "protocol",
                 "lines_in", "bytes_in", "lines_out", "bytes_out", "__weakref__")

    def __init__(self, stream, ip: str, port: int, secure: bool, sendq: int, flusher):
        self.stream = stream
        # Plain TCP connections can be written directly by the flusher; TLS cannot.
        self.fd = None if secure else stream.socket.fileno()
        self.ip = ip
        self.port = port
        self.secure = secure
        self.out: list[bytes] = []
        self.queued = 0
        self.sendq = sendq
        self.writer_task = None
        self.closing = False        # no more input; flush what is queued, then close
        self.dead = False           # output is discarded (write failed or sendq exceeded)
        self.cancel_scope: trio.CancelScope | None = None
        self.flusher = flusher
        self.protocol = None
        # traffic counters for STATS l: lines counted as queued, bytes as written
        self.lines_in = self.bytes_in = self.lines_out = self.bytes_out = 0

    # -- output -----------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Queue bytes; they are written after the current batch of work."""
        if self.dead:
            return
        out = self.out
        if not out:
            self.flusher.mark(self)
        out.append(data)
        self.lines_out += 1
        self.queued += len(data)
        if self.queued > self.sendq:
            self.protocol.send_queue_exceeded()

    def discard_output(self) -> None:
        self.dead = True
        self.out.clear()
        self.queued = 0

    def flush(self) -> None:
        """Send what is queued now if the writer is idle; hand any rest to the writer."""
        out = self.out
        if not out or self.writer_task is None:
            return      # nothing to do, or the writer is mid-send and will pick it up
        if self.fd is not None and not self.closing:
            data = b"".join(out) if len(out) > 1 else out[0]
            try:
                sent = os.write(self.fd, data)
            except BlockingIOError:
                sent = 0
            except OSError:
                sent = 0     # the writer task meets the same error and reports it
            out.clear()
            self.bytes_out += sent
            if sent == len(data):
                self.queued = 0
                return
            out.append(data[sent:])
            self.queued = len(data) - sent
        self.wake_writer()

    def wake_writer(self) -> None:
        task = self.writer_task
        if task is not None:
            self.writer_task = None
            reschedule(task)

    def close(self) -> None:
        """Stop reading; flush what is queued (bounded by CLOSE_GRACE_SECONDS), then close."""
        if self.cancel_scope is None:
            return
        self.closing = True
        self.cancel_scope.deadline = min(self.cancel_scope.deadline,
                                         trio.current_time() + CLOSE_GRACE_SECONDS)
        if self.dead:
            self.cancel_scope.cancel()
        else:
            self.wake_writer()

    def _abort_wait(self, _raise_cancel) -> Abort:
        self.writer_task = None
        return Abort.SUCCEEDED

    async def _writer(self) -> None:
        out = self.out
        while True:
            if not out:
                if self.closing:
                    break
                self.writer_task = current_task()
                await wait_task_rescheduled(self._abort_wait)
                continue
            data = b"".join(out) if len(out) > 1 else out[0]
            out.clear()
            self.queued = 0
            try:
                await self.stream.send_all(data)
                self.bytes_out += len(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                self.dead = True
                self.protocol.connection_lost(f"Write error: {exc.__class__.__name__}")
                break
        self.cancel_scope.cancel()

    # -- input ------------------------------------------------------------------------

    async def run(self, protocol) -> None:
        """Serve until closed; the protocol always hears `connection_closed()` last."""
        self.protocol = protocol
        try:
            async with trio.open_nursery() as nursery:
                self.cancel_scope = nursery.cancel_scope
                nursery.start_soon(self._writer)
                await self._reader()
        except Exception:  # a bug must not take the listener down
            log.exception("connection %s:%s failed", self.ip, self.port)
        finally:
            clean = not self.dead
            self.dead = True
            protocol.connection_closed()
            await self._close_stream(clean)

    async def _close_stream(self, clean: bool) -> None:
        """TLS: send the close alert so clients don't report an unexpected EOF."""
        if clean and self.secure:
            # shielded, so a shutdown's cancellation still lets the alert out (bounded)
            with trio.CancelScope(shield=True), trio.move_on_after(TLS_CLOSE_SECONDS):
                try:
                    await self.stream.aclose()
                    return
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    pass
        await trio.aclose_forcefully(self.stream)

    async def _reader(self) -> None:
        receive = self.stream.receive_some
        protocol = self.protocol
        while not self.closing:
            try:
                data = await receive(16384)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                cause = exc.__cause__ or exc
                protocol.connection_lost(f"Read error: {cause.__class__.__name__}")
                return
            if not data:
                protocol.connection_lost("Remote host closed the connection")
                return
            self.bytes_in += len(data)
            protocol.data_received(data)
