"""Real IRC client libraries, as installed with pip, against a real server process.

The issue this closes asks that "the Python IRC libraries" and Limnoria bots work with this
server exactly as they do with a mature ircd, over plain TCP and TLS. So these tests run
the libraries' own code, unmodified, against `python -m ircd run` in a subprocess:

- ``irc`` (jaraco's library): its ``SingleServerIRCBot``, plain and TLS (verifying the
  server's self-signed certificate and host name); the library negotiates no capability
  by itself, so the test requests message-tags and server-time after registration;
- ``pydle``: its full-featured ``pydle.Client`` (CAP 302 negotiation, WHOX, extended-join,
  echo-message), plain and TLS;
- ``limnoria``: a real Limnoria bot process over TLS (certificate pinned by fingerprint),
  which negotiates labeled-response and labels every command, answering commands in
  a channel and in private.

A plain-socket observer in the test sees what each bot sends, byte for byte, and talks to
it. These libraries are in the ``test`` extra of setup.cfg for that reason only
(interoperability with real client libraries); each library's tests are skipped when it
is not installed, and fail on any misbehaviour of the server: a wrong or missing line, an
exception or error logged inside the library, a traceback in the server's log.

Minimum versions in the extra: pydle 1.0 does not import on Python 3.11 (it imports
asyncio.coroutine); Limnoria before 2023.11.18 reads TLS 1024 bytes at a time without
draining what OpenSSL already buffered, so it stalls mid-registration over TLS with any
server that sends its welcome burst in one TLS record, as this one does.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import hashlib
import logging
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from irctest import assert_log_clean, free_port, server_env

TIMEOUT = 5.0
HOST = "127.0.0.1"
SERVER_NAME = "lib.test"
NETWORK = "LibNet"

# Text that a careless encoder, splitter or colon handler would damage.
CHANNEL_TEXT = "héllo wörld ✓ :colons: and  two  spaces"
PRIVATE_TEXT = ":leading colon, ünïcode ✓"
OBSERVER_CHANNEL_TEXT = "from the observer to the channel ✓ :-)"
OBSERVER_PRIVATE_TEXT = "from the observer in private ✓"


# --- the server under test ---------------------------------------------------------------

@dataclass
class ServerProcess:
    port: int
    tls_port: int
    cert: Path
    log: Path
    proc: subprocess.Popen

    def check_healthy(self) -> None:
        """Still running, and nothing raised inside it."""
        log = self.log.read_text(errors="replace")
        assert self.proc.poll() is None, f"server exited:\n{log[-3000:]}"
        assert_log_clean(self.log)


@pytest.fixture(scope="module")
def ircd_process(tmp_path_factory):
    directory = tmp_path_factory.mktemp("libraries")
    port, tls_port = free_port(), free_port()
    config = directory / "ircd.toml"
    config.write_text(f"""
[server]
name = "{SERVER_NAME}"
network = "{NETWORK}"
data_dir = "data"

[[listen]]
host = "{HOST}"
port = {port}

[[listen]]
host = "{HOST}"
port = {tls_port}
tls = true

[logging]
level = "info"
""")
    log_path = directory / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "ircd", "run", "--config", str(config)],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=server_env())
    try:
        deadline = time.monotonic() + 15
        for p in (port, tls_port):
            while True:
                try:
                    socket.create_connection((HOST, p), timeout=1).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise AssertionError("server did not start:\n"
                                             + log_path.read_text(errors="replace"))
                    time.sleep(0.05)
        yield ServerProcess(port, tls_port, directory / "data" / "server.pem", log_path, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def client_tls_context(server: ServerProcess) -> ssl.SSLContext:
    """Trusts exactly the server's self-signed certificate, host name checked."""
    ctx = ssl.create_default_context(cafile=str(server.cert))
    ctx.check_hostname = True
    return ctx


def cert_sha256(server: ServerProcess) -> str:
    der = ssl.PEM_cert_to_DER_cert(server.cert.read_text())
    return hashlib.sha256(der).hexdigest()


# --- the raw-socket observer -------------------------------------------------------------

class Observer:
    """A plain IRC client on a blocking socket: no capabilities, so it gets plain lines.

    `expect` reads until a line equal to the given text (or matching a predicate) arrives;
    lines in between are kept in `seen` for the failure message. `pump`, when given, is
    called between reads so that a library running in the same thread keeps going."""

    def __init__(self, port: int, nick: str, realname: str = "Raw observer"):
        self.nick = nick
        self.realname = realname
        self.sock = socket.create_connection((HOST, port), timeout=TIMEOUT)
        self.buffer = b""
        self.pending: list[str] = []
        self.seen: list[str] = []

    @property
    def mask(self) -> str:
        return f"{self.nick}!~{self.nick}@{HOST}"

    def send(self, *lines: str) -> None:
        self.sock.sendall("".join(line + "\r\n" for line in lines).encode())

    def poll(self, timeout: float = 0.0) -> None:
        self.sock.settimeout(timeout if timeout > 0 else 0.0)
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, socket.timeout):
            return
        if not data:
            raise AssertionError(f"{self.nick}: server closed the connection; saw {self.seen[-20:]}")
        self.buffer += data
        *complete, self.buffer = self.buffer.split(b"\r\n")
        for raw in complete:
            line = raw.decode("utf-8")
            self.seen.append(line)
            if line.startswith("PING "):
                self.send("PONG " + line[5:])
            else:
                self.pending.append(line)

    def expect(self, match, timeout: float = TIMEOUT, pump=None, what: str | None = None) -> str:
        matches = (lambda line: line == match) if isinstance(match, str) else match
        what = what or repr(match)
        deadline = time.monotonic() + timeout
        while True:
            while self.pending:
                line = self.pending.pop(0)
                if matches(line):
                    return line
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.nick} never got {what}; last lines seen:\n"
                                     + "\n".join(self.seen[-25:]))
            if pump is None:
                self.poll(min(0.1, max(0.001, deadline - time.monotonic())))
            else:
                pump()
                self.poll()

    def quiet(self, seconds: float) -> list[str]:
        """Every line that arrives within `seconds`."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.poll(max(0.001, end - time.monotonic()))
        lines, self.pending = self.pending, []
        return lines

    def register(self) -> None:
        self.send(f"NICK {self.nick}", f"USER {self.nick} 0 * :{self.realname}")
        self.expect(lambda line: line.split(" ")[1:3] == ["001", self.nick], what="001")
        self.expect(lambda line: line.split(" ")[1] in ("376", "422"), what="end of MOTD")

    def join(self, channel: str) -> None:
        self.send(f"JOIN {channel}")
        self.expect(f":{self.mask} JOIN {channel}")
        self.expect(lambda line: line.split(" ")[1:4] == ["366", self.nick, channel],
                    what=f"366 for {channel}")

    def close(self) -> None:
        try:
            self.send("QUIT :observer done")
        except OSError:
            pass
        self.sock.close()


@pytest.fixture
def observers():
    made: list[Observer] = []

    def make(port: int, nick: str) -> Observer:
        obs = Observer(port, nick)
        made.append(obs)
        obs.register()
        return obs
    yield make
    for obs in made:
        obs.close()


def library_problems(records: list[logging.LogRecord], prefixes: tuple[str, ...]) -> list[str]:
    return [f"{r.name} {r.levelname}: {r.getMessage()}" for r in records
            if r.name.startswith(prefixes) and r.levelno >= logging.WARNING]


# --- jaraco's irc ------------------------------------------------------------------------

@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_jaraco_irc_bot(ircd_process, observers, caplog, tls):
    """irc.bot.SingleServerIRCBot registers, requests message-tags and server-time after
    registration, joins, tracks the channel's users and modes, talks both ways, quits."""
    irc_bot = pytest.importorskip("irc.bot")
    irc_connection = pytest.importorskip("irc.connection")

    suffix = "t" if tls else "p"
    nick, channel = f"jbot{suffix}", f"#jaraco-{suffix}"
    mask = f"{nick}!~{nick}@{HOST}"
    obs = observers(ircd_process.port, f"jobs{suffix}")
    obs.join(channel)

    class NoReconnect(irc_bot.ReconnectStrategy):
        def run(self, bot):
            pass

    factory = irc_connection.Factory()
    if tls:
        factory = irc_connection.Factory(wrapper=functools.partial(
            client_tls_context(ircd_process).wrap_socket, server_hostname=SERVER_NAME))
    bot = irc_bot.SingleServerIRCBot([(HOST, ircd_process.tls_port if tls else ircd_process.port)],
                                     nick, "jaraco irc bot", recon=NoReconnect(),
                                     connect_factory=factory)
    events: list = []
    raw: list[str] = []
    bot.reactor.add_global_handler("all_events", lambda c, e: events.append(e), -100)
    bot.reactor.add_global_handler("all_raw_messages", lambda c, e: raw.append(e.arguments[0]), -100)

    def pump():
        bot.reactor.process_once(0.02)

    def pump_until(condition, what: str, timeout: float = TIMEOUT):
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"jaraco bot: timed out waiting for {what}; it got:\n"
                                     + "\n".join(raw[-25:]))
            pump()
            obs.poll()

    def got(kind, *arguments, source=None):
        return [e for e in events if e.type == kind
                and list(e.arguments[:len(arguments)]) == list(arguments)
                and (source is None or e.source == source)]

    try:
        bot.connect(HOST, ircd_process.tls_port if tls else ircd_process.port, nick,
                    ircname="jaraco irc bot", connect_factory=factory)
        pump_until(lambda: got("endofmotd") or got("nomotd"), "registration")
        assert bot.connection.get_nickname() == nick
        assert bot.connection.get_server_name() == SERVER_NAME
        features = bot.connection.features
        assert features.network == NETWORK
        assert features.casemapping == "rfc1459"
        assert dict(features.prefix) == {"@": "o", "+": "v"}
        assert features.chantypes == "#&"
        assert features.chanmodes == ["beI", "k", "l", "imnst"]

        bot.connection.cap("REQ", "message-tags", "server-time")
        pump_until(lambda: got("cap", "ACK") or got("cap", "NAK"), "CAP ACK")
        assert got("cap", "ACK"), raw[-5:]
        assert got("cap", "ACK")[0].arguments[1].split() == ["message-tags", "server-time"]

        bot.connection.join(channel)
        obs.expect(f":{mask} JOIN {channel}", pump=pump)
        pump_until(lambda: got("endofnames", channel), "end of NAMES")
        state = bot.channels[channel]
        assert sorted(state.users()) == sorted([nick, obs.nick])
        assert state.is_oper(obs.nick) and not state.is_oper(nick)

        obs.send(f"MODE {channel} +v {nick}")
        pump_until(lambda: got("mode", "+v", nick), "MODE +v")
        assert bot.channels[channel].is_voiced(nick)

        bot.connection.privmsg(channel, CHANNEL_TEXT)
        obs.expect(f":{mask} PRIVMSG {channel} :{CHANNEL_TEXT}", pump=pump)
        bot.connection.privmsg(obs.nick, PRIVATE_TEXT)
        obs.expect(f":{mask} PRIVMSG {obs.nick} :{PRIVATE_TEXT}", pump=pump)

        obs.send(f"PRIVMSG {channel} :{OBSERVER_CHANNEL_TEXT}",
                 f"PRIVMSG {nick} :{OBSERVER_PRIVATE_TEXT}")
        pump_until(lambda: got("pubmsg", OBSERVER_CHANNEL_TEXT) and got("privmsg", OBSERVER_PRIVATE_TEXT),
                   "the observer's messages")
        for kind, target, text in (("pubmsg", channel, OBSERVER_CHANNEL_TEXT),
                                   ("privmsg", nick, OBSERVER_PRIVATE_TEXT)):
            (event,) = got(kind, text)
            assert event.source == obs.mask and event.target == target
            tags = {t["key"]: t["value"] for t in event.tags or []}
            assert tags.get("msgid") and tags.get("time", "").endswith("Z"), event.tags

        bot.connection.quit("jaraco says bye")
        obs.expect(f":{mask} QUIT :Quit: jaraco says bye", pump=pump)
        pump_until(lambda: got("disconnect"), "disconnect")
        assert got("error"), "no ERROR before the server closed the link"
        assert not bot.connection.is_connected()
    finally:
        if bot.connection.is_connected():
            bot.connection.disconnect()
    problems = library_problems(caplog.records, ("irc.", "jaraco."))
    assert not problems, problems
    ircd_process.check_healthy()


# --- pydle -------------------------------------------------------------------------------

@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_pydle_client(ircd_process, observers, caplog, tls):
    """pydle.Client negotiates its IRCv3 caps, joins, learns the channel through NAMES and
    WHOX, talks both ways (with echo-message), and quits."""
    pydle = pytest.importorskip("pydle")
    suffix = "t" if tls else "p"
    nick, channel = f"pbot{suffix}", f"#pydle-{suffix}"
    mask = f"{nick}!~{nick}@{HOST}"
    obs = observers(ircd_process.port, f"pobs{suffix}")
    obs.join(channel)

    class PydleBot(pydle.Client):
        RECONNECT_ON_ERROR = False

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.events: list[tuple] = []

        async def on_connect(self):
            await super().on_connect()
            self.events.append(("connect",))

        async def on_join(self, channel, user):
            await super().on_join(channel, user)
            self.events.append(("join", channel, user))

        async def on_channel_message(self, target, by, message):
            await super().on_channel_message(target, by, message)
            self.events.append(("channel", target, by, message))

        async def on_private_message(self, target, by, message):
            await super().on_private_message(target, by, message)
            self.events.append(("private", target, by, message))

        async def on_disconnect(self, expected):
            self.events.append(("disconnect", expected))
            await super().on_disconnect(expected)

    async def session():
        bot = PydleBot(nick, realname="pydle bot")

        async def until(condition, what: str, timeout: float = TIMEOUT):
            deadline = time.monotonic() + timeout
            while not condition():
                if time.monotonic() > deadline:
                    raise AssertionError(f"pydle: timed out waiting for {what}; events: {bot.events}")
                await asyncio.sleep(0.01)

        async def expect(line: str):
            return await asyncio.to_thread(obs.expect, line)

        await bot.connect(HOST, ircd_process.tls_port if tls else ircd_process.port,
                          tls=tls, tls_verify=False)
        try:
            await until(lambda: ("connect",) in bot.events, "registration")
            assert bot.nickname == nick
            assert bot.network == NETWORK
            wanted = {"multi-prefix", "message-tags", "echo-message", "extended-join",
                      "userhost-in-names", "away-notify", "account-notify", "account-tag",
                      "chghost", "cap-notify", "invite-notify"}
            acked = {cap for cap, on in bot._capabilities.items() if on is True}
            assert wanted <= acked, (wanted - acked, bot._capabilities)

            await bot.join(channel)
            await expect(f":{mask} JOIN {channel}")
            # NAMES (with userhost-in-names and multi-prefix) and WHOX fill pydle's records
            await until(lambda: channel in bot.channels
                        and bot.channels[channel]["users"] == {nick, obs.nick}
                        and bot.users.get(obs.nick, {}).get("realname") == obs.realname,
                        "channel users and the observer's WHOX record")
            assert bot.users[obs.nick]["username"] == f"~{obs.nick}"
            assert bot.users[obs.nick]["hostname"] == HOST
            assert obs.nick in bot.channels[channel]["modes"].get("o", [])

            await bot.message(channel, CHANNEL_TEXT)
            await expect(f":{mask} PRIVMSG {channel} :{CHANNEL_TEXT}")
            await until(lambda: ("channel", channel, nick, CHANNEL_TEXT) in bot.events, "echo")
            await bot.message(obs.nick, PRIVATE_TEXT)
            await expect(f":{mask} PRIVMSG {obs.nick} :{PRIVATE_TEXT}")

            obs.send(f"PRIVMSG {channel} :{OBSERVER_CHANNEL_TEXT}",
                     f"PRIVMSG {nick} :{OBSERVER_PRIVATE_TEXT}")
            await until(lambda: ("channel", channel, obs.nick, OBSERVER_CHANNEL_TEXT) in bot.events
                        and ("private", nick, obs.nick, OBSERVER_PRIVATE_TEXT) in bot.events,
                        "the observer's messages")

            await bot.quit("pydle says bye")
            await expect(f":{mask} QUIT :Quit: pydle says bye")
            await until(lambda: ("disconnect", True) in bot.events, "disconnect")
        finally:
            if bot.connected:
                await bot.disconnect(expected=True)
        return bot

    bot = asyncio.run(asyncio.wait_for(session(), 15))
    gc.collect()   # an unretrieved task exception is logged when the task is collected
    assert ("disconnect", False) not in bot.events

    def expected_after_quit(record: logging.LogRecord) -> bool:
        """Two things pydle logs after its own quit() that every server that answers QUIT
        with ERROR (RFC 2812 3.1.7, as mature ircds do) would provoke: it logs the
        `ERROR :Closing Link` line as an error, and over TLS, since quit() sends
        close_notify right after QUIT, asyncio's TLS layer fails pydle's reader task
        (never awaited) when that ERROR line arrives after its close_notify."""
        if record.exc_info and record.exc_info[0].__name__ == "ServerError":
            return str(record.exc_info[1]) == f"Closing Link: {HOST} (Quit: pydle says bye)"
        return (tls and record.name == "asyncio"
                and "APPLICATION_DATA_AFTER_CLOSE_NOTIFY" in record.getMessage())
    records = [r for r in caplog.records if not expected_after_quit(r)]
    problems = library_problems(records, ("pydle", "PydleBot", "asyncio"))
    assert not problems, problems
    ircd_process.check_healthy()


# --- a Limnoria bot ----------------------------------------------------------------------

LIMNORIA_QUIT = "Limnoria interop test over"  # registry values are escaped ASCII
LIMNORIA_CONF = """\
supybot.nick: {nick}
supybot.ident: {nick}
supybot.user: Limnoria interop bot
supybot.networks: libnet
supybot.networks.libnet.servers: {host}:{port}
supybot.networks.libnet.ssl: True
supybot.networks.libnet.ssl.serverFingerprints: {fingerprint}
supybot.networks.libnet.channels: {channel}
supybot.protocols.irc.throttleTime: 0.0
supybot.reply.whenAddressedBy.chars: @
supybot.plugins.Owner.quitMsg: {quit_message}
supybot.plugins: Admin Channel Config Misc Owner User Utilities
supybot.plugins.Admin: True
supybot.plugins.Channel: True
supybot.plugins.Config: True
supybot.plugins.Misc: True
supybot.plugins.Owner: True
supybot.plugins.User: True
supybot.plugins.Utilities: True
supybot.log.level: DEBUG
supybot.log.stdout: True
supybot.log.stdout.level: DEBUG
supybot.log.stdout.colorized: False
supybot.directories.conf: conf
supybot.directories.data: data
supybot.directories.backup: backup
supybot.directories.log: logs
supybot.directories.plugins: plugins
"""


def test_limnoria_bot(ircd_process, observers, tmp_path):
    """A Limnoria process connects over TLS (pinned fingerprint), negotiates labeled-response
    and echo-message, sets +B, joins and syncs the channel with labeled queries, answers
    `@echo` and `nick: echo` in the channel and `echo` in private, and quits on SIGINT."""
    pytest.importorskip("supybot")
    nick, channel = "limbot", "#limnoria"
    mask = f"{nick}!~{nick}@{HOST}"
    obs = observers(ircd_process.port, "limobs")
    obs.join(channel)

    (tmp_path / "conf").mkdir()
    (tmp_path / "plugins").mkdir()
    for name in ("users.conf", "channels.conf", "networks.conf", "ignores.conf"):
        (tmp_path / "conf" / name).write_text("")
    (tmp_path / "bot.conf").write_text(LIMNORIA_CONF.format(
        nick=nick, host=HOST, port=ircd_process.tls_port, channel=channel,
        fingerprint=cert_sha256(ircd_process), quit_message=LIMNORIA_QUIT))
    log_path = tmp_path / "limnoria.log"

    def bot_log() -> str:
        return log_path.read_text(errors="replace")

    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; from supybot.scripts.limnoria import main; "
             "sys.argv[0] = 'supybot'; sys.exit(main())", "--allow-root", "bot.conf"],
            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        try:
            obs.expect(f":{mask} JOIN {channel}", timeout=15)
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- Limnoria log ---\n{bot_log()[-4000:]}") from None

        def expect(match, what: str | None = None) -> str:
            try:
                return obs.expect(match, what=what)
            except AssertionError as e:
                raise AssertionError(f"{e}\n--- Limnoria log ---\n{bot_log()[-4000:]}") from None

        # Limnoria prefixes a channel reply with the asker's nick unless the server supports
        # the +reply client tag (message-tags), which recent versions use instead.
        def channel_reply(text: str) -> str:
            answers = {f":{mask} PRIVMSG {channel} :{text}",
                       f":{mask} PRIVMSG {channel} :{obs.nick}: {text}"}
            return expect(lambda line: line in answers, what=" or ".join(sorted(answers)))

        obs.send(f"PRIVMSG {channel} :@echo hi there ✓")
        channel_reply("hi there ✓")
        obs.send(f"PRIVMSG {channel} :{nick}: echo addressed by nick")
        channel_reply("addressed by nick")
        obs.send(f"PRIVMSG {nick} :echo in private")
        expect(f":{mask} NOTICE {obs.nick} :in private")

        # Limnoria set +B itself (ISUPPORT BOT=B); WHO shows it.
        obs.send(f"WHO {nick}")
        who = expect(lambda line: line.split(" ")[1:3] == ["352", obs.nick], what="352")
        assert "B" in who.split(" ")[8], who

        # The channel sync (MODE, MODE b, WHOX, each labeled) completed.
        deadline = time.monotonic() + TIMEOUT
        while f"Join to {channel} on libnet synced" not in bot_log():
            assert time.monotonic() < deadline, bot_log()[-4000:]
            time.sleep(0.05)

        # With echo-message on, Limnoria must not answer its own (echoed) replies.
        extra = [line for line in obs.quiet(0.3) if line.startswith(f":{mask} ")]
        assert not extra, extra

        proc.send_signal(signal.SIGINT)
        expect(f":{mask} QUIT :Quit: {LIMNORIA_QUIT}")
        assert proc.wait(10) == 0, bot_log()[-4000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)

    text = bot_log()
    ack = [line for line in text.splitlines() if "Server acknowledged capabilities" in line]
    assert ack and re.search(r"\blabeled-response\b", ack[0]) and "echo-message" in ack[0], ack
    # Every labeled command got its labeled answer (QUIT's ERROR arrives after the bot
    # stopped reading, so it is not in the log).
    sent = set(re.findall(r"Outgoing message \(libnet\): @(?:[^ ]*;)?label=([^ ;]+)[^ ]* (?!QUIT)",
                          text))
    answered = set(re.findall(r"Incoming message \(libnet\): @(?:[^ ]*;)?label=([^ ;]+)", text))
    assert len(sent) >= 7 and sent <= answered, (sent - answered, text[-4000:])
    problems = [line for line in text.splitlines()
                if line.startswith(("ERROR", "CRITICAL")) or "Traceback" in line
                or (line.startswith("WARNING") and "Invalid plugin directory" not in line)]
    assert not problems, "\n".join(problems)
    ircd_process.check_healthy()
