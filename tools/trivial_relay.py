#!/usr/bin/env python3
"""A minimal trio IRC "relay", just enough for tools/loadgen.py.

It is not an IRC server: it answers NICK/USER with 001, PING with PONG, JOIN with
the JOIN echo (also sent to the channel's other members), relays PRIVMSG to the
other members of a channel (or to a nick), and closes on QUIT.  Each connection
has one output buffer (a list of bytes) flushed by its own writer task with one
send_all of the joined bytes.  A relayed line is serialised once and the same
bytes object is appended to every recipient's buffer.

Its purpose is to show the load generator's own ceiling: the relay does so
little per message that, pinned to its own core, it should outrun the generator.

    taskset -c 0 python3 tools/trivial_relay.py --port 17667
"""

from __future__ import annotations

import argparse
import os
import resource

import trio

SERVER = b"relay.localhost"
SENDQ_LIMIT = 32 * 1024 * 1024
DIRTY: list = []        # --flush direct: connections with output to write
DIRECT = False


class Conn:
    __slots__ = ("stream", "fd", "nick", "user", "prefix", "registered", "channels",
                 "out", "queued", "wake", "closing", "dead", "dirty", "writing", "awaiting_pong")

    def __init__(self, stream):
        self.stream = stream
        self.fd = stream.socket.fileno()
        self.dirty = False
        self.writing = False
        self.awaiting_pong = False
        self.nick = b""
        self.user = b""
        self.prefix = b""
        self.registered = False
        self.channels: set = set()
        self.out: list = []
        self.queued = 0
        self.wake = trio.Event()
        self.closing = False
        self.dead = False

    def send(self, data: bytes) -> None:
        if self.dead:
            return
        self.out.append(data)
        self.queued += len(data)
        if self.queued > SENDQ_LIMIT:
            self.dead = True
            self.out.clear()
        elif DIRECT:
            if not self.dirty:
                self.dirty = True
                DIRTY.append(self)
            return
        wake = self.wake
        if not wake.is_set():
            wake.set()


def flush_dirty() -> None:
    """--flush direct: write each dirty connection's output now, without waking
    its writer task (which only takes over what the kernel did not accept)."""
    global DIRTY
    dirty = DIRTY
    DIRTY = []
    for c in dirty:
        c.dirty = False
        if c.dead or not c.out:
            continue
        if c.writing:
            if not c.wake.is_set():
                c.wake.set()
            continue
        data = b"".join(c.out) if len(c.out) > 1 else c.out[0]
        c.out.clear()
        c.queued = 0
        try:
            n = os.write(c.fd, data)
        except BlockingIOError:
            n = 0
        except OSError:
            c.dead = True
            c.wake.set()
            continue
        if n < len(data):
            c.out.append(data[n:])
            c.queued = len(data) - n
            if not c.wake.is_set():
                c.wake.set()


class Relay:
    def __init__(self):
        self.nicks: dict = {}        # lower nick -> Conn
        self.channels: dict = {}     # lower name -> dict of Conn (ordered set)

    async def writer(self, c: Conn, done: trio.Event, cancel: trio.CancelScope) -> None:
        try:
            while True:
                await c.wake.wait()
                c.wake = trio.Event()
                if c.dead:
                    break
                if c.out:
                    data = b"".join(c.out)
                    c.out.clear()
                    c.queued = 0
                    c.writing = True
                    await c.stream.send_all(data)
                    c.writing = False
                if c.closing and not c.out:
                    break
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            c.dead = True
        finally:
            done.set()
            if c.dead:
                cancel.cancel()

    async def handle(self, stream) -> None:
        c = Conn(stream)
        done = trio.Event()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.writer, c, done, nursery.cancel_scope)
                try:
                    await self.reader(c)
                finally:
                    self.part_all(c)
                    flush_dirty()
                    c.closing = True
                    c.wake.set()
                with trio.move_on_after(5):
                    await done.wait()
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                try:
                    await stream.aclose()
                except Exception:
                    pass

    async def reader(self, c: Conn) -> None:
        buf = b""
        receive = c.stream.receive_some
        while not c.dead:
            try:
                data = await receive(262144)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                return
            if not data:
                return
            buf += data
            lines = buf.split(b"\n")
            buf = lines.pop()
            if len(buf) > 8192:
                return
            for line in lines:
                if self.command(c, line.rstrip(b"\r")) is False:
                    return
            if DIRTY:
                flush_dirty()

    def command(self, c: Conn, line: bytes):
        if line.startswith(b":"):
            sp = line.find(b" ")
            if sp < 0:
                return None
            line = line[sp + 1:]
        sp = line.find(b" ")
        cmd = (line if sp < 0 else line[:sp]).upper()
        rest = b"" if sp < 0 else line[sp + 1:]
        if cmd == b"PRIVMSG" or cmd == b"NOTICE":
            if not c.registered:
                return None
            sp = rest.find(b" ")
            if sp < 0:
                return None
            target = rest[:sp]
            out = c.prefix + cmd + b" " + rest + b"\r\n"
            if target.startswith(b"#"):
                members = self.channels.get(target.lower())
                if members:
                    for m in members:
                        if m is not c:
                            m.send(out)
            else:
                m = self.nicks.get(target.lower())
                if m is not None:
                    m.send(out)
            return None
        if cmd == b"PING":
            c.send(b":" + SERVER + b" PONG " + SERVER + b" " + (rest or b":x") + b"\r\n")
        elif cmd == b"PONG":
            c.awaiting_pong = False
        elif cmd == b"NICK":
            nick = rest.split(b" ")[0].lstrip(b":")
            if not nick:
                return None
            other = self.nicks.get(nick.lower())
            if other is not None and other is not c:
                c.send(b":" + SERVER + b" 433 * " + nick + b" :Nickname is already in use\r\n")
                return None
            if c.nick:
                self.nicks.pop(c.nick.lower(), None)
            c.nick = nick
            self.nicks[nick.lower()] = c
            self.maybe_register(c)
        elif cmd == b"USER":
            c.user = rest.split(b" ")[0] or b"user"
            self.maybe_register(c)
        elif cmd == b"JOIN":
            if not c.registered:
                return None
            for name in rest.split(b" ")[0].lstrip(b":").split(b","):
                if not name.startswith(b"#"):
                    continue
                key = name.lower()
                if key in c.channels:
                    continue
                members = self.channels.setdefault(key, {})
                members[c] = None
                c.channels.add(key)
                msg = c.prefix + b"JOIN " + name + b"\r\n"
                for m in members:
                    m.send(msg)
                c.send(b":" + SERVER + b" 366 " + c.nick + b" " + name + b" :End of /NAMES list.\r\n")
        elif cmd == b"PART":
            for name in rest.split(b" ")[0].split(b","):
                key = name.lower()
                members = self.channels.get(key)
                if members is None or c not in members:
                    continue
                msg = c.prefix + b"PART " + name + b"\r\n"
                for m in members:
                    m.send(msg)
                self.leave(c, key)
        elif cmd == b"QUIT":
            c.send(b"ERROR :Closing link\r\n")
            return False
        return None

    async def pinger(self, interval: float) -> None:
        """--ping: PING every registered client each interval; drop those that did
        not answer the previous one (tests that a client answers PING in every mode)."""
        while True:
            await trio.sleep(interval)
            dropped = 0
            for c in list(self.nicks.values()):
                if c.awaiting_pong:
                    c.dead = True          # the writer task exits and cancels the reader
                    c.wake.set()
                    dropped += 1
                else:
                    c.awaiting_pong = True
                    c.send(b"PING :" + SERVER + b"\r\n")
            flush_dirty()
            print(f"pinged {len(self.nicks)} clients, dropped {dropped} for not answering", flush=True)

    def maybe_register(self, c: Conn) -> None:
        if c.registered or not c.nick or not c.user:
            return
        c.registered = True
        c.prefix = b":" + c.nick + b"!" + c.user + b"@127.0.0.1 "
        c.send(b":" + SERVER + b" 001 " + c.nick + b" :Welcome to the relay " + c.nick + b"\r\n"
               + b":" + SERVER + b" 422 " + c.nick + b" :MOTD File is missing\r\n")

    def leave(self, c: Conn, key: bytes) -> None:
        members = self.channels.get(key)
        if members is not None:
            members.pop(c, None)
            if not members:
                del self.channels[key]
        c.channels.discard(key)

    def part_all(self, c: Conn) -> None:
        if c.nick and self.nicks.get(c.nick.lower()) is c:
            del self.nicks[c.nick.lower()]
        if not c.channels:
            return
        msg = c.prefix + b"QUIT :Quit\r\n"
        told = set()
        for key in list(c.channels):
            self.leave(c, key)
            for m in self.channels.get(key, ()):
                if id(m) not in told:
                    told.add(id(m))
                    m.send(msg)


async def main_async(host: str, port: int, ping: float) -> None:
    relay = Relay()
    listeners = await trio.open_tcp_listeners(port, host=host, backlog=4096)
    extra = f", ping every {ping:g}s" if ping > 0 else ""
    print(f"trivial_relay listening on {host}:{port} (flush: {'direct' if DIRECT else 'writer'}"
          f"{extra})", flush=True)
    async with trio.open_nursery() as nursery:
        if ping > 0:
            nursery.start_soon(relay.pinger, ping)
        await trio.serve_listeners(relay.handle, listeners)


def main() -> None:
    ap = argparse.ArgumentParser(description="Minimal trio IRC relay for measuring tools/loadgen.py")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=17667)
    ap.add_argument("--flush", choices=("writer", "direct"), default="writer",
                    help="writer: each connection's writer task flushes its buffer (default); "
                         "direct: after each input chunk, write every touched buffer with a "
                         "non-blocking os.write, the writer task only taking the rest")
    ap.add_argument("--ping", type=float, default=0.0, metavar="SECONDS",
                    help="PING every client this often and drop those that did not answer "
                         "the previous PING (default: never)")
    args = ap.parse_args()
    global DIRECT
    DIRECT = args.flush == "direct"
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        trio.run(main_async, args.host, args.port, args.ping)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
