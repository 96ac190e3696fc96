#!/usr/bin/env python3
"""Benchmark load generator for any IRC server on a loopback address.

Modes (see tools/README.rst):

  fanout    one sender, a channel of N receiving members; deliveries/s with at
            most --window messages in flight, counted by the slowest receiver
            (C engine by default: tools/fangen.c, compiled into /tmp on first use).
  latency   one sender at --rate messages/s to N members; p50/p99 delivery latency
            (C engine by default: tools/latgen.c, compiled into /tmp on first use).
  register  --clients clients registering, --concurrency of them at once.
  memory    --clients idle clients each in --per-client of --channels channels;
            server RSS growth per client (needs --pid of the server).
  chat      --clients in two-person channels, open-loop rate stepped up until
            p99 > --p99-ms or a loss; the highest rate held (C engine by default:
            tools/chatgen.c, compiled into /tmp on first use).
  all       all of the above but chat (memory only with --pid), memory first.

The generator is a single thread on raw non-blocking sockets and one epoll
object.  In fan-out a receiver does not parse lines: every line has the same
length, so it counts the lines each read completes and checks their alignment in
O(1) (a slow path handles anything else, e.g. a server PING).  Latency and chat
parse every line.  Every phase is bounded by a stall timeout
(--timeout: the phase fails when no progress is made for that many seconds).

With --tls every client speaks TLS (certificate not checked): the handshake is
driven from the same epoll loop, and each readable event decrypts every record
the TLS object can (until SSLWantReadError) before the data is used.  The C
engines cannot; chat --tls needs --engine python, and fanout --tls and
latency --tls use it.

Human-readable lines go to stdout as the run goes; the last line of stdout is
one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import gc
import ipaddress
import json
import os
import random
import resource
import select
import socket
import ssl
import struct
import subprocess
import sys
import time

RECV_BUF = 256 * 1024
# One receive buffer shared by every socket (single thread).  recv_into() a
# preallocated buffer: sock.recv(256 KiB) would allocate (mmap) and free 256 KiB
# per call, which costs ~15 us against ~3 us here.
RBUF = bytearray(RECV_BUF)
RVIEW = memoryview(RBUF)
MAX_EVENTS = 4096

# A non-blocking socket (plain or TLS) that cannot go on now: wait for its event.
WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
SSL_WANT = (ssl.SSLWantReadError, ssl.SSLWantWriteError)
TLS_DRAINED, TLS_FULL, TLS_EOF = 0, 1, 2

EPOLLIN = select.EPOLLIN
EPOLLOUT = select.EPOLLOUT
READ_MASK = select.EPOLLIN | select.EPOLLERR | select.EPOLLHUP | getattr(select, "EPOLLRDHUP", 0)

# Targets from the project's Performance requirements (reported, never enforced).
TARGETS = {
    "fanout_1000": ("deliveries_per_s", ">=", 1_000_000),
    "latency": ("p99_ms", "<", 10.0),
    "register": ("registrations_per_s", ">=", 3000),
    "memory": ("kib_per_client", "<=", 15.0),
    "chat": ("held_msgs_per_s", ">=", 100_000),
}

perf_ns = time.perf_counter_ns
wall_ns = time.time_ns          # latency stamps: same clock as kernel receive timestamps
now = time.perf_counter

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)    # Linux value
TIMESPEC = struct.Struct("@qq")
CMSG_TS_SPACE = socket.CMSG_SPACE(TIMESPEC.size)


class BenchError(Exception):
    """A benchmark could not be run or completed (clear message for the user)."""


def say(msg: str) -> None:
    print(msg, flush=True)


def b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    if n == 0:
        return "0"
    out = []
    while n:
        n, r = divmod(n, 36)
        out.append(digits[r])
    return "".join(reversed(out))


def ping_reply(line) -> bytes | None:
    """The PONG answering a server PING line (with or without a :prefix), else None."""
    line = bytes(line).rstrip(b"\r")
    if line.startswith(b":"):
        sp = line.find(b" ")
        if sp < 0:
            return None
        line = line[sp + 1:]
    if line[:5].upper() in (b"PING ", b"PING"):
        return b"PONG" + line[4:] + b"\r\n"
    return None


def percentile(sorted_vals: list, p: float) -> float:
    """Nearest-rank percentile of an already sorted list (p in 0..100)."""
    if not sorted_vals:
        return float("nan")
    k = max(0, min(len(sorted_vals) - 1, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            return soft
    return hard


def read_rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError as e:
        raise BenchError(f"cannot read /proc/{pid}/status: {e}") from None
    raise BenchError(f"no VmRSS in /proc/{pid}/status")


def proc_cpu_s(pid: int | None) -> float | None:
    """CPU seconds (user+system) used so far by pid, or by this process if None."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# More server PIDs (--pids: the other servers of a linked network) whose CPU share
# every CpuMeter reports as "servers_cpu".
OTHER_PIDS: list[int] = []


def runq_wait_s(pid: int) -> float | None:
    """Seconds pid's main thread has spent runnable but waiting for a CPU
    (/proc/PID/schedstat, second field), or None if unknown."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


class CpuMeter:
    """CPU share used by the generator and (with a pid) the server over a window,
    and how long each waited for a CPU (ms per second: other programs on its core);
    with --pids also each other server's share and wait."""

    def __init__(self, server_pid: int | None):
        self.pid = server_pid
        self.t0 = now()
        self.g0 = proc_cpu_s(None)
        self.gw0 = runq_wait_s(os.getpid())
        self.s0 = proc_cpu_s(server_pid) if server_pid else None
        self.sw0 = runq_wait_s(server_pid) if server_pid else None
        self.others = {p: (proc_cpu_s(p), runq_wait_s(p)) for p in OTHER_PIDS}

    def result(self) -> dict:
        dt = max(now() - self.t0, 1e-9)
        out = {"generator_cpu": round((proc_cpu_s(None) - self.g0) / dt, 3)}
        w1 = runq_wait_s(os.getpid())
        if self.gw0 is not None and w1 is not None:
            out["generator_runq_wait_ms_per_s"] = round((w1 - self.gw0) / dt * 1000, 1)
        if self.pid and self.s0 is not None:
            s1 = proc_cpu_s(self.pid)
            if s1 is not None:
                out["server_cpu"] = round((s1 - self.s0) / dt, 3)
            w1 = runq_wait_s(self.pid)
            if self.sw0 is not None and w1 is not None:
                out["server_runq_wait_ms_per_s"] = round((w1 - self.sw0) / dt * 1000, 1)
        if self.others:
            shares, waits = {}, {}
            for p, (c0, w0) in self.others.items():
                c1, w1 = proc_cpu_s(p), runq_wait_s(p)
                if c0 is not None and c1 is not None:
                    shares[str(p)] = round((c1 - c0) / dt, 3)
                if w0 is not None and w1 is not None:
                    waits[str(p)] = round((w1 - w0) / dt * 1000, 1)
            out["servers_cpu"] = shares
            out["servers_runq_wait_ms_per_s"] = waits
        return out


def wait_server_idle(pid: int | None, limit_s: float = 15.0) -> None:
    """Let the server finish the previous benchmark's cleanup (e.g. 10,000 quits)
    before the next one starts: wait until it uses under 10% of a core (bounded)."""
    if not pid:
        return
    end = now() + limit_s
    while now() < end:
        before = proc_cpu_s(pid)
        time.sleep(0.5)
        after = proc_cpu_s(pid)
        if before is None or after is None or (after - before) / 0.5 < 0.10:
            return
    say(f"  note: the server was still busy after {limit_s:g}s; measuring anyway")


def listen_overflows() -> int | None:
    """TcpExt ListenOverflows of this network namespace (SYNs dropped because a
    listener's accept backlog was full), or None if unknown."""
    try:
        with open("/proc/net/netstat") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            d = dict(zip(names.split()[1:], values.split()[1:]))
            if "ListenOverflows" in d:
                return int(d["ListenOverflows"])
    return None


def warn_generator_bound(cpu: dict) -> None:
    if cpu.get("generator_cpu", 0) > 0.9:
        say(f"  WARNING: the generator used {cpu['generator_cpu']:.0%} of a CPU: "
            f"this figure may be limited by the generator, not the server")


# --------------------------------------------------------------------------- network


def tls_context() -> ssl.SSLContext:
    """Client context for --tls: any certificate (benchmark servers are self-signed)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def tls_fill(recv_into, start: int = 0) -> tuple[int, int]:
    """Decrypt from a non-blocking SSLSocket into RBUF[start:] until the TLS object
    wants more from the socket (SSLWantReadError), the buffer is full, or EOF.

    Returns (bytes now in RBUF from 0, TLS_DRAINED | TLS_FULL | TLS_EOF); on
    TLS_FULL call again after using the data.  After one readable event the TLS
    object may hold more records (SSL_read returns one record at a time) that no
    further epoll event announces, hence the loop.  Other errors propagate.
    """
    n = start
    view = RVIEW
    while n < RECV_BUF:
        try:
            k = recv_into(view[n:])
        except SSL_WANT:
            return n, TLS_DRAINED
        if not k:
            return n, TLS_EOF
        n += k
    return n, TLS_FULL


def tls_reader_for(net, c, take):
    """The readable-event handler of a TLS client: decrypt every record the TLS object
    can now into RBUF and hand each filled part to take(n) (records split lines
    anywhere: the taker keeps the partial line)."""
    recv_into = c.sock.recv_into

    def tls_reader() -> None:
        while True:
            try:
                n, st = tls_fill(recv_into)
            except OSError as e:
                net.fail(c, f"recv failed: {e}")
                return
            if n:
                take(n)
            if st == TLS_DRAINED or c.closed:
                return
            if st == TLS_EOF:
                net.eof(c)
                return

    return tls_reader


class Client:
    __slots__ = (
        "net", "sock", "fd", "nick", "idx", "state", "inbuf", "out", "want_out",
        "on_line", "pending_joins", "t_start", "t_ready", "tail", "last_line", "closed", "port",
        "wpend", "t_tls",
    )

    def __init__(self, net: "Net", sock: socket.socket, nick: str, idx: int, port: int = 0):
        self.net = net
        self.port = port
        self.sock = sock
        self.fd = sock.fileno()
        self.nick = nick
        self.idx = idx
        self.state = "connecting"
        self.inbuf = b""
        self.out = bytearray()
        self.want_out = False
        self.on_line = None          # callable(client, line) for non-PING lines
        self.pending_joins: set = set()
        self.t_start = 0.0
        self.t_ready = 0.0
        self.tail = b""
        self.last_line = b""
        self.closed = False
        self.wpend = 0               # TLS: length of the write that blocked (retried as is)
        self.t_tls = 0.0             # TLS: when the handshake completed


class Net:
    """All client sockets of one benchmark, driven by one epoll object.

    With tls=True every client is an ssl.SSLSocket (no certificate check: the
    benchmark server's certificate is self-signed), non-blocking, whose handshake
    this loop drives (state "handshaking") before NICK/USER go out.
    """

    def __init__(self, host: str, port: int, timeout: float, tls: bool = False):
        self.host = host
        self.port = port
        self.timeout = timeout
        self.addrs: dict[int, tuple] = {}    # port -> (family, sockaddr)
        self.family, self.addr = self.address(port)
        self.ep = select.epoll()
        self.clients: dict[int, Client] = {}
        self.readers: dict[int, object] = {}
        self.progress = 0            # bumped by anything that moves a phase forward
        self.failure: str | None = None
        self.pid: int | None = None      # server pid, for CPU figures
        self.tls: ssl.SSLContext | None = tls_context() if tls else None
        self.tls_handshake_ms: dict = {}     # figures of the last setup() with TLS

    # -- sockets

    def address(self, port: int) -> tuple:
        """(family, sockaddr) of self.host at `port` (resolved once per port)."""
        if port not in self.addrs:
            info = socket.getaddrinfo(self.host, port, 0, socket.SOCK_STREAM)
            self.addrs[port] = (info[0][0], info[0][4])
        return self.addrs[port]

    def connect(self, nick: str, idx: int, port: int | None = None) -> Client:
        """Connect one client to self.port, or to `port` (another server of a network)."""
        port = port or self.port
        family, addr = self.address(port)
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as e:
            raise BenchError(f"cannot create socket number {len(self.clients) + 1}: {e}") from None
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            # Wrapped before connecting: SSLSocket.connect_ex() sets up the TLS
            # object; the handshake starts when the TCP connection is up (EPOLLOUT).
            sock = self.tls.wrap_socket(sock, do_handshake_on_connect=False)
        err = sock.connect_ex(addr)
        if err not in (0, errno.EINPROGRESS, errno.EAGAIN):
            sock.close()
            raise BenchError(f"cannot connect to {self.host}:{port}: {os.strerror(err)}")
        c = Client(self, sock, nick, idx, port)
        c.t_start = now()
        self.clients[c.fd] = c
        c.out += f"NICK {nick}\r\nUSER {nick} 0 * :loadgen\r\n".encode()
        c.want_out = True
        self.ep.register(c.fd, EPOLLIN | EPOLLOUT)
        if self.tls is not None:
            c.state = "handshaking"
            self.readers[c.fd] = lambda c=c: self.handshake(c)
        else:
            c.state = "registering"
            self.readers[c.fd] = lambda c=c: self.read_lines(c)
        return c

    def handshake(self, c: Client) -> None:
        """One step of c's TLS handshake (on any event of its socket)."""
        try:
            c.sock.do_handshake()
        except ssl.SSLWantReadError:
            if c.want_out:
                c.want_out = False
                self.ep.modify(c.fd, EPOLLIN)
            return
        except ssl.SSLWantWriteError:
            if not c.want_out:
                c.want_out = True
                self.ep.modify(c.fd, EPOLLIN | EPOLLOUT)
            return
        except OSError as e:
            if e.errno == errno.ENOTCONN:     # the TCP connection failed (or is not up yet)
                err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if not err:
                    return
                if err == errno.ECONNREFUSED:
                    self.fail(c, f"cannot connect to {self.host}:{c.port}: connection refused "
                                 f"(is the server running?)")
                else:
                    self.fail(c, f"cannot connect to {self.host}:{c.port}: {os.strerror(err)}")
            else:
                self.fail(c, f"TLS handshake failed: {e} (is port {c.port} a TLS listener?)")
            return
        c.t_tls = now()
        c.state = "registering"
        self.readers[c.fd] = lambda c=c: self.read_lines(c)
        if not c.want_out:
            c.want_out = True
            self.ep.modify(c.fd, EPOLLIN | EPOLLOUT)
        self.writable(c)                # NICK/USER
        if not c.closed:
            self.read_lines(c)          # anything already decrypted

    def send(self, c: Client, data: bytes) -> None:
        if c.closed:
            return
        if c.out:
            c.out += data
            return
        try:
            n = c.sock.send(data)
        except WOULD_BLOCK:
            n = 0
            if self.tls is not None:
                c.wpend = len(data)     # OpenSSL wants the same write again
        except OSError as e:
            self.fail(c, f"send failed: {e}")
            return
        if n < len(data):
            c.out += data[n:]
            if not c.want_out:
                c.want_out = True
                self.ep.modify(c.fd, EPOLLIN | EPOLLOUT)

    def writable(self, c: Client) -> None:
        if c.state == "handshaking":
            self.handshake(c)
            return
        if c.out:
            # TLS: a write that blocked is repeated with the same bytes (no partial
            # writes: SSLSocket.send() writes all of it or raises SSLWantWriteError).
            data = c.out if not c.wpend or c.wpend == len(c.out) else c.out[:c.wpend]
            try:
                n = c.sock.send(data)
            except WOULD_BLOCK:
                if self.tls is not None:
                    c.wpend = len(data)
                return
            except OSError as e:
                if e.errno == errno.ECONNREFUSED:
                    self.fail(c, f"cannot connect to {self.host}:{c.port}: connection refused "
                                 f"(is the server running?)")
                else:
                    self.fail(c, f"connect/send failed: {e}")
                return
            c.wpend = 0
            del c.out[:n]
        if not c.out and c.want_out:
            c.want_out = False
            self.ep.modify(c.fd, EPOLLIN)

    def close(self, c: Client) -> None:
        if c.closed:
            return
        c.closed = True
        self.clients.pop(c.fd, None)
        self.readers.pop(c.fd, None)
        try:
            self.ep.unregister(c.fd)
        except OSError:
            pass
        c.sock.close()

    def fail(self, c: Client, why: str) -> None:
        last = c.last_line.decode("utf-8", "replace").strip()
        msg = f"client {c.nick} ({c.state}): {why}"
        if last:
            msg += f"; last line from server: {last!r}"
        if self.failure is None:
            self.failure = msg
        self.close(c)

    def eof(self, c: Client) -> None:
        if c.state == "quitting":
            self.close(c)
            self.progress += 1
            return
        self.fail(c, "server closed the connection")

    # -- readers

    def recv_failed(self, c: Client, e: OSError) -> None:
        if c.state == "quitting":
            self.close(c)
            self.progress += 1
        else:
            self.fail(c, f"recv failed: {e}")

    def recv(self, c: Client) -> bytes | None:
        try:
            n = c.sock.recv_into(RBUF)
        except WOULD_BLOCK:
            return None
        except OSError as e:
            self.recv_failed(c, e)
            return None
        if not n:
            self.eof(c)
            return None
        return bytes(RVIEW[:n])

    def read_into(self, c: Client, call):
        """What `call` (c's recv_into or recvmsg_into, of a shared buffer) returned, or
        None: nothing to read, or the connection failed or ended (and is closed)."""
        try:
            got = call()
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as e:
            self.fail(c, f"recv failed: {e}")
            return None
        if not (got[0] if type(got) is tuple else got):
            self.eof(c)
            return None
        return got

    def read_lines(self, c: Client) -> None:
        """Generic line-mode reader: answers PING, hands other lines to c.on_line."""
        if self.tls is not None:
            # Drain: what the TLS object already decrypted raises no new event.
            chunks = []
            try:
                while True:
                    n, st = tls_fill(c.sock.recv_into)
                    if n:
                        chunks.append(bytes(RVIEW[:n]))
                    if st != TLS_FULL:
                        break
            except OSError as e:
                self.recv_failed(c, e)
                return
            if chunks:
                self.lines(c, b"".join(chunks))
            if st == TLS_EOF and not c.closed:
                self.eof(c)
            return
        data = self.recv(c)
        if data is not None:
            self.lines(c, data)

    def lines(self, c: Client, data: bytes) -> None:
        buf = c.inbuf + data if c.inbuf else data
        lines = buf.split(b"\n")
        c.inbuf = lines.pop()
        handler = c.on_line
        for line in lines:
            if b"PING" in line[:40] and (pong := ping_reply(line)) is not None:
                self.send(c, pong)
            elif handler is not None:
                c.last_line = line
                handler(c, line)
            if c.closed:
                return

    # -- loop

    def poll(self, timeout: float) -> None:
        try:
            events = self.ep.poll(timeout, MAX_EVENTS)
        except InterruptedError:
            return
        clients = self.clients
        readers = self.readers
        for fd, ev in events:
            if ev & EPOLLOUT:
                c = clients.get(fd)
                if c is not None:
                    self.writable(c)
            if ev & READ_MASK:
                r = readers.get(fd)
                if r is not None:
                    r()
        if self.failure is not None:
            raise BenchError(self.failure)

    def wait(self, done, what: str, timeout: float | None = None, step=None) -> None:
        """Poll until done() is true; fail after `timeout` seconds without progress."""
        timeout = self.timeout if timeout is None else timeout
        last = self.progress
        deadline = now() + timeout
        while not done():
            if step is not None:
                step()
            self.poll(0.05)
            if self.progress != last:
                last = self.progress
                deadline = now() + timeout
            elif now() > deadline:
                raise BenchError(f"timed out after {timeout:g}s without progress while {what()}")

    def idle(self, seconds: float) -> None:
        end = now() + seconds
        while True:
            left = end - now()
            if left <= 0:
                return
            self.poll(min(left, 0.2))

    # -- setup and teardown

    def on_setup_line(self, c: Client, line: bytes) -> None:
        """Registration and JOIN handling (line mode)."""
        parts = line.rstrip(b"\r").split(b" ")
        if parts[0].startswith(b":"):
            prefix = parts[0][1:]
            parts = parts[1:]
        else:
            prefix = b""
        if not parts:
            return
        cmd = parts[0]
        if c.state == "registering":
            if cmd == b"001":
                c.state = "joining" if c.pending_joins else "ready"
                c.t_ready = now()
                self.progress += 1
                if c.pending_joins:
                    self.send(c, b"".join(b"JOIN %s\r\n" % ch.encode() for ch in sorted(c.pending_joins)))
            elif cmd in (b"432", b"433", b"436", b"437", b"465", b"463", b"464"):
                self.fail(c, "registration refused")
            elif cmd == b"ERROR":
                self.fail(c, "server sent ERROR")
        elif c.state == "joining":
            if cmd == b"JOIN" and len(parts) > 1:
                if prefix.split(b"!")[0].decode("utf-8", "replace").lower() != c.nick.lower():
                    return
                ch = parts[1].lstrip(b":").decode("utf-8", "replace").lower()
                c.pending_joins.discard(ch)
                if not c.pending_joins:
                    c.state = "ready"
                    c.t_ready = now()
                    self.progress += 1
            elif cmd in (b"403", b"405", b"471", b"473", b"474", b"475", b"476", b"477", b"489"):
                self.fail(c, "JOIN refused")
            elif cmd == b"ERROR":
                self.fail(c, "server sent ERROR")

    def setup(self, nicks: list[str], channels_of, concurrency: int, what: str,
              port_of=None) -> list[Client]:
        """Connect and register clients, `concurrency` at a time; join their channels.

        port_of(i), if given, is the port client i connects to (default self.port).
        Returns when every client has its 001 and the JOIN echo of each channel.
        """
        clients: list[Client] = []
        n = len(nicks)
        state = {"started": 0, "ready": 0}

        def in_progress() -> int:
            return state["started"] - state["ready"]

        def on_line(c: Client, line: bytes) -> None:
            was = c.state
            self.on_setup_line(c, line)
            if c.state == "ready" and was != "ready":
                state["ready"] += 1
                c.on_line = None

        def step() -> None:
            while state["started"] < n and in_progress() < concurrency:
                i = state["started"]
                c = self.connect(nicks[i], i, port_of(i) if port_of else None)
                c.pending_joins = {ch.lower() for ch in channels_of(i)}
                c.on_line = on_line
                clients.append(c)
                state["started"] += 1

        lo0 = listen_overflows()
        self.wait(lambda: state["ready"] >= n,
                  lambda: f"{what}: {state['ready']} of {n} clients ready "
                          f"({in_progress()} registering or joining)",
                  step=step)
        lo1 = listen_overflows()
        if self.tls is not None and clients:
            hs = sorted(c.t_tls - c.t_start for c in clients)
            self.tls_handshake_ms = {
                "tls_handshake_p50_ms": round(percentile(hs, 50) * 1e3, 3),
                "tls_handshake_p99_ms": round(percentile(hs, 99) * 1e3, 3),
                "tls_handshake_max_ms": round(hs[-1] * 1e3, 3),
            }
            say(f"  TLS handshakes (connect to handshake done) ms: p50 "
                f"{self.tls_handshake_ms['tls_handshake_p50_ms']} p99 "
                f"{self.tls_handshake_ms['tls_handshake_p99_ms']} max "
                f"{self.tls_handshake_ms['tls_handshake_max_ms']}")
        if lo0 is not None and lo1 is not None and lo1 > lo0:
            say(f"  WARNING: listen backlogs overflowed {lo1 - lo0} times while connecting "
                f"(dropped SYNs are retried after 1s+): the server's accept backlog is too "
                f"small for --concurrency {concurrency}, or another program on this host "
                f"overflowed its own")
        return clients

    def quit_all(self, timeout: float = 5.0) -> None:
        """Send QUIT on every connection, wait (bounded) for the server to close them."""
        for c in list(self.clients.values()):
            if c.state == "handshaking":
                self.close(c)
                continue
            c.state = "quitting"
            c.on_line = None
            self.readers[c.fd] = lambda c=c: self.read_lines(c)
            self.send(c, b"QUIT :loadgen done\r\n")
        self.failure = None
        end = now() + timeout
        while self.clients and now() < end:
            try:
                self.poll(0.05)
            except BenchError:
                pass
        for c in list(self.clients.values()):
            self.close(c)
        self.ep.close()


# --------------------------------------------------------------------------- benchmarks


class Run:
    """Naming for one generator invocation: nick and channel prefixes never collide."""

    def __init__(self):
        self.rid = b36(random.randrange(36 ** 3, 36 ** 4))[-3:]
        self.tests = 0

    def prefix(self) -> str:
        letter = "abcdefghijklmnopqrstuvwxyz"[self.tests % 26]
        self.tests += 1
        return f"b{self.rid}{letter}"      # nick = prefix + base36 index: <= 9 chars


def payload_pad(size: int, base_len: int) -> bytes:
    return b" " + b"x" * max(0, size - base_len - 1) if size > base_len + 1 else b""


def placement(args) -> tuple[int, list[int]]:
    """(sender port, receiver ports) from --sender-port/--receiver-ports (default --port)."""
    sender_port = getattr(args, "sender_port", None) or args.port
    ports = getattr(args, "receiver_ports", None) or [args.port]
    return sender_port, ports


def placement_info(args) -> dict:
    sender_port, ports = placement(args)
    return {"sender_port": sender_port, "receiver_ports": ports}


def parse_pids(text: str) -> list[int]:
    try:
        pids = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of PIDs: {text!r}") from None
    return pids


def parse_ports(text: str) -> list[int]:
    try:
        ports = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of ports: {text!r}") from None
    if not ports or not all(0 < p < 65536 for p in ports):
        raise argparse.ArgumentTypeError(f"not a comma-separated list of ports: {text!r}")
    return ports


def setup_channel(net: Net, run: Run, members: int, concurrency: int,
                  sender_port: int | None = None, receiver_ports: list[int] | None = None):
    """Connect `members` receivers and one sender and join them to one channel.

    Receiver i connects to receiver_ports[i % len]; the sender to sender_port (both
    default to net.port).  When they are not all on the sender's server (linked
    servers), wait until the sender's server lists every member in NAMES, so the
    first message already goes to every server with members.
    """
    p = run.prefix()
    chan = f"#{p}"
    nicks = [p + b36(i) for i in range(members)] + [p + "_"]
    sender_port = sender_port or net.port
    ports = receiver_ports or [net.port]
    where = "" if set(ports) == {sender_port} else (
        f" (receivers on port{'s' if len(ports) > 1 else ''} {','.join(map(str, ports))}, "
        f"sender on port {sender_port})")
    say(f"  connecting {members} members + 1 sender to {chan}{where} ...")
    t0 = now()
    meter = CpuMeter(net.pid)
    clients = net.setup(nicks, lambda i: [chan], concurrency, f"joining {chan}",
                        port_of=lambda i: sender_port if i == members else ports[i % len(ports)])
    say(f"  {len(clients)} clients registered and joined in {now() - t0:.2f}s (cpu {meter.result()})")
    if where:
        t1 = now()
        wait_names(net, clients[members], chan, members + 1)
        say(f"  the sender's server lists all {members + 1} in NAMES {chan} "
            f"after {now() - t1:.2f}s more")
    return chan, clients[:members], clients[members]


def wait_names(net: Net, c: Client, chan: str, expect: int) -> None:
    """Repeat NAMES chan on c's connection until the reply lists `expect` names."""
    state = {"names": 0, "last": -1, "asked": 0.0, "pending": False}
    target = chan.lower().encode()

    def ask() -> None:
        state["names"] = 0
        state["pending"] = True
        state["asked"] = now()
        net.send(c, b"NAMES %s\r\n" % chan.encode())

    def on_line(_c: Client, line: bytes) -> None:
        parts = line.rstrip(b"\r").split(b" ", 5)
        if len(parts) < 4:
            return
        if parts[1] == b"353" and len(parts) == 6 and parts[4].lower() == target:
            state["names"] += len(parts[5].lstrip(b":").split())
        elif parts[1] == b"366" and parts[3].lower() == target:
            state["pending"] = False
            if state["names"] != state["last"]:
                state["last"] = state["names"]
                net.progress += 1

    def step() -> None:
        if not state["pending"] and state["last"] < expect and now() - state["asked"] > 0.1:
            ask()

    c.on_line = on_line
    ask()
    try:
        net.wait(lambda: state["last"] >= expect,
                 lambda: f"waiting for NAMES {chan} to list {expect} members "
                         f"(last reply listed {state['last']})", step=step)
    finally:
        c.on_line = None


def sync_members(net: Net, chan: str, sender: Client, members: list[Client], marker: bytes,
                 lengths: dict | None = None) -> None:
    """Send a marker PRIVMSG; wait until every member has seen it (everything the
    members received before it — other members' JOINs, NAMES — is then behind them).
    With `lengths`, record there each member's length of the marker line (with its
    \r\n) by fd."""
    seen = {"n": 0}
    pending = set(c.fd for c in members)

    def on_line(c: Client, line: bytes) -> None:
        if marker in line and c.fd in pending:
            pending.discard(c.fd)
            seen["n"] += 1
            net.progress += 1
            c.on_line = None
            if lengths is not None:
                lengths[c.fd] = len(line) + 1

    for c in members:
        c.on_line = on_line
    net.send(sender, b"PRIVMSG %s :%s\r\n" % (chan.encode(), marker))
    net.wait(lambda: not pending, lambda: f"waiting for the sync marker: {seen['n']} of {len(members)} members saw it")


def bench_fanout(args, run: Run, members: int) -> dict:
    c_engine_speaks_plain_tcp(args, "fanout")
    say(f"fanout: {members} members, window {args.window}, duration {args.duration}s"
        + (f", {args.messages} messages" if args.messages else ""))
    net = Net(args.host, args.port, args.timeout, args.tls)
    net.pid = args.pid
    try:
        chan, mem, sender = setup_channel(net, run, members, args.concurrency, *placement(args))
        # Every message line has the same length (fixed-width seq and stamp); the
        # marker is padded to it, so each member learns the length of its lines.
        pad = payload_pad(args.size, 29)
        marker = (b"SYNC-" + chan[1:].encode()).ljust(29, b"-") + pad
        lengths: dict = {}
        sync_members(net, chan, sender, mem, marker, lengths)

        if (args.engine or ("python" if args.tls else "c")) == "c":
            r, cpu = fanout_c(args, net, chan, sender, mem, lengths, pad)
        else:
            r, cpu = fanout_python(args, net, chan, sender, mem, lengths, pad)
        sent, total, rate = r["messages_sent"], r["deliveries"], r["deliveries_per_s"]
        res = {
            "members": members,
            **placement_info(args),
            "window": args.window,
            "engine": r["engine"],
            "messages_sent": sent,
            "deliveries": total,
            "elapsed_s": r["elapsed_s"],
            "deliveries_per_s": round(rate),
            "deliveries_per_s_overall": r["deliveries_per_s_overall"],
            "messages_per_s": round(rate / members, 1),
        }
        res.update(cpu)
        res.update(net.tls_handshake_ms)
        warn_generator_bound(cpu)
        say(f"  sent {sent} messages, {total} deliveries in {r['elapsed_s']:.2f}s ({r['engine']} engine)")
        say(f"  => {rate:,.0f} deliveries/s ({rate / members:,.0f} messages/s); cpu {cpu}")
        return res
    finally:
        net.quit_all()


def fanout_python(args, net: Net, chan: str, sender: Client, mem: list, lengths: dict,
                  pad: bytes) -> tuple[dict, dict]:
    """The fan-out run in this process (any transport, TLS included): the figures and
    the CPU shares over the sending time."""
    members = len(mem)
    # Switch members to the counting reader.
    counts = [0] * members
    for i, c in enumerate(mem):
        # Anything already buffered after the marker was consumed in line mode;
        # a partial line left in inbuf is counted when its newline arrives.
        c.tail = c.inbuf
        c.inbuf = b""
        net.readers[c.fd] = make_count_reader(net, c, counts, i, lengths[c.fd])

    head = b"PRIVMSG " + chan.encode() + b" :"
    window = args.window
    limit = args.messages or 0
    sent = 0
    cur_min = 0
    slow = 0
    meter = CpuMeter(args.pid)
    t0 = now()
    t_end = t0 + args.duration
    t_warm = t0 + min(args.warmup, args.duration / 2)
    warm_recv = None
    t_warm_actual = t0
    poll = net.poll
    send = net.send
    last_progress_t = t0
    last_mark = (0, 0)
    while True:
        t = now()
        if warm_recv is None and t >= t_warm:
            warm_recv = sum(counts)
            t_warm_actual = t
        if t >= t_end or (limit and sent >= limit):
            break
        if sent - cur_min >= window and counts[slow] > cur_min:
            cur_min = min(counts)
            slow = counts.index(cur_min)
        room = window - (sent - cur_min)
        if limit:
            room = min(room, limit - sent)
        if room > 0 and not sender.out:
            ts = perf_ns()
            send(sender, b"".join([b"%s%09d %019d%s\r\n" % (head, s, ts, pad)
                                   for s in range(sent, sent + room)]))
            sent += room
            poll(0)
        else:
            poll(0.01)
        if (sent, cur_min) != last_mark:
            last_mark = (sent, cur_min)
            last_progress_t = t
        elif t - last_progress_t > args.timeout:
            raise BenchError(f"fanout: the slowest member received nothing for {args.timeout:g}s "
                             f"(sent {sent}, slowest member has {cur_min})")
    t_stop = now()
    stop_recv = sum(counts)
    cpu = meter.result()
    # Drain: wait until every member has every message (bounded).
    net.wait(lambda: min(counts) >= sent,
             lambda: f"draining: slowest member has {min(counts)} of {sent} messages",
             timeout=min(args.timeout, 10.0))
    t_drain = now()
    total = sum(counts)
    if warm_recv is None or t_stop - t_warm_actual < 0.5:
        rate = total / max(t_drain - t0, 1e-9)
    else:
        rate = (stop_recv - warm_recv) / (t_stop - t_warm_actual)
    return {"engine": "python", "messages_sent": sent, "deliveries": total,
            "elapsed_s": round(t_drain - t0, 3), "deliveries_per_s": rate,
            "deliveries_per_s_overall": round(total / max(t_drain - t0, 1e-9))}, cpu


def fanout_c(args, net: Net, chan: str, sender: Client, mem: list, lengths: dict,
             pad: bytes) -> tuple[dict, dict]:
    """Hand the synced sockets to tools/fangen.c, which sends and counts, and return its
    figures with the CPU shares read between its START and STOP lines."""
    for c in mem:
        if c.inbuf:
            raise BenchError("fanout: a member had a partial line buffered after the sync marker; "
                             "use --engine python")
    exe = c_engine("fangen", "fanout")
    drain = min(args.timeout, 10.0)
    argv = [exe, str(len(mem)), str(args.window), repr(float(args.duration)), repr(float(args.warmup)),
            str(args.messages or 0), repr(float(args.timeout)), repr(drain), str(len(pad)), chan]
    spec = f"{sender.fd}\n" + "".join(f"{c.fd} {lengths[c.fd]}\n" for c in mem)
    limit = args.duration + args.timeout + drain + 30
    meter = cpu = done = None
    for line in engine_lines("fanout", argv, spec, [sender.fd] + [c.fd for c in mem], limit):
        if line == "START":
            meter = CpuMeter(args.pid)
        elif line == "STOP" and meter is not None:
            cpu = meter.result()
        elif line.startswith("DONE "):
            done = json.loads(line[5:])
    if done is None or cpu is None:
        raise BenchError("fanout: the C engine printed no result")
    if "failure" in done:
        raise BenchError(f"fanout: {done['failure']}")
    # The generator's CPU is the engine's own (this process only waited).
    cpu["generator_cpu"] = done.pop("generator_cpu")
    cpu["generator_runq_wait_ms_per_s"] = done.pop("generator_runq_wait_ms_per_s")
    return {"engine": "c", **done}, cpu


def make_count_reader(net: Net, c: Client, counts: list, i: int, size: int):
    """Throughput-mode reader: counts lines without scanning the data.

    Every message line is `size` bytes (with its \r\n), so a chunk completes
    (len(tail) + n) // size lines.  The fast path only checks, in O(1), that the
    bytes where the first and the last of those lines should end are b"\n" and
    that the next line starts with b":"; it keeps the partial last line as
    c.tail.  Anything else (a server PING, any other line: the alignment breaks)
    takes the slow path: lines are split, PINGs answered, and only PRIVMSG lines
    counted.  (Scanning every chunk with count(b"\n") and find(b"PING") cost half
    of the generator's CPU with 100 members.)
    """
    recv_into = c.sock.recv_into
    buf = RBUF

    def fill() -> int:
        return recv_into(buf)

    def slow(data) -> None:
        lines = data.split(b"\n")
        c.tail = bytes(lines.pop())
        k = 0
        for line in lines:
            if b" PRIVMSG " in line:
                k += 1
            elif (pong := ping_reply(line)) is not None:
                net.send(c, pong)
            else:
                c.last_line = bytes(line)
        counts[i] += k

    def chunk(n: int) -> None:
        """Count the lines that buf[:n] (after c.tail) completes."""
        tail = c.tail
        rem = len(tail)
        k = (rem + n) // size
        if k:
            first = size - rem - 1          # where the first completed line's \n is
            last = first + (k - 1) * size
            if (buf[first] == 10 and buf[last] == 10 and (last + 1 == n or buf[last + 1] == 58)
                    and (rem or buf[0] == 58) and (not rem or tail[0] == 58)):
                counts[i] += k
                c.tail = bytes(buf[last + 1:n]) if last + 1 < n else b""
                return
        elif buf.find(b"\n", 0, n) < 0:   # no line completed (short chunk)
            c.tail = tail + buf[:n]
            return
        slow(tail + buf[:n])

    read_into = net.read_into

    def reader() -> None:
        n = read_into(c, fill)
        if n:
            chunk(n)

    # (chunk() keeps a line that a TLS record split in c.tail)
    return tls_reader_for(net, c, chunk) if net.tls is not None else reader


def bench_latency(args, run: Run) -> dict:
    c_engine_speaks_plain_tcp(args, "latency")
    members = args.members
    rate = args.rate
    say(f"latency: {members} members, {rate} messages/s, duration {args.duration}s")
    net = Net(args.host, args.port, args.timeout, args.tls)
    net.pid = args.pid
    try:
        chan, mem, sender = setup_channel(net, run, members, args.concurrency, *placement(args))
        marker = b"SYNC-" + chan[1:].encode()
        sync_members(net, chan, sender, mem, marker)
        if (args.engine or ("python" if args.tls else "c")) == "c":
            res = latency_c(args, net, chan, sender, mem)
        else:
            res = latency_python(args, net, chan, sender, mem)
        say(f"  {res['deliveries']} deliveries of {res['messages_sent']} messages; latency ms "
            f"p50 {res['p50_ms']} p90 {res['p90_ms']} p99 {res['p99_ms']} p99.9 {res['p999_ms']} "
            f"max {res['max_ms']} ({res['receive_stamp']}; as read by the generator: p50 "
            f"{res['user_p50_ms']} p99 {res['user_p99_ms']}); cpu {res['cpu']}")
        warn_generator_bound(res["cpu"])
        res.update(res.pop("cpu"))
        res.update(net.tls_handshake_ms)
        return res
    finally:
        net.quit_all()


def latency_c(args, net: Net, chan: str, sender: Client, mem: list) -> dict:
    """Hand the synced sockets to tools/latgen.c, which sends on a timer and reads
    every member (kernel receive stamps), and return its figures."""
    total_msgs = args.messages or int(round(args.duration * args.rate))
    exe = c_engine("latgen", "latency")
    pad = len(payload_pad(args.size, 22))
    argv = [exe, str(len(mem)), repr(float(args.rate)), str(total_msgs), repr(min(args.timeout, 10.0)),
            str(pad), chan]
    spec = f"{sender.fd}\n" + "".join(f"{c.fd}\n" for c in mem)
    meter = CpuMeter(args.pid)
    limit = total_msgs / args.rate + min(args.timeout, 10.0) + 30
    done = [line for line in engine_lines("latency", argv, spec, [sender.fd] + [c.fd for c in mem], limit)
            if line.startswith("DONE ")]
    cpu = meter.result()
    if not done:
        raise BenchError("latency: the C engine printed no result")
    r = json.loads(done[-1][5:])
    if "failure" in r:
        raise BenchError(f"latency: {r['failure']}")
    if r["lost"]:
        say(f"  WARNING: {r['lost']} deliveries missing after the drain")
    if r["timer_behind"]:
        say(f"  note: the C engine sent {r['timer_behind']} messages late (a timer tick was missed)")
    cpu["generator_cpu"] = r.pop("generator_cpu")
    cpu["generator_runq_wait_ms_per_s"] = r.pop("generator_runq_wait_ms_per_s")
    return {"members": len(mem), **placement_info(args), "rate": args.rate, **r,
            "receive_stamp": "kernel SO_TIMESTAMPNS", "cpu": cpu}


def latency_python(args, net: Net, chan: str, sender: Client, mem: list) -> dict:
    """The latency run in this process (any transport, TLS included)."""
    members = len(mem)
    rate = args.rate
    lat: list[int] = []
    ulat: list[int] = []
    got = [0] * members
    bad = {"n": 0}
    for i, c in enumerate(mem):
        net.readers[c.fd] = make_latency_reader(net, c, lat, ulat, got, i, bad)

    pad = payload_pad(args.size, 22)
    head = b"PRIVMSG " + chan.encode() + b" :"
    interval = 1.0 / rate
    total_msgs = args.messages or int(round(args.duration * rate))
    meter = CpuMeter(args.pid)
    t0 = now()
    sent = 0
    while sent < total_msgs:
        t_next = t0 + sent * interval
        t = now()
        if t >= t_next:
            net.send(sender, b"%s%d %d%s\r\n" % (head, sent, wall_ns(), pad))
            sent += 1
            continue
        net.poll(min(t_next - t, 0.05))
    cpu = meter.result()
    expect = sent
    try:
        net.wait(lambda: min(got) >= expect,
                 lambda: f"draining: slowest member has {min(got)} of {expect} messages",
                 timeout=min(args.timeout, 10.0))
    except BenchError as e:
        if net.failure is not None:
            raise
        say(f"  WARNING: {e}")
    kernel_ts = lat != ulat
    lat.sort()
    ulat.sort()
    ms = [v / 1e6 for v in (percentile(lat, 50), percentile(lat, 90), percentile(lat, 99),
                            percentile(lat, 99.9), lat[-1] if lat else float("nan"))]
    return {
        "members": members,
        **placement_info(args),
        "rate": rate,
        "messages_sent": sent,
        "deliveries": len(lat),
        "p50_ms": round(ms[0], 3),
        "p90_ms": round(ms[1], 3),
        "p99_ms": round(ms[2], 3),
        "p999_ms": round(ms[3], 3),
        "max_ms": round(ms[4], 3),
        "mean_ms": round(sum(lat) / len(lat) / 1e6, 3) if lat else None,
        "out_of_order": bad["n"],
        "lost": sent * members - len(lat),
        "receive_stamp": "kernel SO_TIMESTAMPNS" if kernel_ts else "userspace",
        "user_p50_ms": round(percentile(ulat, 50) / 1e6, 3),
        "user_p99_ms": round(percentile(ulat, 99) / 1e6, 3),
        "cpu": cpu,
    }


def make_latency_reader(net: Net, c: Client, lat: list, ulat: list, got: list, i: int, bad: dict):
    """Latency-mode reader: parses each line; latency = receive time - send stamp.

    The receive time is the kernel's timestamp of the data (SO_TIMESTAMPNS), so
    the time the generator itself takes to get round to this socket (up to a few
    ms when 1,000 members' lines arrive at once) is not counted against the
    server.  `ulat` gets the latency as seen when the generator read the data.
    Stamps are CLOCK_REALTIME (time.time_ns), the clock of kernel timestamps.
    """
    recvmsg_into = c.sock.recvmsg_into if net.tls is None else None
    bufs = [RBUF]
    rbuf = RBUF
    append = lat.append
    uappend = ulat.append
    if net.tls is None:
        try:
            c.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        except OSError:
            pass
    unpack = TIMESPEC.unpack

    def take(n: int, tk: int, tu: int) -> None:
        buf = c.inbuf + rbuf[:n] if c.inbuf else bytes(rbuf[:n])
        lines = buf.split(b"\n")
        c.inbuf = lines.pop()
        for line in lines:
            k = line.find(b" PRIVMSG ")
            if k < 0:
                pong = ping_reply(line)
                if pong is not None:
                    net.send(c, pong)
                continue
            k = line.find(b" :", k + 9)
            if k < 0:
                continue
            f = line[k + 2:].split(b" ", 2)
            try:
                seq = int(f[0])
                ts = int(f[1])
            except (ValueError, IndexError):
                continue
            if seq != got[i]:
                bad["n"] += 1
            got[i] += 1
            append(tk - ts)
            uappend(tu - ts)
        net.progress += 1

    read_into = net.read_into

    def fill():
        return recvmsg_into(bufs, CMSG_TS_SPACE)

    def reader() -> None:
        got = read_into(c, fill)
        if got is None:
            return
        n, anc, _, _ = got
        tu = wall_ns()
        tk = tu
        for level, typ, data in anc:
            if level == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS and len(data) >= TIMESPEC.size:
                sec, nsec = unpack(data[:TIMESPEC.size])
                tk = sec * 1_000_000_000 + nsec
        take(n, tk, tu)

    def take_now(n: int) -> None:
        # The kernel's stamp is of the encrypted bytes and recvmsg() is not allowed
        # on an SSLSocket: TLS latency is the time the generator read the line.
        tu = wall_ns()
        take(n, tu, tu)

    return tls_reader_for(net, c, take_now) if net.tls is not None else reader


def bench_register(args, run: Run) -> dict:
    n = args.clients
    say(f"register: {n} clients, {args.concurrency} at once")
    net = Net(args.host, args.port, args.timeout, args.tls)
    net.pid = args.pid
    try:
        p = run.prefix()
        nicks = [p + b36(i) for i in range(n)]
        meter = CpuMeter(args.pid)
        t0 = now()
        clients = net.setup(nicks, lambda i: [], args.concurrency, "registering")
        t1 = max(c.t_ready for c in clients)
        cpu = meter.result()
        per = sorted(c.t_ready - c.t_start for c in clients)
        rate = n / (t1 - t0)
        res = {
            "clients": n,
            "concurrency": args.concurrency,
            "elapsed_s": round(t1 - t0, 3),
            "registrations_per_s": round(rate, 1),
            "reg_p50_ms": round(percentile(per, 50) * 1e3, 3),
            "reg_p99_ms": round(percentile(per, 99) * 1e3, 3),
        }
        res.update(cpu)
        res.update(net.tls_handshake_ms)
        warn_generator_bound(cpu)
        say(f"  {n} registrations in {t1 - t0:.3f}s => {rate:,.0f}/s; "
            f"per-client p50 {res['reg_p50_ms']}ms p99 {res['reg_p99_ms']}ms; cpu {cpu}")
        return res
    finally:
        net.quit_all()


def bench_memory(args, run: Run) -> dict:
    if not args.pid:
        raise BenchError("memory: --pid PID of the server is required")
    n, nch, per = args.clients, args.channels, args.per_client
    if per > nch:
        raise BenchError("memory: --per-client cannot exceed --channels")
    say(f"memory: {n} clients, each in {per} of {nch} channels, server pid {args.pid}")
    net = Net(args.host, args.port, args.timeout, args.tls)
    net.pid = args.pid
    try:
        p = run.prefix()
        nicks = [p + b36(i) for i in range(n)]
        chans = [f"#{p}{b36(k)}" for k in range(nch)]
        rss0 = read_rss_kib(args.pid)
        say(f"  server VmRSS before: {rss0} KiB")
        t0 = now()
        meter = CpuMeter(args.pid)
        net.setup(nicks, lambda i: [chans[(per * i + k) % nch] for k in range(per)],
                  args.concurrency, "connecting and joining")
        setup_s = now() - t0
        cpu = meter.result()
        say(f"  {n} clients registered and joined in {setup_s:.2f}s (cpu {cpu}); idling {args.settle}s")
        net.idle(args.settle)
        rss1 = read_rss_kib(args.pid)
        kib = (rss1 - rss0) / n
        say(f"  server VmRSS after: {rss1} KiB => {kib:.2f} KiB per client")
        net.quit_all(timeout=10.0)
        time.sleep(1.0)
        rss2 = read_rss_kib(args.pid)
        say(f"  server VmRSS 1s after all clients quit: {rss2} KiB")
        return {
            "clients": n,
            "channels": nch,
            "per_client": per,
            "rss_before_kib": rss0,
            "rss_after_kib": rss1,
            "rss_after_quit_kib": rss2,
            "kib_per_client": round(kib, 2),
            "setup_s": round(setup_s, 3),
            "setup_cpu": cpu,
            **net.tls_handshake_ms,
        }
    finally:
        net.quit_all(timeout=10.0)


# --------------------------------------------------------------------------- chat


class Chat:
    """State of the chat benchmark: clients 2k and 2k+1 share channel k.

    Every message is ``PRIVMSG #chan :<seq, 9 digits> <t_ns, 19 digits> xxx...``,
    so every line a receiver gets from its partner has the same length; the
    receiver learns that length and the offset of the text from the sync marker
    (padded to the same length) and then only slices and int()s fixed fields.
    """

    GROUPS = 8          # sub-ticks per tick: client i sends in sub-tick i % GROUPS

    def __init__(self, net: Net, args, clients: list[Client], chans: list[str], prefix: str):
        self.net = net
        self.args = args
        self.clients = clients
        n = self.n = len(clients)
        pad = payload_pad(args.size, 29)
        self.marker = (b"SYNC-" + prefix.encode()).ljust(29, b"-") + pad
        self.heads = [b"PRIVMSG " + chans[i // 2].encode() + b" :%09d %d" + pad + b"\r\n"
                      for i in range(n)]
        self.seq = [0] * n              # next sequence number of sender i
        self.got = [0] * n              # messages receiver i got from its partner
        self.exp = [0] * n              # next sequence number receiver i expects
        self.linelen = [0] * n          # length of a message line at receiver i (with \r)
        self.offset = [0] * n           # offset of the text in such a line
        self.dups = 0                   # lines whose seq was below the expected one
        self.gaps = 0                   # lines whose seq jumped over expected ones
        self.odd = 0                    # other lines that were not PING
        self.lat: list[int] = []        # latencies (ns) of messages sent after warm-up
        self.warm_ns = 0
        self.stamp = args.stamp
        golden = 0.6180339887498949
        self.phase = [(i * golden) % 1.0 for i in range(n)]
        self.groups = [list(range(g, n, self.GROUPS)) for g in range(self.GROUPS)]

    # -- setup

    def sync(self) -> None:
        """Every client sends the marker; wait until every client saw its partner's,
        and learn each receiver's line length and text offset from it."""
        net, marker = self.net, self.marker
        pending = set(range(self.n))

        def on_line(c: Client, line: bytes) -> None:
            k = line.find(b" :" + marker)
            if k >= 0 and c.idx in pending:
                pending.discard(c.idx)
                self.linelen[c.idx] = len(line)
                self.offset[c.idx] = k + 2
                net.progress += 1
                c.on_line = None

        for c in self.clients:
            c.on_line = on_line
        for i, c in enumerate(self.clients):
            net.send(c, self.heads[i].split(b" :")[0] + b" :" + marker + b"\r\n")
        net.wait(lambda: not pending,
                 lambda: f"waiting for the sync markers: {self.n - len(pending)} of {self.n} seen")
        for c in self.clients:
            if c.inbuf:         # a partial line after the marker: cannot happen, nobody sends yet
                c.tail = c.inbuf
            c.inbuf = b""
            net.readers[c.fd] = self.make_reader(c)

    # -- receiving

    def slow_line(self, c: Client, line) -> None:
        pong = ping_reply(line)
        if pong is not None:
            self.net.send(c, pong)
        else:
            self.odd += 1
            c.last_line = bytes(line)

    def make_reader(self, c: Client):
        """A lean reader: one recv_into the shared buffer per event, split into
        lines, and for each message line two fixed-position int() (seq, stamp)."""
        net = self.net
        i = c.idx
        got, exp = self.got, self.exp
        size = self.linelen[i]
        o1 = self.offset[i]
        o2, o3, o4 = o1 + 9, o1 + 10, o1 + 29
        buf = RBUF
        slow = self.slow_line
        kernel = self.stamp == "kernel"
        if kernel:
            try:
                c.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            except OSError:
                kernel = False
        recvmsg_into = c.sock.recvmsg_into
        recv_into = c.sock.recv_into
        bufs = [RBUF]
        unpack = TIMESPEC.unpack
        chat = self

        def take(n: int, t: int) -> None:
            lines = (c.tail + buf[:n] if c.tail else buf[:n]).split(b"\n")
            c.tail = lines.pop()
            e = exp[i]
            k = 0
            warm = chat.warm_ns
            lat = chat.lat
            for line in lines:
                if len(line) == size:
                    try:
                        seq = int(line[o1:o2])
                        ts = int(line[o3:o4])
                    except ValueError:
                        slow(c, line)
                        continue
                    if seq != e:
                        if seq < e:
                            chat.dups += 1
                        else:
                            chat.gaps += 1
                    e = seq + 1
                    k += 1
                    if ts >= warm:
                        lat.append(t - ts)
                else:
                    slow(c, line)
            exp[i] = e
            got[i] += k
            net.progress += 1

        read_into = net.read_into

        def fill():
            return recvmsg_into(bufs, CMSG_TS_SPACE) if kernel else recv_into(buf)

        def reader() -> None:
            got = read_into(c, fill)
            if got is None:
                return
            n, anc = (got[0], got[1]) if kernel else (got, None)
            t = wall_ns()
            if kernel and anc:
                sec, nsec = unpack(anc[0][2][:16])
                t = sec * 1_000_000_000 + nsec
            take(n, t)

        if net.tls is not None:
            return tls_reader_for(net, c, lambda n: take(n, wall_ns()))
        return reader

    # -- the C engine

    def run_c(self):
        """Hand the synced sockets to tools/chatgen.c (compiled on first use) and
        yield its per-step results; the sockets come back to this process after."""
        args = self.args
        exe = c_engine("chatgen", "chat")
        spec = "".join(f"{c.fd} {self.linelen[i]} {self.offset[i]} {self.heads[i].split(b' ')[1].decode()}\n"
                       for i, c in enumerate(self.clients))
        pad = len(payload_pad(args.size, 29))
        argv = [exe, str(self.n), repr(args.tick_ms), repr(args.step_seconds), repr(args.warmup),
                repr(args.p99_ms), repr(args.drain), repr(float(args.start)), repr(float(args.step)),
                repr(float(args.factor or 0)), repr(float(args.max_rate)), str(args.pid or 0),
                "1" if args.stamp == "kernel" else "0", str(pad)]
        steps = 1
        r = float(args.start)
        while r < args.max_rate and steps < 10000:
            r = r * args.factor if args.factor and args.factor > 1 else r + max(args.step, 1)
            steps += 1
        limit = steps * (args.step_seconds + args.drain + 6) + 10
        for line in engine_lines("chat", argv, spec, [c.fd for c in self.clients], limit):
            if line.startswith("STEP "):
                yield json.loads(line[5:])

    # -- one step

    def step(self, rate: float) -> dict:
        """Offer `rate` messages/s (all clients together) for --step-seconds, then
        drain (bounded); figures exclude the first --warmup seconds."""
        args, net, n = self.args, self.net, self.n
        dur = args.step_seconds
        warm = min(args.warmup, dur / 2)
        rpc = rate / n
        tick = args.tick_ms / 1000.0
        sub = tick / self.GROUPS
        groups, phase, heads, seq, clients = self.groups, self.phase, self.heads, self.seq, self.clients
        step_sent = [0] * n
        self.lat = []
        sent0 = sum(seq)
        got0 = sum(self.got)
        dups0, gaps0 = self.dups, self.gaps
        poll, send = net.poll, net.send
        tls = net.tls is not None       # net.send(): the TLS retry rules
        late_total = 0.0
        late_max = 0.0
        behind = 0
        ticks = 0
        t0 = now()
        self.warm_ns = wall_ns() + int(warm * 1e9)
        t_warm = t0 + warm
        t_end = t0 + dur
        meter = None
        sent_w = got_w = 0
        s = 0
        failure = None
        gc_was = gc.isenabled()
        gc.disable()        # a collection would stall every socket at once
        try:
            while True:
                t_s = t0 + s * sub
                if t_s >= t_end:
                    break
                t = now()
                if t < t_s:
                    poll(t_s - t)
                    continue
                if meter is None and t >= t_warm:
                    meter = CpuMeter(args.pid)
                    t_warm = t
                    sent_w, got_w = sum(seq), sum(self.got)
                late = t - t_s
                late_total += late
                if late > late_max:
                    late_max = late
                if late > tick:
                    behind += 1
                ticks += 1
                el = t - t0
                for i in groups[s % self.GROUPS]:
                    due = int(rpc * el + phase[i]) - step_sent[i]
                    if due > 0:
                        q = seq[i]
                        h = heads[i]
                        ts = wall_ns()
                        if due == 1:
                            data = h % (q, ts)
                        else:
                            data = b"".join([h % (q + j, ts) for j in range(due)])
                        seq[i] = q + due
                        step_sent[i] += due
                        c = clients[i]
                        if c.out or c.closed or tls:
                            send(c, data)
                            continue
                        try:                # net.send() inlined: the common case
                            k = c.sock.send(data)
                        except (BlockingIOError, InterruptedError):
                            k = 0
                        except OSError:
                            send(c, data)   # fails the client with the error
                            continue
                        if k < len(data):
                            send(c, data[k:])
                s += 1
                poll(0)
            t_stop = now()
            cpu = meter.result() if meter else CpuMeter(args.pid).result()
            sent_end, got_end = sum(seq), sum(self.got)
            total = sent_end
            deadline = now() + args.drain
            while sum(self.got) < total and now() < deadline:
                poll(0.05)
        except BenchError as e:
            failure = str(e)
            t_stop = now()
            cpu = meter.result() if meter else {}
            sent_end = got_end = 0
        finally:
            if gc_was:
                gc.enable()
        got_all = sum(self.got)
        window = max(t_stop - t_warm, 1e-9)
        lat = self.lat
        lat.sort()
        ms = [round(v / 1e6, 3) for v in (percentile(lat, 50), percentile(lat, 99),
                                          lat[-1] if lat else float("nan"))]
        sent = sum(seq) - sent0
        lost = sum(seq) - got_all
        res = {
            "rate": round(rate),
            "sent_per_s": round((sent_end - sent_w) / window) if failure is None else None,
            "delivered_per_s": round((got_end - got_w) / window) if failure is None else None,
            "messages_sent": sent,
            "messages_delivered": got_all - got0,
            "lost": lost,
            "duplicated": self.dups - dups0,
            "out_of_order": self.gaps - gaps0,
            "samples": len(lat),
            "p50_ms": ms[0],
            "p99_ms": ms[1],
            "max_ms": ms[2],
            "tick_late_mean_ms": round(late_total / max(ticks, 1) * 1e3, 3),
            "tick_late_max_ms": round(late_max * 1e3, 3),
            "ticks_behind": round(behind / max(ticks, 1), 4),
        }
        res.update(cpu)
        reasons = []
        if failure is not None:
            reasons.append(f"failed: {failure}")
        if lost:
            reasons.append(f"{lost} messages not delivered within {args.drain:g}s")
        if res["duplicated"] or res["out_of_order"]:
            reasons.append(f"{res['duplicated']} duplicated, {res['out_of_order']} out of order")
        if res["ticks_behind"] > 0.01:
            reasons.append(f"generator behind its schedule: {res['ticks_behind']:.1%} of sub-ticks "
                           f"more than a tick late (max {late_max * 1e3:.0f} ms)")
        if not lat:
            reasons.append("no latency samples")
        elif ms[1] > args.p99_ms:
            reasons.append(f"p99 {ms[1]} ms > {args.p99_ms:g} ms")
        res["held"] = not reasons
        if reasons:
            res["why"] = "; ".join(reasons)
        return res


def c_engine(name: str, mode: str) -> str:
    """Path of the compiled tools/<name>.c: /tmp/loadgen-<name>-<hash of the source and
    of tools/gen_common.h>, built with gcc -O2 on first use (`mode` names the loadgen
    mode in errors)."""
    here = os.path.dirname(os.path.abspath(__file__))
    src = os.path.join(here, f"{name}.c")
    try:
        code = b""
        for path in (src, os.path.join(here, "gen_common.h")):
            with open(path, "rb") as f:
                code += f.read()
    except OSError as e:
        raise BenchError(f"{mode}: cannot read {src}: {e}") from None
    exe = f"/tmp/loadgen-{name}-{hashlib.sha1(code).hexdigest()[:12]}"
    if os.access(exe, os.X_OK):
        return exe
    cc = os.environ.get("CC", "gcc")
    tmp = f"{exe}.{os.getpid()}"
    try:
        out = subprocess.run([cc, "-O2", "-o", tmp, src], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BenchError(f"{mode}: cannot compile {src} with {cc} ({e}); use --engine python") from None
    if out.returncode:
        raise BenchError(f"{mode}: {cc} failed on {src}: {out.stderr.strip()[:500]}")
    os.replace(tmp, exe)
    return exe


def c_engine_speaks_plain_tcp(args, mode: str) -> None:
    """Refuse --tls with --engine c before connecting anyone."""
    if args.tls and args.engine == "c":
        raise BenchError(f"{mode}: --tls needs --engine python (the C engine speaks plain TCP only)")


def engine_lines(mode: str, argv: list, spec: str, fds: list, limit_s: float):
    """Run a C engine on the inherited sockets `fds` (`spec`, the sockets' roles, on its
    stdin) and yield each line it prints as it comes; a BenchError if it runs longer
    than `limit_s` or exits with a status. It is killed if the caller stops early."""
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=fds)
    limit = now() + limit_s
    try:
        proc.stdin.write(spec.encode())
        proc.stdin.close()
        buf = b""
        fd = proc.stdout.fileno()
        while True:
            left = limit - now()
            if left <= 0:
                raise BenchError(f"{mode}: the C engine did not finish in {limit_s:.0f}s")
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                yield line.decode().strip()
        rc = proc.wait(timeout=5)
        if rc:
            raise BenchError(f"{mode}: the C engine {argv[0]} exited with status {rc}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)


def bench_chat(args, run: Run) -> dict:
    n = args.clients
    if n < 2 or n % 2:
        raise BenchError("chat: --clients must be an even number, at least 2")
    c_engine_speaks_plain_tcp(args, "chat")
    if args.tls and args.stamp == "kernel":
        raise BenchError("chat: --tls needs --stamp user (the kernel stamps the encrypted bytes)")
    say(f"chat: {n} clients in {n // 2} two-person channels; rate from {args.start:g} msgs/s, "
        f"{'x' + format(args.factor, 'g') if args.factor else '+' + format(args.step, 'g')} per step "
        f"of {args.step_seconds:g}s, up to {args.max_rate:g}; stop at p99 > {args.p99_ms:g} ms or a loss")
    net = Net(args.host, args.port, args.timeout, args.tls)
    net.pid = args.pid
    try:
        p = run.prefix()
        nicks = [p + b36(i) for i in range(n)]
        chans = [f"#{p}{b36(k)}" for k in range(n // 2)]
        t0 = now()
        meter = CpuMeter(args.pid)
        clients = net.setup(nicks, lambda i: [chans[i // 2]], args.concurrency, "joining chat channels")
        say(f"  {n} clients registered and joined in {now() - t0:.2f}s (cpu {meter.result()})")
        chat = Chat(net, args, clients, chans, p)
        chat.sync()
        steps = []
        held = 0
        rate = float(args.start)
        step_results = chat.run_c() if args.engine == "c" else None
        while rate <= args.max_rate + 1e-9:
            if step_results is None:
                wait_server_idle(args.pid, 5.0)
                st = chat.step(rate)
            else:
                st = next(step_results, None)
                if st is None:
                    break
            steps.append(st)
            cpu = f"cpu gen {st.get('generator_cpu', float('nan')):.0%}"
            if "server_cpu" in st:
                cpu += f" server {st['server_cpu']:.0%}"
            waits = [f"{k} {st[k + '_runq_wait_ms_per_s']:g}" for k in ("generator", "server")
                     if k + "_runq_wait_ms_per_s" in st]
            if waits:
                cpu += f"; waited for a CPU (ms/s): {', '.join(waits)}"
            say(f"  {rate:>9,.0f}/s offered: sent {st['sent_per_s'] or 0:,}/s, delivered "
                f"{st['delivered_per_s'] or 0:,}/s; ms p50 {st['p50_ms']} p99 {st['p99_ms']} "
                f"max {st['max_ms']}; lost {st['lost']}; tick late max {st['tick_late_max_ms']} ms "
                f"({st.get('ticks_behind', 0):.1%} over a tick); "
                f"{cpu}" + ("" if st["held"] else f"  -- NOT HELD: {st['why']}"))
            if st.get("generator_cpu", 0) > 0.9:
                warn_generator_bound(st)
            if not st["held"]:
                break
            held = rate
            rate = rate * args.factor if args.factor else rate + args.step
        res = {
            "clients": n,
            "channels": n // 2,
            "engine": args.engine,
            "tick_ms": args.tick_ms,
            "step_seconds": args.step_seconds,
            "warmup": args.warmup,
            "p99_limit_ms": args.p99_ms,
            "receive_stamp": "kernel SO_TIMESTAMPNS" if args.stamp == "kernel" else "userspace",
            "held_msgs_per_s": round(held),
            "stopped": steps[-1].get("why", "reached --max-rate") if steps else "no step",
            "steps": steps,
        }
        say(f"  => held {held:,.0f} messages/s ({res['stopped']})")
        return res
    finally:
        net.quit_all(timeout=10.0)


# --------------------------------------------------------------------------- CLI


def check_target(key: str, res: dict) -> None:
    t = TARGETS.get(key)
    if not t or t[0] not in res:
        return
    field, op, val = t
    v = res[field]
    ok = v >= val if op == ">=" else v < val if op == "<" else v <= val
    res["target"] = f"{field} {op} {val}"
    res["meets_target"] = bool(ok)


def check_host(host: str) -> None:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise BenchError(f"--host must be a loopback IP address (127.0.0.1 or ::1), not {host!r}") from None
    if not ip.is_loopback:
        raise BenchError(f"--host must be a loopback address (127.0.0.1 or ::1), not {host}")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--host", default="127.0.0.1", help="server address (loopback only)")
    common.add_argument("--port", type=int, default=6667)
    common.add_argument("--timeout", type=float, default=30.0,
                        help="fail a phase after this many seconds without progress (default 30)")
    common.add_argument("--concurrency", type=int, default=100,
                        help="clients connecting/registering at once (default 100)")
    common.add_argument("--pid", type=int, default=None,
                        help="server PID: memory mode reads its VmRSS; CPU share is reported")
    common.add_argument("--pids", type=parse_pids, default=[], metavar="PID,PID,...",
                        help="more server PIDs (a linked network's other servers): their CPU "
                             "share is reported as servers_cpu")
    common.add_argument("--cpu", type=int, default=None,
                        help="pin the generator to this CPU (like taskset -c)")
    common.add_argument("--seed", type=int, default=None, help="seed of the run's nick prefix")
    common.add_argument("--tls", action="store_true",
                        help="connect over TLS (no certificate check; --port must be a TLS "
                             "listener); chat only with --engine python")

    traffic = argparse.ArgumentParser(add_help=False)
    traffic.add_argument("--duration", type=float, default=10.0, help="seconds of sending (default 10)")
    traffic.add_argument("--messages", type=int, default=0,
                         help="send this many messages instead (stops at --duration anyway)")
    traffic.add_argument("--size", type=int, default=64,
                         help="approximate length of the message text in bytes: 'seq timestamp' "
                              "padded with x (default 64)")
    traffic.add_argument("--sender-port", type=int, default=None,
                         help="fanout/latency: connect the sender to this port (another server "
                              "of a linked network; default --port)")
    traffic.add_argument("--receiver-ports", type=parse_ports, default=None, metavar="P1,P2,...",
                         help="fanout/latency: spread the receivers round-robin over these ports "
                              "(default --port)")

    ap = argparse.ArgumentParser(description="Load generator for IRC servers (loopback only).")
    sub = ap.add_subparsers(dest="mode", required=True)

    f = sub.add_parser("fanout", parents=[common, traffic], help="fan-out deliveries/s")
    f.add_argument("--members", type=int, nargs="+", default=[1000],
                   help="receiving members of the channel (several: one run each); the sender is one more")
    f.add_argument("--window", type=int, default=100,
                   help="max messages in flight, counted by the slowest receiver (default 100)")
    f.add_argument("--warmup", type=float, default=1.0,
                   help="seconds excluded from the steady-state rate (default 1)")
    f.add_argument("--engine", choices=("c", "python"), default=None,
                   help="c: after setup in Python, tools/fangen.c (built with gcc into /tmp on "
                        "first use) sends and counts; python: this process (default c, python "
                        "with --tls)")

    lt = sub.add_parser("latency", parents=[common, traffic], help="delivery latency at a fixed rate")
    lt.add_argument("--members", type=int, default=1000)
    lt.add_argument("--rate", type=float, default=100.0, help="messages per second (default 100)")
    lt.add_argument("--engine", choices=("c", "python"), default=None,
                    help="c: after setup in Python, tools/latgen.c (built with gcc into /tmp on "
                         "first use) sends and reads; python: this process (default c, python "
                         "with --tls)")

    r = sub.add_parser("register", parents=[common], help="registrations/s")
    r.add_argument("--clients", type=int, default=2000)

    m = sub.add_parser("memory", parents=[common], help="server RSS per idle client (needs --pid)")
    m.add_argument("--clients", type=int, default=10000)
    m.add_argument("--channels", type=int, default=1000)
    m.add_argument("--per-client", type=int, default=2)
    m.add_argument("--settle", type=float, default=3.0, help="idle seconds before reading RSS (default 3)")

    c = sub.add_parser("chat", parents=[common],
                       help="1:1 chat: highest open-loop message rate held within a p99 limit")
    c.add_argument("--clients", type=int, default=1000,
                   help="clients, in clients/2 two-person channels (default 1000)")
    c.add_argument("--start", type=float, default=10000, help="first rate, messages/s (default 10000)")
    c.add_argument("--step", type=float, default=10000,
                   help="add this many messages/s per step (default 10000)")
    c.add_argument("--factor", type=float, default=None,
                   help="multiply the rate by this per step instead of --step")
    c.add_argument("--max-rate", type=float, default=400000,
                   help="stop after the step at this rate (default 400000)")
    c.add_argument("--step-seconds", type=float, default=5.0, help="seconds per step (default 5)")
    c.add_argument("--warmup", type=float, default=1.0,
                   help="seconds at the start of each step not measured (default 1)")
    c.add_argument("--p99-ms", type=float, default=50.0,
                   help="a step holds if p99 latency is at most this (default 50)")
    c.add_argument("--drain", type=float, default=5.0,
                   help="seconds after a step for every message to arrive (default 5)")
    c.add_argument("--tick-ms", type=float, default=20.0,
                   help="each client sends its due messages in one write every this many ms "
                        "(clients staggered over the tick; default 20)")
    c.add_argument("--size", type=int, default=64,
                   help="approximate length of the message text (default 64)")
    c.add_argument("--engine", choices=("c", "python"), default="c",
                   help="c: after setup in Python, tools/chatgen.c (built with gcc into /tmp "
                        "on first use) sends and receives; python: this process (default c)")
    c.add_argument("--stamp", choices=("kernel", "user"), default="user",
                   help="receive time: the kernel's SO_TIMESTAMPNS, or the clock when read "
                        "(default user)")

    a = sub.add_parser("all", parents=[common, traffic],
                       help="memory (with --pid), register, fanout, latency")
    a.add_argument("--fanout-members", type=int, nargs="+", default=[100, 1000],
                   help="fanout: receiving members, one run each (default 100 1000)")
    a.add_argument("--window", type=int, default=100, help="fanout: messages in flight (default 100)")
    a.add_argument("--warmup", type=float, default=1.0, help="fanout: seconds not counted (default 1)")
    a.add_argument("--latency-members", type=int, default=1000, help="latency: members (default 1000)")
    a.add_argument("--rate", type=float, default=100.0, help="latency: messages/s (default 100)")
    a.add_argument("--engine", choices=("c", "python"), default=None,
                   help="fanout and latency: the engine, as in those modes (default c, python "
                        "with --tls)")
    a.add_argument("--reg-clients", type=int, default=2000, help="register: clients (default 2000)")
    a.add_argument("--mem-clients", type=int, default=10000, help="memory: clients (default 10000)")
    a.add_argument("--mem-channels", type=int, default=1000, help="memory: channels (default 1000)")
    a.add_argument("--mem-per-client", type=int, default=2,
                   help="memory: channels joined by each client (default 2)")
    a.add_argument("--settle", type=float, default=3.0,
                   help="memory: idle seconds before reading RSS (default 3)")
    a.add_argument("--pause", type=float, default=1.0, help="seconds between benchmarks (default 1)")
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    results: dict = {}
    out = {"mode": args.mode, "host": args.host, "port": args.port, "tls": args.tls,
           "results": results}
    try:
        check_host(args.host)
        OTHER_PIDS[:] = args.pids
        if args.cpu is not None:
            os.sched_setaffinity(0, {args.cpu})
        nofile = raise_nofile()
        if args.seed is not None:
            random.seed(args.seed)
        run = Run()
        out["run"] = run.rid
        say(f"loadgen run {run.rid}: server {args.host}:{args.port}{' (TLS)' if args.tls else ''}, "
            f"RLIMIT_NOFILE {nofile}, "
            f"affinity {sorted(os.sched_getaffinity(0))}")
        sizes = [0]
        for k in ("clients", "mem_clients", "reg_clients", "latency_members", "members", "fanout_members"):
            v = getattr(args, k, None)
            sizes += v if isinstance(v, list) else [v] if isinstance(v, int) else []
        need = max(sizes) + 50
        if need > nofile:
            raise BenchError(f"need about {need} file descriptors but RLIMIT_NOFILE is {nofile}")

        def record(key, fn, *a):
            res = fn(*a)
            res["tls"] = args.tls
            check_target(key, res)
            results[key] = res

        if args.mode == "fanout":
            for m in args.members:
                record(f"fanout_{m}", bench_fanout, args, run, m)
        elif args.mode == "latency":
            record("latency", bench_latency, args, run)
        elif args.mode == "register":
            record("register", bench_register, args, run)
        elif args.mode == "memory":
            record("memory", bench_memory, args, run)
        elif args.mode == "chat":
            record("chat", bench_chat, args, run)
        else:
            steps = []
            if args.pid:
                steps.append(("memory", lambda: bench_memory(sub_args(args, clients=args.mem_clients,
                              channels=args.mem_channels, per_client=args.mem_per_client), run)))
            else:
                say("all: no --pid given, skipping the memory benchmark")
            steps.append(("register", lambda: bench_register(sub_args(args, clients=args.reg_clients), run)))
            for m in args.fanout_members:
                steps.append((f"fanout_{m}", lambda m=m: bench_fanout(args, run, m)))
            steps.append(("latency", lambda: bench_latency(sub_args(args, members=args.latency_members), run)))
            for i, (key, fn) in enumerate(steps):
                if i:
                    time.sleep(args.pause)
                    wait_server_idle(args.pid)
                record(key, fn)
    except BenchError as e:
        say(f"ERROR: {e}")
        out["error"] = str(e)
        print(json.dumps(out), flush=True)
        return 1
    except KeyboardInterrupt:
        out["error"] = "interrupted"
        print(json.dumps(out), flush=True)
        return 130
    print(json.dumps(out), flush=True)
    return 0


def sub_args(args, **kw):
    ns = argparse.Namespace(**vars(args))
    for k, v in kw.items():
        setattr(ns, k, v)
    return ns


if __name__ == "__main__":
    sys.exit(main())
