"""One client connection: the session's protocol state plus its socket buffers.

Two tasks per connection: the reader (the handler task itself) and a writer that
sleeps until it is needed. Command handling is synchronous and only appends bytes to
`out`; once the current batch of work is done, the server's flusher writes each
dirty plain-TCP connection with one non-blocking write() from its own task, with no
task switch per connection. The writer task takes over whatever the kernel would not
accept at once (and does all TLS writing), so a slow reader never blocks anyone.
"""

from __future__ import annotations

import collections
import logging
import os
import time

import trio
from trio.lowlevel import Abort, current_task, reschedule, wait_task_rescheduled

from ..protocol.message import MAX_CLIENT_TAGS, MAX_LINE_BODY, build_line

log = logging.getLogger(__name__)

MAX_INPUT_LINE = 1 + MAX_CLIENT_TAGS + 1 + MAX_LINE_BODY
FINAL_FLUSH_SECONDS = 2.0

# Tag forms a recipient can need; a message is serialised once per form in use.
TAG_TIME = 1        # server-time
TAG_MSG = 2         # message-tags: msgid, client-only tags, bot
TAG_ACCOUNT = 4     # account-tag


def _too_long(raw: bytes) -> bool:
    """A client may send 4094 bytes of tag data (IRCv3 message-tags, "Size limit") and
    512 bytes of message with CRLF (RFC 1459); anything longer is answered with 417."""
    body = len(raw)
    if raw[0] == 64:  # '@'
        space = raw.find(b" ")
        if space == -1:
            return body - 1 > MAX_CLIENT_TAGS
        if space - 1 > MAX_CLIENT_TAGS:
            return True
        body -= space + 1
    return body > MAX_LINE_BODY - 2


class Client:
    __slots__ = (
        "server", "stream", "ip", "port", "secure", "user", "nick", "ident", "realname",
        "pass_ok", "caps", "cap_version", "cap_negotiating", "tagmask", "registered",
        "out", "queued", "sendq", "writer_task", "closing", "dead", "cancel_scope",
        "inbuf", "discarding", "pending", "pending_bytes", "tokens", "last_refill",
        "lag_scheduled", "suspended", "capture", "last_recv", "ping_sent", "connected_at", "monitoring",
        "id", "fd", "lines_in", "bytes_in", "lines_out", "bytes_out", "__weakref__",
    )

    def __init__(self, server, stream, ip: str, port: int, secure: bool, cid: int):
        self.server = server
        self.stream = stream
        # Plain TCP connections can be written directly by the flusher; TLS cannot.
        self.fd = None if secure else stream.socket.fileno()
        self.ip = ip
        self.port = port
        self.secure = secure
        self.id = cid
        self.user = None            # the User once registered
        self.nick: str | None = None
        self.ident: str | None = None
        self.realname = ""
        self.pass_ok = server.config.server.password is None
        self.caps: set[str] = set()
        self.cap_version = 0
        self.cap_negotiating = False
        self.tagmask = 0
        self.registered = False
        self.out: list[bytes] = []
        self.queued = 0
        self.sendq = server.config.limits.sendq
        self.writer_task = None
        self.closing = False
        self.dead = False
        self.cancel_scope: trio.CancelScope | None = None
        self.inbuf = b""
        self.discarding = False
        self.pending: collections.deque[bytes] = collections.deque()
        self.pending_bytes = 0
        self.tokens = float(server.config.limits.flood_burst)
        self.last_refill = time.monotonic()
        self.lag_scheduled = False
        self.suspended = False      # a command's Deferred work is running: input waits
        self.capture: list[bytes] | None = None   # set while a labeled command runs
        self.last_recv = time.monotonic()
        self.connected_at = self.last_recv
        self.ping_sent = False
        self.monitoring: set[str] | None = None
        # traffic counters for STATS l, counted per read and per write, never per line
        self.lines_in = self.bytes_in = self.lines_out = self.bytes_out = 0

    # -- identity helpers -------------------------------------------------------------

    @property
    def display_nick(self) -> str:
        return self.user.nick if self.user is not None else (self.nick or "*")

    def has_cap(self, cap: str) -> bool:
        return cap in self.caps

    # -- output -----------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Queue bytes for this client; the writer task sends them at the next yield."""
        if self.capture is not None:
            self.capture.append(data)
            return
        if self.dead:
            return
        out = self.out
        if not out:
            self.server.mark_dirty(self)
        out.append(data)
        self.queued += len(data)
        if self.queued > self.sendq:
            self.server.doom(self, "SendQ exceeded")

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
            self._count_out(data[:sent])
            if sent == len(data):
                self.queued = 0
                return
            out.append(data[sent:])
            self.queued = len(data) - sent
        self.wake_writer()

    def _count_out(self, data: bytes) -> None:
        self.bytes_out += len(data)
        self.lines_out += data.count(b"\n")

    def wake_writer(self) -> None:
        task = self.writer_task
        if task is not None:
            self.writer_task = None
            reschedule(task)

    def send(self, source: str | None, command: str, *params: str, tags=None) -> None:
        self.write(build_line(source, command, params, tags))

    def numeric(self, code: str, *params: str) -> None:
        self.write(build_line(self.server.name, code, (self.display_nick, *params), trailing=True))

    def standard_reply(self, kind: str, command: str, code: str, *context: str) -> None:
        """FAIL/WARN/NOTE: the last item of `context` is the human description."""
        self.write(build_line(self.server.name, kind, (command, code, *context), trailing=True))

    def report(self, kind: str, command: str, code: str, *context: str) -> None:
        """A failure or warning the client must hear about, in the form it understands:
        a standard reply with the standard-replies capability, else a server NOTICE
        (the last item of `context` is the human description)."""
        if "standard-replies" in self.caps:
            self.standard_reply(kind, command, code, *context)
        else:
            self.notice(f"*** {command} {code.replace('_', ' ').lower()}: {context[-1]}")

    def notice(self, text: str) -> None:
        self.write(build_line(self.server.name, "NOTICE", (self.display_nick, text), trailing=True))

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
                self._count_out(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                self.dead = True
                self.server.quit_client(self, f"Write error: {exc.__class__.__name__}")
                self.server.reap()
                break
        self.cancel_scope.cancel()

    # -- input ------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve this connection until it closes; always leaves the server state clean."""
        try:
            async with trio.open_nursery() as nursery:
                self.cancel_scope = nursery.cancel_scope
                nursery.start_soon(self._writer)
                await self._reader()
        except Exception:  # a bug must not take the listener down
            log.exception("connection %s:%s failed", self.ip, self.port)
        finally:
            self.dead = True
            self.server.quit_client(self, "Connection closed")
            self.server.forget_connection(self)
            self.server.reap()
            await trio.aclose_forcefully(self.stream)

    async def _reader(self) -> None:
        receive = self.stream.receive_some
        while not self.closing:
            try:
                data = await receive(16384)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                cause = exc.__cause__ or exc
                self.server.quit_client(self, f"Read error: {cause.__class__.__name__}")
                self.server.reap()
                return
            if not data:
                self.server.quit_client(self, "Remote host closed the connection")
                self.server.reap()
                return
            self.feed(data)

    def feed(self, data: bytes) -> None:
        """Split input into lines, queue them and process what the flood budget allows."""
        self.last_recv = time.monotonic()
        self.ping_sent = False
        self.bytes_in += len(data)
        self.lines_in += data.count(b"\n")
        buf = self.inbuf + data if self.inbuf else data
        if b"\n" not in data:
            if len(buf) > MAX_INPUT_LINE:
                if not self.discarding:
                    self.numeric("417", "Input line was too long")
                self.discarding = True
                buf = b""
            self.inbuf = buf
            if self.pending:
                self.process()
            return
        lines = buf.split(b"\n")
        self.inbuf = lines.pop()
        pending = self.pending
        for raw in lines:
            if self.discarding:      # the tail of an over-long line
                self.discarding = False
                continue
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            if not raw:
                continue
            if _too_long(raw):
                self.numeric("417", "Input line was too long")
                continue
            pending.append(raw)
            self.pending_bytes += len(raw)
        self.process()
        if self.pending_bytes > self.server.config.limits.recvq and not self.closing:
            # input arrives faster than the budget (or a running command) lets it be handled
            self.server.quit_client(self, "Excess Flood")
            self.server.reap()

    def process(self) -> None:
        pending = self.pending
        server = self.server
        flood = server.config.limits.flood_control
        while pending and not self.closing and not self.suspended:
            if flood:
                limits = server.config.limits
                now = time.monotonic()
                self.tokens = min(float(limits.flood_burst),
                                  self.tokens + (now - self.last_refill) * limits.flood_rate)
                self.last_refill = now
                if self.tokens < 1.0:
                    if not self.lag_scheduled:
                        self.lag_scheduled = True
                        server.timers.call_later((1.0 - self.tokens) / limits.flood_rate, self._lag_over)
                    return
                self.tokens -= 1.0
            raw = pending.popleft()
            self.pending_bytes -= len(raw)
            server.handle_line(self, raw)
        server.reap()

    def _lag_over(self) -> None:
        self.lag_scheduled = False
        if not self.closing:
            self.process()
