#!/usr/bin/env python3
"""Drive a real IRC client, irssi, against this server and check what happens.

    python tools/irssi_session.py          # PASS/FAIL transcript, exit status 0/1
    python tools/irssi_session.py -v       # also print every line irssi and the server exchanged
    python tools/irssi_session.py --keep   # keep the temporary directory (logs, configs)

Needs `irssi` and `tmux` on PATH (Debian: apt-get install irssi tmux).
tests/test_real_client.py runs the same scenario under pytest.

What it does, everything on 127.0.0.1 and every wait bounded by a timeout:

* starts this server (`python -m ircd run --config ...`) as a subprocess on a free port,
  with a temporary config: flood control on and the default limits;
* connects a raw-socket client ("rawpeer") that joins #test;
* starts irssi in a detached tmux session on a private tmux socket, with a temporary home
  and config (no scripts, no autoconnect, no ~/.irssi, nothing saved), connected to the
  server through a small recording relay so that every line irssi and the server
  exchange is on record. Two irssi settings differ from its defaults, for speed:
  cmd_queue_speed 100 ms (irssi's own send pacing; --irssi-pacing keeps the default
  2200 ms) and group_multi_mode off (irssi holds MODE lines back ~3 s to merge them);
* types into irssi with `tmux send-keys`: /join #test, /msg #test ..., /topic ..., /topic,
  /whois rawpeer, /part, /quit;
* checks what the raw client receives from irssi (JOIN, PRIVMSG text, TOPIC, PART), that
  a message the raw client sends shows up in irssi's window (`tmux capture-pane -p`),
  that irssi's post-join channel queries (MODE #chan, a WHOX query, MODE #chan b) are
  answered, and that irssi and the server both exit cleanly.

Besides PASS/FAIL it lists "notes": error numerics the server sent to irssi (with the
last lines irssi had sent before), irssi reconnects, and warnings or errors in the
server's log (an ERROR or a traceback there fails the session).  Only the processes and the tmux server it started are ever stopped (by
PID, and by its own tmux socket), and its temporary directory is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHANNEL = "#test"
IRSSI_NICK = "irssiuser"
RAW_NICK = "rawpeer"
RAW_REALNAME = "Raw Socket Peer"
IRSSI_REALNAME = "irssi under test"

MSG_FROM_IRSSI = "hello from irssi"
MSG_FROM_RAW = "hello from the raw socket"
UTF8_FROM_IRSSI = "caf\u00e9 na\u00efve \u2713 from irssi"
FIRST_TOPIC = "first topic, set by rawpeer"
TOPIC_TEXT = "topic set by irssi"
PART_REASON = "leaving the test"
QUIT_REASON = "irssi session over"


class StepFailed(Exception):
    pass


@dataclass
class SessionResult:
    ok: bool
    transcript: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    traffic: list[str] = field(default_factory=list)
    failed_step: str | None = None

    def text(self) -> str:
        return "\n".join(self.transcript)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.05):
    """Poll predicate() until it returns something true or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


class LineLog:
    """Lines received by a reader thread, with a condition to wait for one."""

    def __init__(self):
        self.items: list[tuple[float, str, str]] = []  # (monotonic time, direction, line)
        self.cond = threading.Condition()
        self.eof: set[str] = set()

    def add(self, direction: str, line: str) -> None:
        with self.cond:
            self.items.append((time.monotonic(), direction, line))
            self.cond.notify_all()

    def mark_eof(self, direction: str) -> None:
        with self.cond:
            self.eof.add(direction)
            self.cond.notify_all()

    def wait_for(self, predicate, timeout: float, start: int = 0, direction: str | None = None):
        """The first line (from index start) matching predicate, or None after timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            i = start
            while True:
                while i < len(self.items):
                    _, d, line = self.items[i]
                    i += 1
                    if (direction is None or d == direction) and predicate(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def mark(self) -> int:
        with self.cond:
            return len(self.items)


def _split_lines(buffer: bytearray):
    while True:
        i = buffer.find(b"\n")
        if i < 0:
            return
        raw = bytes(buffer[:i]).rstrip(b"\r")
        del buffer[:i + 1]
        yield raw.decode("utf-8", errors="replace")


def irc_parts(line: str) -> tuple[str, str, list[str]]:
    """(source, command, params) of a raw IRC line; tags are dropped."""
    if line.startswith("@"):
        line = line.partition(" ")[2]
    source = ""
    if line.startswith(":"):
        source, _, line = line[1:].partition(" ")
    line = line.lstrip(" ")
    trailing = None
    if " :" in line:
        line, _, trailing = line.partition(" :")
    elif line.startswith(":"):
        line, trailing = "", line[1:]
    words = line.split()
    command = words[0].upper() if words else ""
    params = words[1:]
    if trailing is not None:
        params.append(trailing)
    return source, command, params


class RawClient:
    """A plain-socket IRC client; a reader thread keeps every line and answers PING."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.settimeout(None)
        self.log = LineLog()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def send(self, line: str) -> None:
        with self.lock:
            self.sock.sendall(line.encode() + b"\r\n")

    def _read(self) -> None:
        buffer = bytearray()
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                buffer += data
                for line in _split_lines(buffer):
                    self.log.add("in", line)
                    _, command, params = irc_parts(line)
                    if command == "PING":
                        self.send("PONG :" + (params[-1] if params else ""))
        except OSError:
            pass
        self.log.mark_eof("in")

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class RecordingRelay:
    """A TCP relay between irssi and the server that records every line both ways.

    Bytes are forwarded unchanged; a copy is split into lines for the record.
    """

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.log = LineLog()  # directions: "irssi" (irssi -> server), "server" (server -> irssi)
        self.connections = 0
        self.socks: list[socket.socket] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                down, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            self.log.add("relay", f"connection {self.connections} from irssi")
            try:
                up = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
                up.settimeout(None)
            except OSError as e:
                self.log.add("relay", f"cannot reach the server: {e}")
                down.close()
                continue
            down.settimeout(None)
            self.socks += [down, up]
            for src, dst, direction in ((down, up, "irssi"), (up, down, "server")):
                threading.Thread(target=self._pump, args=(src, dst, direction), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, direction: str) -> None:
        buffer = bytearray()
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                buffer += data
                for line in _split_lines(buffer):
                    self.log.add(direction, line)
                dst.sendall(data)
        except OSError:
            pass
        if buffer:
            self.log.add(direction, bytes(buffer).decode("utf-8", "replace") + "  [no line end]")
        self.log.add("relay", f"{direction} closed its side")
        self.log.mark_eof(direction)
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self.stopping.set()
        for s in [self.listener, *self.socks]:
            try:
                s.close()
            except OSError:
                pass


IRSSI_CONFIG = """\
servers = ( );
chatnets = {{ }};
channels = ( );
aliases = {{ }};
settings = {{
  core = {{
    real_name = "{realname}";
    user_name = "{nick}";
    nick = "{nick}";
    settings_autosave = "no";
    rawlog_lines = "5000";
  }};
  "irc/core" = {{{pacing}
  }};
  "fe-common/core" = {{
    autolog = "no";
    beep_msg_level = "";
  }};
  "fe-common/irc" = {{
    group_multi_mode = "no";
  }};
  "fe-text" = {{ actlist_sort = "refnum"; }};
}};
logs = {{
  "{log}" = {{ auto_open = "yes"; level = "ALL"; }};
}};
"""

TMUX_CONF = """\
set -g remain-on-exit on
set -g status off
set -g default-terminal "screen"
set -g history-limit 5000
"""


class Tmux:
    """One tmux server on a private socket, running irssi in one detached session."""

    def __init__(self, workdir: Path, env: dict):
        self.socket = workdir / "tmux.sock"
        self.conf = workdir / "tmux.conf"
        self.conf.write_text(TMUX_CONF)
        self.name = f"irssi-session-{os.getpid()}-{int(time.time() * 1000) % 100000}"
        self.env = env
        self.started = False
        self.server_pid: int | None = None
        self.pane_pid: int | None = None

    def run(self, *args: str, timeout: float = 5.0, check: bool = True) -> str:
        proc = subprocess.run(["tmux", "-S", str(self.socket), "-f", str(self.conf), *args],
                              env=self.env, capture_output=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise StepFailed(f"tmux {' '.join(args)} failed: {proc.stderr.decode(errors='replace').strip()}")
        return proc.stdout.decode("utf-8", errors="replace")

    def start(self, command: list[str]) -> None:
        self.run("new-session", "-d", "-s", self.name, "-x", "200", "-y", "50", "--", *command)
        self.started = True
        info = self.run("display-message", "-p", "-t", self.name, "#{pid} #{pane_pid}").split()
        self.server_pid, self.pane_pid = int(info[0]), int(info[1])

    def type(self, text: str) -> None:
        self.run("send-keys", "-t", self.name, "-l", text)
        self.run("send-keys", "-t", self.name, "Enter")

    def capture(self) -> str:
        try:
            return self.run("capture-pane", "-p", "-J", "-t", self.name)
        except (StepFailed, subprocess.TimeoutExpired):
            return ""

    def pane_dead(self) -> tuple[bool, str]:
        """(whether irssi has exited, its exit status: "0", "signal N", or "" when unknown).

        tmux marks the pane dead when the terminal closes, a moment before it reaps the
        process and learns the status; while the status is missing, ask again (up to 2 s).
        """
        deadline = time.monotonic() + 2
        while True:
            try:
                proc = subprocess.run(
                    ["tmux", "-S", str(self.socket), "display-message", "-p", "-t", self.name,
                     "#{pane_dead};#{pane_dead_status};#{pane_dead_signal}"],
                    env=self.env, capture_output=True, timeout=5, stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                return False, ""
            if proc.returncode != 0:
                return True, ""  # the session is gone: irssi has certainly exited
            dead, status, sig = (proc.stdout.decode(errors="replace").strip().split(";") + ["", ""])[:3]
            if dead != "1":
                return False, ""
            if status:
                return True, status
            if sig:
                return True, f"signal {sig}"
            if time.monotonic() >= deadline:
                return True, ""
            time.sleep(0.05)

    def close(self) -> None:
        if not self.started:
            return
        try:
            self.run("kill-session", "-t", self.name, check=False)
            self.run("kill-server", check=False)
        except subprocess.TimeoutExpired:
            pass
        # Whatever survived of what we started (irssi, then our tmux server), by PID.
        for pid in (self.pane_pid, self.server_pid):
            if pid and _alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


SERVER_CONFIG = """\
[server]
name = "irc.session.test"
network = "SessionNet"
description = "irssi session test server"
data_dir = "data"

[[listen]]
host = "127.0.0.1"
port = {port}

[limits]
flood_control = true

[logging]
level = "info"
"""


class Session:
    def __init__(self, *, server_cmd: list[str] | None, echo: bool, timeout_scale: float,
                 workdir: Path, irssi_pacing: bool = False, linked: bool = False):
        self.irssi_pacing = irssi_pacing
        self.linked = linked            # irssi on one server, the raw client on a linked one
        self.network = []               # tools/ircnet.py servers, when linked
        self.server_cmd = server_cmd or [sys.executable, "-m", "ircd"]
        self.echo = echo
        self.scale = timeout_scale
        self.dir = workdir
        self.t0 = time.monotonic()
        self.transcript: list[str] = []
        self.notes: list[str] = []
        self.server: subprocess.Popen | None = None
        self.server_log = self.dir / "server.log"
        self.raw: RawClient | None = None
        self.relay: RecordingRelay | None = None
        self.tmux: Tmux | None = None
        self.irssi_home = self.dir / "irssi-home"
        self.irssi_log = self.dir / "irssi-all.log"

    # -- transcript ------------------------------------------------------------------
    def say(self, text: str) -> None:
        line = f"[{time.monotonic() - self.t0:6.2f}s] {text}"
        self.transcript.append(line)
        if self.echo:
            print(line, flush=True)

    def passed(self, text: str) -> None:
        self.say("PASS  " + text)

    def t(self, seconds: float) -> float:
        # irssi's own pacing sends one command per ~2.5 s: waits for irssi grow with it.
        return seconds * self.scale * (3 if self.irssi_pacing else 1)

    # -- pieces ----------------------------------------------------------------------
    def start_network(self) -> tuple[int, int]:
        """Two linked servers (tools/ircnet.py): irssi's and the raw client's."""
        ircnet = _load_ircnet()
        self.network = ircnet.plan(2, "chain", self.dir / "net")
        ircnet.write(self.network, limits={"flood_control": True})
        for server in self.network:
            ircnet.start(server)
        for server in self.network:
            ircnet.wait_listening(server, self.t(15))
        first, second = self.network
        self.server, self.server_log = first.proc, first.dir / "ircd.log"
        linked = wait_until(lambda: all("burst from" in (s.dir / "ircd.log").read_text()
                                        for s in self.network), self.t(15), 0.1)
        if not linked:
            raise StepFailed(f"{first.name} and {second.name} did not link within {self.t(15):.0f}s")
        self.passed(f"{first.name} (pid {first.proc.pid}, port {first.port}) and {second.name} "
                    f"(pid {second.proc.pid}, port {second.port}) are linked")
        return first.port, second.port

    def logs(self) -> list[Path]:
        return [s.dir / "ircd.log" for s in self.network] if self.network else [self.server_log]

    def start_server(self) -> int:
        port = free_port()
        config = self.dir / "ircd.toml"
        config.write_text(SERVER_CONFIG.format(port=port))
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        log = open(self.server_log, "wb")
        self.server = subprocess.Popen([*self.server_cmd, "run", "--config", str(config)],
                                       cwd=self.dir, env=env, stdin=subprocess.DEVNULL,
                                       stdout=log, stderr=subprocess.STDOUT)
        log.close()

        def listening():
            if self.server.poll() is not None:
                raise StepFailed(f"server exited with status {self.server.returncode} at startup")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return True
            except OSError:
                return False
        if not wait_until(listening, self.t(15), 0.05):
            raise StepFailed(f"server not listening on 127.0.0.1:{port} after {self.t(15):.0f}s")
        self.passed(f"server running (pid {self.server.pid}) on 127.0.0.1:{port}, flood control on")
        return port

    def expect_raw(self, what: str, predicate, timeout: float, start: int) -> str:
        line = self.raw.log.wait_for(predicate, self.t(timeout), start)
        if line is None:
            raise StepFailed(f"raw client never received {what} within {self.t(timeout):.1f}s")
        return line

    def expect_relay(self, what: str, direction: str, predicate, timeout: float, start: int = 0) -> str:
        line = self.relay.log.wait_for(predicate, self.t(timeout), start, direction)
        if line is None:
            who = "irssi never sent" if direction == "irssi" else "the server never sent irssi"
            raise StepFailed(f"{who} {what} within {self.t(timeout):.1f}s")
        return line

    def expect_pane(self, what: str, predicate, timeout: float) -> str:
        found = wait_until(lambda: predicate(self.tmux.capture()), self.t(timeout), 0.1)
        if not found:
            raise StepFailed(f"irssi's window never showed {what} within {self.t(timeout):.1f}s")
        return found

    def irssi_log_text(self) -> str:
        try:
            return self.irssi_log.read_text("utf-8", errors="replace")
        except OSError:
            return ""

    def expect_irssi_log(self, what: str, predicate, timeout: float, start: int = 0) -> str:
        found = wait_until(lambda: predicate(self.irssi_log_text()[start:]), self.t(timeout), 0.1)
        if not found:
            raise StepFailed(f"irssi never displayed {what} within {self.t(timeout):.1f}s")
        return found

    def start_irssi(self, port: int) -> None:
        self.irssi_home.mkdir()
        (self.irssi_home / "scripts" / "autorun").mkdir(parents=True)
        config = self.irssi_home / "config"
        # irssi paces its own commands (cmd_queue_speed: one per 2200 ms once a burst of
        # 5 is used up), so that the scenario would take half a minute. Unless
        # irssi_pacing is asked for, it may send one per 100 ms, more than the server's
        # flood_rate (4/s): the server's flood control then has work to do as well.
        # (group_multi_mode = no: irssi otherwise holds a MODE line back ~3 s to merge it.)
        pacing = "" if self.irssi_pacing else '\n    cmd_queue_speed = "100msec";'
        config.write_text(IRSSI_CONFIG.format(realname=IRSSI_REALNAME, nick=IRSSI_NICK,
                                              log=self.irssi_log, pacing=pacing))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TMUX", "IRSSI"))}
        env.update(HOME=str(self.dir), LANG="C.UTF-8", LC_ALL="C.UTF-8", TERM="screen")
        env.pop("LANGUAGE", None)
        self.tmux = Tmux(self.dir, env)
        self.tmux.start(["irssi", f"--home={self.irssi_home}", f"--config={config}",
                         "--connect=127.0.0.1", f"--port={port}", f"--nick={IRSSI_NICK}"])
        self.passed(f"irssi started in tmux session {self.tmux.name} (pane pid {self.tmux.pane_pid})")

    def check_pane_alive(self) -> None:
        dead, status = self.tmux.pane_dead()
        if dead:
            raise StepFailed(f"irssi exited early ({status or 'status unknown'}); "
                             f"its screen:\n{self.tmux.capture()}")

    # -- the scenario ----------------------------------------------------------------
    def run(self) -> None:
        if self.linked:
            port, raw_port = self.start_network()
        else:
            port = raw_port = self.start_server()

        # The raw client registers and waits in the channel.
        self.raw = RawClient(raw_port)
        self.raw.send(f"NICK {RAW_NICK}")
        self.raw.send(f"USER {RAW_NICK} 0 * :{RAW_REALNAME}")
        self.expect_raw("001 (registration)", lambda l: irc_parts(l)[1] == "001", 10, 0)
        mark = self.raw.log.mark()
        self.raw.send(f"JOIN {CHANNEL}")
        self.expect_raw(f"366 for {CHANNEL}", lambda l: irc_parts(l)[1] == "366", 5, mark)
        mark = self.raw.log.mark()
        self.raw.send(f"TOPIC {CHANNEL} :{FIRST_TOPIC}")
        self.expect_raw("its TOPIC echoed", lambda l: irc_parts(l)[1] == "TOPIC", 5, mark)
        self.passed(f"raw client {RAW_NICK} registered, joined {CHANNEL} and set its topic")

        # irssi connects through the recording relay.
        self.relay = RecordingRelay(port)
        self.start_irssi(self.relay.port)
        self.expect_relay("001 (registration)", "server", lambda l: irc_parts(l)[1] == "001", 15)
        self.expect_irssi_log("the end of the MOTD", lambda text: "End of /MOTD" in text
                              or "MOTD File is missing" in text, 10)
        if "Unknown settings in configuration file" in self.irssi_log_text():
            raise StepFailed("irssi rejected part of the generated config (harness bug): "
                             + self.irssi_log_text())
        caps = [l for _, d, l in self.relay.log.items if d == "irssi" and l.upper().startswith("CAP REQ")]
        self.passed("irssi registered" + (f" ({caps[0]})" if caps else " (no CAP REQ)"))
        self.check_pane_alive()

        # /join
        mark = self.raw.log.mark()
        relay_mark = self.relay.log.mark()
        self.tmux.type(f"/join {CHANNEL}")
        line = self.expect_raw(f"irssi's JOIN {CHANNEL}", lambda l: irc_parts(l)[1] == "JOIN"
                               and irc_parts(l)[0].startswith(IRSSI_NICK + "!")
                               and irc_parts(l)[2][:1] == [CHANNEL], 5, mark)
        self.passed(f"raw client saw irssi join: {line}")
        self.expect_pane(f"its own join to {CHANNEL}",
                         lambda s: f"has joined {CHANNEL}" in s and RAW_NICK in s, 5)
        self.expect_pane("the channel's topic (332/333)",
                         lambda s: f"Topic for {CHANNEL}: {FIRST_TOPIC}" in s
                         and f"Topic set by {RAW_NICK}" in s, 5)
        self.passed(f"irssi's window shows the join, the topic (and who set it) and {RAW_NICK} "
                    "in the names list")

        # irssi's channel synchronisation: MODE #chan, WHO (WHOX), MODE #chan b.
        self.channel_sync(relay_mark)

        # /msg #test ... (irssi -> raw client), with and without non-ASCII text
        for text in (MSG_FROM_IRSSI, UTF8_FROM_IRSSI):
            mark = self.raw.log.mark()
            self.tmux.type(f"/msg {CHANNEL} {text}")
            line = self.expect_raw(f"irssi's PRIVMSG {text!r}",
                                   lambda l: irc_parts(l)[1] == "PRIVMSG"
                                   and irc_parts(l)[0].startswith(IRSSI_NICK + "!")
                                   and irc_parts(l)[2] == [CHANNEL, text], 5, mark)
            self.passed(f"raw client received irssi's message: {line}")

        # raw client -> irssi's window
        self.raw.send(f"PRIVMSG {CHANNEL} :{MSG_FROM_RAW}")
        self.expect_pane(f"{RAW_NICK}'s message {MSG_FROM_RAW!r}",
                         lambda s: any(RAW_NICK in row and MSG_FROM_RAW in row for row in s.splitlines()), 5)
        self.passed(f"irssi's window shows {RAW_NICK}'s message {MSG_FROM_RAW!r}")

        # The raw client (channel creator, so operator) gives irssi +o, needed for /topic (+t).
        relay_mark = self.relay.log.mark()
        self.raw.send(f"MODE {CHANNEL} +o {IRSSI_NICK}")
        line = self.expect_relay("the MODE +o", "server", lambda l: irc_parts(l)[1] == "MODE"
                                 and irc_parts(l)[2][:1] == [CHANNEL], 5, relay_mark)
        self.expect_pane("the op", lambda s: f"mode/{CHANNEL} [+o {IRSSI_NICK}] by {RAW_NICK}" in s, 5)
        self.passed(f"irssi shows 'mode/{CHANNEL} [+o {IRSSI_NICK}] by {RAW_NICK}' ({line})")

        # /topic <text> sets it; /topic alone asks for it.
        mark = self.raw.log.mark()
        self.tmux.type(f"/topic {TOPIC_TEXT}")
        line = self.expect_raw("irssi's TOPIC", lambda l: irc_parts(l)[1] == "TOPIC"
                               and irc_parts(l)[2] == [CHANNEL, TOPIC_TEXT], 5, mark)
        self.passed(f"raw client saw the topic change: {line}")
        self.expect_pane("its topic change", lambda s: f"changed the topic of {CHANNEL} to: {TOPIC_TEXT}" in s, 5)
        self.tmux.type("/topic")  # irssi answers this one from what it knows, without asking
        self.expect_pane("the topic", lambda s: f"Topic for {CHANNEL}: {TOPIC_TEXT}" in s, 5)
        self.passed(f"irssi's window shows the change and, on /topic, 'Topic for {CHANNEL}: {TOPIC_TEXT}'")

        # /whois rawpeer
        relay_mark = self.relay.log.mark()
        log_mark = len(self.irssi_log_text())
        self.tmux.type(f"/whois {RAW_NICK}")
        self.expect_relay("RPL_ENDOFWHOIS (318)", "server", lambda l: irc_parts(l)[1] == "318", 5, relay_mark)
        self.expect_irssi_log(f"the WHOIS of {RAW_NICK}",
                              lambda text: RAW_REALNAME in text and "End of WHOIS" in text, 5, log_mark)
        self.passed(f"irssi's WHOIS {RAW_NICK} shows the realname {RAW_REALNAME!r} and End of WHOIS")

        # /part
        mark = self.raw.log.mark()
        self.tmux.type(f"/part {CHANNEL} {PART_REASON}")
        line = self.expect_raw("irssi's PART", lambda l: irc_parts(l)[1] == "PART"
                               and irc_parts(l)[0].startswith(IRSSI_NICK + "!")
                               and irc_parts(l)[2][:1] == [CHANNEL], 5, mark)
        if irc_parts(line)[2][1:] != [PART_REASON]:
            raise StepFailed(f"PART reason lost: {line}")
        self.passed(f"raw client saw irssi part: {line}")

        # /quit: irssi sends QUIT, the server closes the connection, irssi exits with 0.
        self.tmux.type(f"/quit {QUIT_REASON}")
        line = self.expect_relay("QUIT", "irssi", lambda l: irc_parts(l)[1] == "QUIT", 5)
        if irc_parts(line)[2] != [QUIT_REASON]:
            raise StepFailed(f"irssi's QUIT has an unexpected form: {line}")
        state = wait_until(lambda: (lambda st: st if st[0] else None)(self.tmux.pane_dead()),
                           self.t(8), 0.1)
        if not state:
            raise StepFailed("irssi still running 8s after /quit")
        status = state[1]
        if status and status != "0":
            raise StepFailed(f"irssi exited with {'status ' if status.isdigit() else ''}{status}")
        if not status:
            self.notes.append("tmux did not report irssi's exit status")
        if not wait_until(lambda: "server" in self.relay.log.eof, self.t(5)):
            raise StepFailed("the server did not close irssi's connection after QUIT")
        self.passed(f"irssi quit ({line}), the server closed the connection, irssi exited"
                    + (" with 0" if status == "0" else ""))

        # The raw client leaves; the server stops cleanly.
        mark = self.raw.log.mark()
        self.raw.send("QUIT :done")
        self.expect_raw("ERROR after QUIT", lambda l: irc_parts(l)[1] == "ERROR", 5, mark)
        self.stop_server()

    def channel_sync(self, relay_mark: int) -> None:
        """irssi queries a channel after joining; each query must get its end reply."""
        start = time.monotonic()
        queries = [("MODE #chan", lambda p: p[:1] == [CHANNEL] and len(p) == 1, "MODE", {"324"}),
                   ("WHO #chan %...", lambda p: p[:1] == [CHANNEL], "WHO", {"315"}),
                   ("MODE #chan b", lambda p: p[:2] == [CHANNEL, "b"], "MODE", {"368"})]
        seen = []
        for label, match, command, ends in queries:
            sent = self.expect_relay(f"its post-join query {label}", "irssi",
                                     lambda l: irc_parts(l)[1] == command and match(irc_parts(l)[2]),
                                     12, relay_mark)
            i = next(i for i in range(relay_mark, len(self.relay.log.items))
                     if self.relay.log.items[i][2] == sent)
            reply = self.expect_relay(f"the end reply {'/'.join(sorted(ends))} to {sent!r}", "server",
                                      lambda l: irc_parts(l)[1] in ends
                                      or irc_parts(l)[1][:1] in ("4", "5"), 5, i)
            if irc_parts(reply)[1][:1] in ("4", "5"):
                raise StepFailed(f"irssi sent {sent!r}; the server answered with an error: {reply}")
            seen.append(sent)
        self.passed(f"irssi's channel queries answered in {time.monotonic() - start:.1f}s: "
                    + "; ".join(seen))
        self.expect_irssi_log("'Join to #test was synced'", lambda text: f"Join to {CHANNEL} was synced" in text, 5)
        synced = re.search(rf"Join to {re.escape(CHANNEL)} was synced in (\d+) secs", self.irssi_log_text())
        self.passed(f"irssi reports the channel synced" + (f" in {synced.group(1)}s" if synced else ""))

    def stop_server(self) -> None:
        for proc in [s.proc for s in self.network] or [self.server]:
            proc.send_signal(signal.SIGTERM)
            try:
                status = proc.wait(timeout=self.t(10))
            except subprocess.TimeoutExpired:
                raise StepFailed(f"server (pid {proc.pid}) still running 10s after SIGTERM")
            if status != 0:
                raise StepFailed(f"server (pid {proc.pid}) exited with status {status} after SIGTERM")
        self.passed("server stopped cleanly on SIGTERM" if not self.network
                    else "both servers stopped cleanly on SIGTERM")

    # -- afterwards ------------------------------------------------------------------
    def collect_notes(self) -> None:
        if self.relay is not None:
            items = list(self.relay.log.items)
            if self.relay.connections > 1:
                self.notes.append(f"irssi connected {self.relay.connections} times (reconnects)")
            sent: list[str] = []  # what irssi had sent before (both directions are
            for _, direction, line in items:  # recorded by two threads: order is approximate)
                if direction == "irssi":
                    sent.append(line)
                elif direction == "server":
                    command = irc_parts(line)[1]
                    if len(command) == 3 and command.isdigit() and command[0] in "45":
                        self.notes.append(f"server error numeric to irssi: {line!r} "
                                          f"(irssi's last lines before it: {sent[-3:]!r})")
                    elif "[no line end]" in line:
                        self.notes.append(f"server line without CRLF: {line!r}")
        log = ""
        for path in self.logs():
            try:
                log += path.read_text("utf-8", errors="replace")
            except OSError:
                pass
        rows = log.splitlines()
        for i, row in enumerate(rows):
            if row.startswith("Traceback"):
                # The whole traceback, down to its exception line, as one note.
                j = i + 1
                while j < len(rows) and rows[j][:1] in (" ", "\t"):
                    j += 1
                self.notes.append("server log: " + " | ".join(r.strip() for r in rows[i:j + 1]))
            elif any(word in row for word in (" WARNING ", " ERROR ", " CRITICAL ")):
                self.notes.append("server log: " + row.strip())

    def dump_for_failure(self) -> list[str]:
        out = []
        if self.tmux is not None and self.tmux.started:
            screen = self.tmux.capture().rstrip()
            out += ["--- irssi's window (tmux capture-pane -p) ---",
                    *[row for row in screen.splitlines() if row.strip()]]
        log = self.irssi_log_text()
        if log:
            out += ["--- irssi's log, last 40 lines ---", *log.splitlines()[-40:]]
        if self.raw is not None:
            out += ["--- raw client received, last 25 lines ---",
                    *[line for _, _, line in self.raw.log.items[-25:]]]
        for path in self.logs():
            try:
                server_log = path.read_text("utf-8", errors="replace").splitlines()
            except OSError:
                server_log = []
            if server_log:
                out += [f"--- server log {path}, last 30 lines ---", *server_log[-30:]]
        return out

    def traffic(self) -> list[str]:
        if self.relay is None:
            return []
        arrows = {"irssi": "irssi  ->", "server": "server ->", "relay": "relay   "}
        return [f"{t - self.t0:6.2f}s {arrows.get(d, d)} {line}" for t, d, line in self.relay.log.items]

    def close(self) -> None:
        if self.tmux is not None:
            self.tmux.close()
        if self.raw is not None:
            self.raw.close()
        if self.relay is not None:
            self.relay.close()
        for proc in [s.proc for s in self.network] or [self.server]:
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)


def _load_ircnet():
    import importlib.util
    spec = importlib.util.spec_from_file_location("ircnet", Path(__file__).with_name("ircnet.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def missing_tools() -> list[str]:
    return [tool for tool in ("irssi", "tmux") if shutil.which(tool) is None]


def run_session(*, server_cmd: list[str] | None = None, echo: bool = False, verbose: bool = False,
                keep: bool = False, timeout_scale: float = 1.0,
                irssi_pacing: bool = False, linked: bool = False) -> SessionResult:
    """Run the whole scenario; never raises for a failed check (see SessionResult.ok)."""
    missing = missing_tools()
    if missing:
        return SessionResult(False, [f"FAIL  not installed: {', '.join(missing)}"],
                             failed_step="tools")
    workdir = Path(tempfile.mkdtemp(prefix="irssi-session-"))
    session = Session(server_cmd=server_cmd, echo=echo, timeout_scale=timeout_scale,
                      workdir=workdir, irssi_pacing=irssi_pacing, linked=linked)
    ok = False
    failed = None
    dump: list[str] = []
    try:
        session.run()
        ok = True
    except StepFailed as e:
        failed = str(e)
        session.say("FAIL  " + failed)
    except Exception as e:  # an error in the harness itself still ends in a report
        failed = f"{type(e).__name__}: {e}"
        session.say("FAIL  (harness error) " + failed)
    finally:
        try:
            if not ok:
                dump = session.dump_for_failure()
        finally:
            session.close()
            session.collect_notes()
            if keep:
                session.say(f"kept {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
    broken = [n for n in session.notes if n.startswith("server log:")
              and any(w in n for w in ("Traceback", " ERROR ", " CRITICAL "))]
    if ok and broken:
        ok = False
        failed = "the server logged errors during the session: " + "; ".join(broken)
        session.say("FAIL  " + failed)
    traffic = session.traffic()
    result = SessionResult(ok, session.transcript, session.notes, traffic, failed)
    if echo:
        if dump:
            print("\n".join(dump), flush=True)
        if verbose or not ok:
            print("--- lines between irssi and the server ---")
            print("\n".join(traffic))
        for note in session.notes:
            print("NOTE  " + note)
        print("RESULT: " + ("PASS" if ok else "FAIL"), flush=True)
    result.transcript += dump
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print every line irssi and the server exchanged")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--server-cmd", default=None,
                        help="command that runs the server, before 'run --config FILE' "
                             "(default: the current Python with -m ircd)")
    parser.add_argument("--timeout-scale", type=float, default=1.0,
                        help="multiply every timeout (slow machines)")
    parser.add_argument("--irssi-pacing", action="store_true",
                        help="keep irssi's own command pacing (cmd_queue_speed 2200 ms): "
                             "slower (about 30 s) but exactly irssi's defaults")
    parser.add_argument("--linked", action="store_true",
                        help="two linked servers: irssi on one, the raw client on the other")
    args = parser.parse_args(argv)
    missing = missing_tools()
    if missing:
        print(f"FAIL: not installed: {', '.join(missing)} (Debian: apt-get install irssi tmux)")
        return 1
    result = run_session(server_cmd=shlex.split(args.server_cmd) if args.server_cmd else None,
                         echo=True, verbose=args.verbose, keep=args.keep,
                         timeout_scale=args.timeout_scale, irssi_pacing=args.irssi_pacing,
                         linked=args.linked)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
