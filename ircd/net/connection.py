"""One TCP or TLS connection: bytes in, bytes out, send queue, close. No IRC here.

A connection has no task of its own. The reactor (net/reactor.py) calls `readable()`
when its socket has data and `writable()` when a blocked write may go on; the
connection hands what it read to its protocol object (`data_received`,
`connection_lost`, `connection_closed`: a client Session or a server Link).

Writes are appended to `out`. The flusher writes each dirty connection with one
non-blocking write() per round; what the kernel does not take waits for `writable()`,
so a slow reader never blocks anyone. TLS is an `ssl.SSLObject` over memory buffers:
plaintext is encrypted as it is flushed and decrypted as it is read.
"""

from __future__ import annotations

import logging
import os
import select
import ssl

log = logging.getLogger(__name__)

CLOSE_GRACE_SECONDS = 2.0     # how long a closing connection may take to flush
READ_SIZE = 65536
EPOLLIN = select.EPOLLIN
EPOLLOUT = select.EPOLLOUT
PIECE_MIN = 8                 # connections a channel message must reach to queue Pieces


class Piece(bytearray):
    """Lines a channel queued on many connections at once (see Connection.broadcast)."""
    __slots__ = ("lines",)


def _lines(out: list) -> int:
    """How many lines the queued items hold (a Piece knows its count)."""
    if len(out) == 1:
        item = out[0]
        return 1 if type(item) is bytes else item.lines
    return sum(1 if type(item) is bytes else item.lines for item in out)


def broadcast_each(groups, datas, skip, state=None) -> None:
    """What `Connection.broadcast` does, one `write` per connection: for stand-ins of
    connections (tests, tools/hotpath.py) that only have `write`."""
    for (_, conns), data in zip(groups, datas):
        for conn in conns:
            if conn is not skip:
                conn.write(data)


def _queue_on(conns, item, skip, mark) -> None:
    """`Connection.write` unrolled over many connections (see broadcast): only a blocked
    connection's queue can grow past one pass's worth, so only there are bytes counted
    against the sendq as they are queued."""
    for c in conns:
        if c is skip:
            continue
        out = c.out
        if not out:
            if c.dead:
                continue
            mark(c)
        out.append(item)
        if c.blocked:
            queued = c.queued + len(item)
            c.queued = queued
            if queued > c.sendq:
                c.protocol.send_queue_exceeded()


class Connection:
    __slots__ = ("reactor", "flusher", "sock", "fd", "ip", "port", "secure", "out", "queued",
                 "sendq", "events", "blocked", "closing", "dead", "finished", "protocol",
                 "tls", "tls_in", "tls_out", "unsent", "handshaking", "on_ready",
                 "closed_event", "lines_in", "bytes_in", "lines_out", "bytes_out",
                 "in_channels", "__weakref__")

    def __init__(self, reactor, sock, ip: str, port: int, sendq: int, tls_context=None,
                 server_side: bool = True, server_hostname: str | None = None):
        self.reactor = reactor
        self.flusher = reactor.flusher
        self.sock = sock
        self.fd = sock.fileno()
        self.ip = ip
        self.port = port
        self.secure = tls_context is not None
        self.out: list[bytes] = []
        # bytes not yet sent: those the kernel did not take, plus what `write` queued since
        # (fan-out to a connection that is not blocked is counted when it is flushed)
        self.queued = 0
        self.sendq = sendq
        self.events = 0               # what the reactor's epoll watches for (0: nothing)
        self.blocked = False          # the kernel's buffer is full: wait for writable()
        self.closing = False          # no more input; flush what is queued, then close
        self.dead = False             # output is discarded (write failed or sendq exceeded)
        self.finished = False         # closed, and the protocol has heard so
        self.protocol = None
        self.on_ready = None          # called once the TLS handshake is done
        self.closed_event = None      # a trio.Event set when finished (for tasks awaiting it)
        # may be among a channel's recipients, i.e. hold its shared Pieces (a server link
        # is not: its writes leave the channels' pieces open)
        self.in_channels = True
        # traffic counters for STATS l: lines counted as they are taken from the queue,
        # bytes as written
        self.lines_in = self.bytes_in = self.lines_out = self.bytes_out = 0
        if tls_context is None:
            self.tls = self.tls_in = self.tls_out = None
            self.handshaking = False
        else:
            self.tls_in = ssl.MemoryBIO()
            self.tls_out = ssl.MemoryBIO()
            self.tls = tls_context.wrap_bio(self.tls_in, self.tls_out, server_side=server_side,
                                            server_hostname=server_hostname)
            self.handshaking = True
        self.unsent = b""             # what the kernel did not take (encrypted, for TLS;
                                      # a bytearray while there is some)

    def start(self, protocol) -> None:
        """Serve `protocol` from now on (a TLS client side sends its hello)."""
        self.protocol = protocol
        self.reactor.add(self)
        if self.tls is not None and not self.tls.server_side:
            self._handshake()

    def peer_certificate(self) -> bytes | None:
        return self.tls.getpeercert(binary_form=True) if self.tls is not None else None

    # -- output -----------------------------------------------------------------------

    def write(self, data: bytes, lines: int = 1) -> None:
        """Queue bytes (`lines` lines of them); they are written after the current
        batch of work."""
        if self.dead:
            return
        out = self.out
        flusher = self.flusher
        if self.in_channels:
            flusher.writes += 1          # (a channel's queued pieces are closed)
        if not out:
            flusher.mark(self)
        out.append(data)
        if lines != 1:
            self.lines_out += lines - 1     # (flush counts one per queued piece)
        queued = self.queued + len(data)
        self.queued = queued
        if queued > self.sendq:
            self.protocol.send_queue_exceeded()

    @staticmethod
    def broadcast(groups, datas, skip, state: list) -> None:
        """Queue a channel message on every connection of `groups` ((mask, conns) pairs;
        `datas`: its bytes for each) but `skip`'s: the hot path of a channel message.

        Each connection gets one Piece per group; while nothing else has been written
        to any connection that may hold pieces (`Flusher.writes`; a server link's
        frames do not count), the channel's next message from the same sender is added
        to the pieces already queued, once, not to each connection.
        `state` ([pieces, writes, skip]) is the channel's. A small channel (under
        PIECE_MIN connections) gets its bytes queued directly: a Piece costs more than
        it saves there."""
        flusher = groups[0][1][0].flusher
        pieces = state[0]
        if pieces is not None and state[1] == flusher.writes and state[2] is skip:
            for piece, data in zip(pieces, datas):
                piece += data
                piece.lines += 1
            return
        mark = flusher.mark
        if len(groups) == 1 and len(groups[0][1]) < PIECE_MIN:
            # a small channel: its bytes themselves are queued, as by write()
            _queue_on(groups[0][1], datas[0], skip, mark)
            flusher.writes += 1
            state[0] = None
            return
        pieces = []
        for (_, conns), data in zip(groups, datas):
            piece = Piece(data)
            piece.lines = 1
            pieces.append(piece)
            _queue_on(conns, piece, skip, mark)
        flusher.writes += 1
        state[0] = pieces
        state[1] = flusher.writes
        state[2] = skip

    def discard_output(self) -> None:
        self.dead = True
        self.out.clear()
        self.unsent = b""
        self.queued = 0

    def flush(self) -> None:
        """Write what is queued with one non-blocking write; keep the rest for writable()."""
        if self.blocked or self.finished:
            return
        out = self.out
        if self.tls is not None:
            try:
                data = self._encrypt()
            except ssl.SSLError as exc:
                self.discard_output()
                self._lost(f"Write error: SSLError ({exc.reason})")
                self.finish()
                return
        else:
            if out:
                self.flusher.writes += 1      # what is sent now cannot grow any more
                self.lines_out += _lines(out)
            data = b"".join(out) if len(out) != 1 else out[0]
            out.clear()
        unsent = self.unsent
        if unsent:
            # a backlog (a slow peer, often a server link): added to, written from and
            # trimmed in place (a bytearray), not copied whole for every write
            unsent += data
            data = unsent
        if data:
            try:
                sent = os.write(self.fd, data)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                self.discard_output()
                self._lost(f"Write error: {exc.__class__.__name__}")
                self.finish()
                return
            self.bytes_out += sent
            if sent < len(data):
                if unsent:
                    del unsent[:sent]
                    rest = unsent
                else:
                    rest = self.unsent = bytearray(memoryview(data)[sent:])
                self.queued = len(rest)
                self.blocked = True
                self.reactor.watch(self, EPOLLOUT if self.closing else EPOLLIN | EPOLLOUT)
                if self.closing:
                    self.reactor.timers.call_later(CLOSE_GRACE_SECONDS, self.finish)
                elif len(rest) > self.sendq:
                    self.protocol.send_queue_exceeded()
                return
            if unsent:
                self.unsent = b""
        self.queued = 0
        if self.closing:
            self.finish()

    def writable(self) -> None:
        self.blocked = False
        self.reactor.watch(self, 0 if self.closing else EPOLLIN)
        self.flush()

    def _encrypt(self) -> bytes:
        """TLS: encrypt the queued plaintext (and, when closing, the close alert)."""
        tls = self.tls
        out = self.out
        if not self.handshaking:
            if out:
                self.flusher.writes += 1
                self.lines_out += _lines(out)
                tls.write(b"".join(out))
                out.clear()
            if self.closing and not self.dead:
                try:
                    tls.unwrap()          # queues close_notify; the peer's is not awaited
                except ssl.SSLError:
                    pass
                self.dead = True          # nothing can be written after the alert
        return self.tls_out.read()

    # -- input ------------------------------------------------------------------------

    def readable(self) -> None:
        try:
            data = self.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(f"Read error: {exc.__class__.__name__}")
            return
        if not data:
            self._lost("Remote host closed the connection")
            return
        self.bytes_in += len(data)
        if self.tls is not None:
            data = self._decrypt(data)
            if not data:
                return
        self.protocol.data_received(data)

    def _handshake(self) -> bool:
        try:
            self.tls.do_handshake()
        except ssl.SSLWantReadError:
            self.flusher.mark(self)       # our part of the handshake goes out
            return False
        except (ssl.SSLError, ssl.CertificateError, OSError) as exc:
            self.discard_output()
            self._lost(f"TLS handshake failed: {getattr(exc, 'reason', None) or exc}")
            return False
        self.handshaking = False
        self.flusher.mark(self)           # what the protocol wrote meanwhile goes out
        if self.on_ready is not None:
            on_ready, self.on_ready = self.on_ready, None
            on_ready(self)
        return True

    def _decrypt(self, data: bytes) -> bytes:
        self.tls_in.write(data)
        if self.handshaking and not self._handshake():
            return b""
        tls = self.tls
        chunks = []
        while not self.closing:
            try:
                chunk = tls.read(READ_SIZE)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                chunk = b""
            except ssl.SSLError as exc:
                self._lost(f"Read error: SSLError ({exc.reason})")
                return b""
            if not chunk:                  # the peer's close alert
                if chunks:
                    self.protocol.data_received(b"".join(chunks))
                self._lost("Remote host closed the connection")
                return b""
            chunks.append(chunk)
        if self.tls_out.pending:
            self.flusher.mark(self)        # (a TLS 1.3 ticket or key update to send)
        return b"".join(chunks) if len(chunks) != 1 else chunks[0]

    # -- closing ----------------------------------------------------------------------

    def fail(self, reason: str) -> None:
        """Drop the connection now, discarding its output; the protocol hears `reason`."""
        self.discard_output()
        self._lost(reason)

    def _lost(self, reason: str) -> None:
        if not self.closing:
            self.protocol.connection_lost(reason)
        self.close()

    def close(self) -> None:
        """Stop reading; flush what is queued (bounded by CLOSE_GRACE_SECONDS), then close."""
        if self.closing or self.finished:
            return
        self.closing = True
        self.reactor.watch(self, EPOLLOUT if self.blocked else 0)
        if self.blocked:
            self.reactor.timers.call_later(CLOSE_GRACE_SECONDS, self.finish)
        self.flusher.mark(self)

    def finish(self) -> None:
        """Close the socket now; the protocol hears `connection_closed()` last."""
        if self.finished:
            return
        self.finished = True
        self.closing = True
        self.discard_output()
        self.reactor.remove(self)
        try:
            self.sock.close()
        except OSError:
            pass
        try:
            self.protocol.connection_closed()
        except Exception:
            log.exception("closing connection %s:%s failed", self.ip, self.port)
        if self.closed_event is not None:
            self.closed_event.set()
