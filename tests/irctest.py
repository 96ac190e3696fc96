"""Test support: start real servers on 127.0.0.1 and talk to them with raw IRC lines."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import ssl
import textwrap
from collections import deque
from pathlib import Path

import trio

from ircd.app import App
from ircd.config import load_config
from ircd.protocol.message import Message, parse_line

DEFAULT_TIMEOUT = 5.0
REPO = Path(__file__).resolve().parent.parent


def server_env() -> dict:
    """The environment for a `python -m ircd` subprocess: this worktree's code first on
    PYTHONPATH, whatever else is installed."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]))


# -- a server process's log --------------------------------------------------------------

# One record as ircd.cli.LOG_FORMAT writes it: "<asctime> <LEVEL> <logger>: <message>".
RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<level>[A-Z]+) (?P<logger>\S+): ")


def log_entries(text: str) -> list[tuple[str | None, str]]:
    """The log cut into (level, text) entries: a record with the lines that follow it
    (a traceback, a multi-line message), or, for output that is no record (Python's own
    report of an uncaught exception on stderr), level None."""
    entries: list[tuple[str | None, list[str]]] = []
    for line in text.splitlines():
        m = RECORD.match(line)
        if m:
            entries.append((m["level"], [line]))
        elif entries:
            entries[-1][1].append(line)
        else:
            entries.append((None, [line]))
    return [(level, "\n".join(lines)) for level, lines in entries]


def log_problems(text: str) -> list[str]:
    """Every ERROR or CRITICAL record, and every entry holding a traceback."""
    return [entry for level, entry in log_entries(text)
            if level in ("ERROR", "CRITICAL") or "Traceback (most recent call last)" in entry
            or "Exception ignored in" in entry]


def assert_log_clean(log_path: Path) -> None:
    """Fails, quoting each problem, if a server process logged an ERROR record or a
    traceback. The one check for every test that runs `ircd run` as a process
    (test_fuzz proves that it catches a logged exception)."""
    problems = log_problems(log_path.read_text(errors="replace"))
    assert not problems, (f"{len(problems)} error(s)/traceback(s) in {log_path}:\n\n"
                          + "\n\n".join(p[-3000:] for p in problems[:5]))


_GIVEN: set[int] = set()


def free_port() -> int:
    """A port nothing listens on now, and not handed out before in this run (the OS may
    give the same free port to two calls in a row)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port


def write_config(directory: Path, *, limits: dict | None = None, server: dict | None = None,
                 extra: str = "", tls: bool = True) -> tuple[Path, int, int | None]:
    """Write an ircd.toml with fresh ports; returns (path, plain port, TLS port)."""
    port = free_port()
    tls_port = free_port() if tls else None
    settings = {"name": "test.server", "network": "TestNet", "data_dir": "data"}
    settings.update(server or {})
    lim = {"registration_timeout": 10, "ping_interval": 60, "ping_timeout": 30}
    lim.update(limits or {})

    def toml(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    text = "[server]\n" + "".join(f"{k} = {toml(v)}\n" for k, v in settings.items())
    text += f'\n[[listen]]\nhost = "127.0.0.1"\nport = {port}\n'
    if tls:
        text += f'\n[[listen]]\nhost = "127.0.0.1"\nport = {tls_port}\ntls = true\n'
    text += "\n[limits]\n" + "".join(f"{k} = {toml(v)}\n" for k, v in lim.items())
    text += "\n" + textwrap.dedent(extra)
    path = directory / "ircd.toml"
    path.write_text(text)
    return path, port, tls_port


class RunningServer:
    def __init__(self, app: App, path: Path, port: int, tls_port: int | None):
        self.app = app
        self.path = path
        self.port = port
        self.tls_port = tls_port

    @property
    def state(self):
        return self.app.server

    async def client(self, nick: str | None = None, *, caps=(), tls: bool = False,
                     password: str | None = None, realname: str = "Test User") -> "IRCClient":
        c = await IRCClient.connect(self.tls_port if tls else self.port, tls=tls)
        if nick is not None:
            await c.register(nick, caps=caps, password=password, realname=realname)
        return c


async def start_server(nursery, directory: Path, **kwargs) -> RunningServer:
    path, port, tls_port = write_config(directory, **kwargs)
    app = App(load_config(path))
    nursery.start_soon(app.main)
    with trio.fail_after(10):
        await app.ready.wait()
    await wait_listening(port)
    return RunningServer(app, path, port, tls_port)


async def wait_listening(port: int) -> None:
    for _ in range(300):
        try:
            s = await trio.open_tcp_stream("127.0.0.1", port)
            await s.aclose()
            return
        except OSError:
            await trio.sleep(0.02)
    raise AssertionError(f"nothing listening on {port}")


VOLATILE_TAGS = frozenset({"time", "msgid"})


def show(msg: Message, *, volatile=VOLATILE_TAGS) -> str:
    """A message as one canonical line, for comparing what a user sees exactly.

    Tags come first, sorted, with the values of `volatile` tags (server-time, msgid)
    shown as `*`; the last parameter gets a `:` only where it needs one (empty, has a
    space, starts with `:`), so `JOIN #a` and `JOIN :#a`, which every client reads
    alike, compare equal."""
    parts = []
    if msg.tags:
        parts.append("@" + ";".join(
            k if (v == "" and k not in volatile) else f"{k}={'*' if k in volatile else v}"
            for k, v in sorted(msg.tags.items())))
    if msg.source is not None:
        parts.append(":" + msg.source)
    parts.append(msg.command)
    params = list(msg.params)
    if params:
        last = params.pop()
        parts += params
        parts.append(":" + last if (not last or " " in last or last.startswith(":")) else last)
    return " ".join(parts)


def shown(msgs) -> list[str]:
    """show() for each message of a list."""
    return [show(m) for m in msgs]


class ConnectionClosed(EOFError, AssertionError):
    """The server closed the connection while a test was waiting for a line.

    An EOFError for the helpers that read until the end on purpose, and an assertion
    failure (with what was awaited and what arrived) everywhere else."""


class IRCClient:
    """A raw-line IRC client for tests: every received line is kept and can be awaited.

    Every wait has a deadline. When it passes, or the server closes the connection
    first, the test fails with an AssertionError that names what was awaited and shows
    the last HISTORY lines that arrived (already read, still unread, and any partial
    line), instead of a bare trio.TooSlowError."""

    HISTORY = 20

    def __init__(self, stream):
        self.stream = stream
        self.buffer = b""
        self.lines: list[str] = []       # received, not read yet
        self.history: deque[str] = deque(maxlen=self.HISTORY)   # read most recently
        self.nick: str | None = None
        self.closed = False

    @classmethod
    async def connect(cls, port: int, tls: bool = False, host: str = "127.0.0.1") -> "IRCClient":
        stream = await trio.open_tcp_stream(host, port)
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            stream = trio.SSLStream(stream, ctx, server_hostname="test.server")
            await stream.do_handshake()
        return cls(stream)

    async def send(self, *lines: str) -> None:
        await self.stream.send_all("".join(line + "\r\n" for line in lines).encode())

    async def send_raw(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def _fill(self) -> bool:
        try:
            data = await self.stream.receive_some(65536)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        if not data:
            self.closed = True
            return False
        self.buffer += data
        *complete, self.buffer = self.buffer.split(b"\r\n")
        self.lines.extend(line.decode("utf-8", "replace") for line in complete)
        return True

    # -- waiting, and what a failed wait reports ---------------------------------------

    def report(self, headline: str) -> str:
        """`headline`, then the lines that arrived: the last read ones and the unread."""
        who = f" [client {self.nick}]" if self.nick else ""
        out = [headline + who]
        if self.history:
            out.append(f"last {len(self.history)} lines read (oldest first):")
            out += [f"  {line}" for line in self.history]
        else:
            out.append("no line has been read on this connection")
        if self.lines:
            out.append(f"still unread ({len(self.lines)}):")
            out += [f"  {line}" for line in self.lines[:self.HISTORY]]
            if len(self.lines) > self.HISTORY:
                out.append(f"  ... and {len(self.lines) - self.HISTORY} more")
        else:
            out.append("still unread: nothing")
        if self.buffer:
            out.append(f"incomplete line: {self.buffer[:300]!r}")
        if self.closed:
            out.append("the server has closed the connection")
        return "\n".join(out)

    @contextlib.contextmanager
    def _waiting(self, what: str, timeout: float):
        try:
            with trio.fail_after(timeout):
                yield
        except trio.TooSlowError:
            raise AssertionError(self.report(f"timed out after {timeout:g}s waiting for {what}")) \
                from None

    async def _read_line(self, what: str) -> str:
        while not self.lines:
            if not await self._fill():
                raise ConnectionClosed(self.report(f"connection closed while waiting for {what}"))
        line = self.lines.pop(0)
        self.history.append(line)
        return line

    async def next_line(self, timeout: float = DEFAULT_TIMEOUT) -> str:
        with self._waiting("any line", timeout):
            return await self._read_line("any line")

    async def next_message(self, timeout: float = DEFAULT_TIMEOUT) -> Message:
        return parse_line(await self.next_line(timeout))

    async def expect(self, command: str, *params: str, timeout: float = DEFAULT_TIMEOUT,
                     skip: bool = True) -> Message:
        """Read until a message with `command` whose first params equal `params`.

        With skip=False the very next message must match."""
        what = " ".join([command, *map(repr, params)])
        with self._waiting(what, timeout):
            while True:
                msg = parse_line(await self._read_line(what))
                if msg.command == command and list(msg.params[:len(params)]) == list(params):
                    return msg
                if not skip:
                    raise AssertionError(self.report(f"expected {what} as the next message, "
                                                     f"got {msg}"))

    async def collect_until(self, command: str, timeout: float = DEFAULT_TIMEOUT) -> list[Message]:
        """Every message up to and including the first `command`."""
        out = []
        with self._waiting(f"{command} (collecting the messages before it)", timeout):
            while True:
                msg = parse_line(await self._read_line(command))
                out.append(msg)
                if msg.command == command:
                    return out

    async def quiet(self, seconds: float = 0.2) -> list[str]:
        """Everything that arrives within `seconds` (used to assert that nothing does)."""
        with trio.move_on_after(seconds):
            while await self._fill():
                pass
        lines, self.lines = self.lines, []
        self.history.extend(lines)
        return lines

    async def register(self, nick: str, *, caps=(), password: str | None = None,
                       realname: str = "Test User", timeout: float = DEFAULT_TIMEOUT) -> list[Message]:
        lines = []
        if caps:
            lines.append("CAP LS 302")
        if password is not None:
            lines.append(f"PASS {password}")
        lines += [f"NICK {nick}", f"USER {nick.lower()[:8]} 0 * :{realname}"]
        if caps:
            lines += [f"CAP REQ :{' '.join(caps)}", "CAP END"]
        await self.send(*lines)
        if caps:
            ack = await self.expect("CAP", "*", "ACK", timeout=timeout)
            assert ack.params[2].split() == list(caps), self.report(f"CAP ACK for {caps}")
        what = f"the end of the welcome burst (376 or 422) after registering as {nick}"
        msgs = []
        with self._waiting(what, timeout):
            while True:
                msg = parse_line(await self._read_line(what))
                msgs.append(msg)
                if msg.command in ("376", "422") and "001" in [m.command for m in msgs]:
                    break
        self.nick = nick
        return msgs

    async def ping_pong(self, token: str = "sync", timeout: float = DEFAULT_TIMEOUT) -> list[Message]:
        """Round-trip a PING: everything the server sent before the PONG is returned."""
        await self.send(f"PING {token}")
        msgs = await self.collect_until("PONG", timeout=timeout)
        return msgs[:-1]

    async def close(self) -> None:
        await trio.aclose_forcefully(self.stream)
