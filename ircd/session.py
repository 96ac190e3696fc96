"""A client session: the protocol state of one IRC client connection.

Registration, capabilities, the flood budget, labels, monitors and the input line
queue live here; the bytes, buffers and socket live in `net.connection.Connection`.
The session is the connection's protocol object: it receives `data_received` and
`connection_lost`, and writes its replies through the connection.
"""

from __future__ import annotations

import collections
import time

from .protocol.message import MAX_CLIENT_TAGS, MAX_LINE_BODY, build_line

MAX_INPUT_LINE = 1 + MAX_CLIENT_TAGS + 1 + MAX_LINE_BODY


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


def idle_seconds(user) -> int:
    """Seconds since a local user last sent a message (WHOIS 317, WHOX)."""
    return max(0, int(time.monotonic() - user.last_active))


class Session:
    __slots__ = (
        "server", "conn", "ip", "port", "secure", "id", "user", "nick", "ident", "realname",
        "pass_ok", "caps", "cap_version", "cap_negotiating", "tagmask", "registered",
        "closing", "inbuf", "discarding", "pending", "pending_bytes", "tokens", "last_refill",
        "lag_scheduled", "suspended", "capture", "last_recv", "ping_sent", "connected_at",
        "monitoring", "__weakref__",
    )

    def __init__(self, server, conn, cid: int):
        self.server = server
        self.conn = conn
        self.ip = conn.ip
        self.port = conn.port
        self.secure = conn.secure
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
        self.closing = False        # quit_client has run: nothing more is processed
        self.inbuf = b""
        self.discarding = False
        # lines waiting for the flood budget; made when needed and dropped when empty (a
        # deque costs 760 bytes, and most clients are idle most of the time)
        self.pending: collections.deque[bytes] | None = None
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

    # -- identity helpers -------------------------------------------------------------

    @property
    def display_nick(self) -> str:
        return self.user.nick if self.user is not None else (self.nick or "*")

    @property
    def dead(self) -> bool:
        return self.conn.dead

    # -- replies to this client --------------------------------------------------------

    def write(self, data: bytes) -> None:
        """A reply to this client: collected while a labeled command runs."""
        if self.capture is not None:
            self.capture.append(data)
        else:
            self.conn.write(data)

    def write_uncaptured(self, data: bytes) -> None:
        """A message in its own right (one to oneself), outside any labeled response."""
        self.conn.write(data)

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

    # -- the connection's protocol callbacks --------------------------------------------

    def send_queue_exceeded(self) -> None:
        self.server.doom(self, "SendQ exceeded")

    def connection_lost(self, reason: str) -> None:
        self.server.quit_client(self, reason)
        self.server.reap()

    def connection_closed(self) -> None:
        self.server.quit_client(self, "Connection closed")
        self.server.forget_connection(self)
        self.server.reap()

    def data_received(self, data: bytes) -> None:
        """Split input into lines, queue them and process what the flood budget allows."""
        self.last_recv = time.monotonic()
        self.ping_sent = False
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
        self.conn.lines_in += len(lines)
        server = self.server
        pending = self.pending
        for raw in lines:
            if self.discarding:      # the tail of an over-long line
                self.discarding = False
                continue
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            if not raw:
                continue
            if len(raw) > MAX_LINE_BODY - 2 and _too_long(raw):
                self.numeric("417", "Input line was too long")
                continue
            if pending is None and not self.suspended and self._take_token():
                server.handle_line(self, raw)     # the usual case: no queue at all
                if self.closing:
                    return
                pending = self.pending
            else:
                if pending is None:
                    pending = self.pending = collections.deque()
                pending.append(raw)
                self.pending_bytes += len(raw)
        if pending:
            self.process()
        else:
            server.reap()
        if self.pending_bytes > server.config.limits.recvq and not self.closing:
            # input arrives faster than the budget (or a running command) lets it be handled
            server.quit_client(self, "Excess Flood")
            server.reap()

    def _take_token(self) -> bool:
        """One line's worth of the flood budget, if there is one (refilled over time)."""
        limits = self.server.config.limits
        if not limits.flood_control:
            return True
        now = time.monotonic()
        tokens = min(float(limits.flood_burst), self.tokens + (now - self.last_refill) * limits.flood_rate)
        self.last_refill = now
        if tokens < 1.0:
            self.tokens = tokens
            return False
        self.tokens = tokens - 1.0
        return True

    def process(self) -> None:
        pending = self.pending
        server = self.server
        if pending is None:
            server.reap()
            return
        while pending and not self.closing and not self.suspended:
            if not self._take_token():
                if not self.lag_scheduled:
                    self.lag_scheduled = True
                    rate = server.config.limits.flood_rate
                    server.timers.call_later((1.0 - self.tokens) / rate, self._lag_over)
                return
            raw = pending.popleft()
            self.pending_bytes -= len(raw)
            server.handle_line(self, raw)
        if not pending and self.pending is pending:
            self.pending = None
        server.reap()

    def _lag_over(self) -> None:
        self.lag_scheduled = False
        if not self.closing:
            self.process()
