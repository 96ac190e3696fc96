"""Arbitrary bytes and lines thrown at a live server process: it must stay up and answer,
and log no exception.

The server runs as a real `ircd run` subprocess, so a crash anywhere shows up as a
dead process or a silent socket, whichever comes first; an exception a handler raised
and the server caught shows up in its log, which log_problems() reads.
"""

import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ircd.commands import COMMANDS
from irctest import assert_log_clean, free_port, log_entries, log_problems, server_env

READY = "fuzz.server ready (network FuzzNet)"
COMMAND_NAMES = sorted(COMMANDS) + ["CAP", "AUTHENTICATE", "", "PRIVMSG", "JOIN", "MODE"]


# -- the server process and its log ------------------------------------------------------

def launch_server(directory: Path, *, prelude: str = "") -> tuple[int, subprocess.Popen, Path]:
    """Start `ircd run` on a fresh port with stdout and stderr in directory/server.log.

    The log level is set to info in the config, so the server's own records (ERROR from
    log.exception included) reach the file. `prelude`, if given, is Python run in the
    server process before the command line is handed to ircd's `main` (as
    `python -m ircd run` would), for tests that need to plant a fault."""
    port = free_port()
    config = directory / "ircd.toml"
    config.write_text(f"""
[server]
name = "fuzz.server"
network = "FuzzNet"
data_dir = "data"

[[listen]]
host = "127.0.0.1"
port = {port}

[limits]
flood_control = false
max_connections_per_ip = 0

[logging]
level = "info"
""")
    args = ["run", "--config", str(config)]
    if prelude:
        code = textwrap.dedent(prelude) + f"\nfrom ircd.cli import main\nmain({args!r}, prog_name='ircd')\n"
        argv = [sys.executable, "-c", code]
    else:
        argv = [sys.executable, "-m", "ircd", *args]
    env = server_env()
    log_path = directory / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=directory, env=env)
    deadline = time.time() + 20
    while True:      # listening, and past the "ready" record (logged just after)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            if READY in log_path.read_text(errors="replace"):
                return port, proc, log_path
        except OSError:
            pass
        if time.time() > deadline or proc.poll() is not None:
            proc.kill()
            proc.wait()
            raise AssertionError("server did not start:\n" + log_path.read_text()[-3000:])
        time.sleep(0.1)


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def assert_log_captures_server_records(log_path: Path) -> None:
    """The log holds the server's INFO records, so an ERROR one would be there too."""
    entries = log_entries(log_path.read_text(errors="replace"))
    assert any(level == "INFO" and READY in entry
               for level, entry in entries), log_path.read_text()[-3000:]


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    port, proc, log_path = launch_server(tmp_path_factory.mktemp("fuzz"))
    yield port, proc, log_path
    stop_server(proc)


def register(port: int, nick: str) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(f"NICK {nick}\r\nUSER {nick} 0 * :fuzz\r\n".encode())
    read_until(s, b" 001 ")
    return s


def read_until(s: socket.socket, marker: bytes, timeout: float = 5.0) -> bytes:
    data = b""
    end = time.time() + timeout
    while marker not in data:
        s.settimeout(max(0.01, end - time.time()))
        chunk = s.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before {marker!r}; got {data[-300:]!r}")
        data += chunk
    return data


param = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"),
                max_size=40)
tag = st.tuples(st.sampled_from(["+x", "label", "+draft/reply", "msgid", "time", "a;b", ""]),
                param)
line = st.builds(
    lambda tags, command, params, trailing: (
        ("@" + ";".join(f"{k}={v}" for k, v in tags) + " " if tags else "")
        + " ".join([command, *[p.replace(" ", "") or "x" for p in params]])
        + (f" :{trailing}" if trailing is not None else "")).encode("utf-8"),
    st.lists(tag, max_size=3),
    st.sampled_from(COMMAND_NAMES) | st.text(max_size=8).map(lambda t: t.replace("\r", "").replace("\n", "")),
    st.lists(param | st.sampled_from(["#fuzz", "fuzzer", "*", "+o", "-b", "0", "#"]), max_size=6),
    st.none() | param,
)
payload = st.lists(line.map(lambda b: b + b"\r\n") | st.binary(max_size=700), min_size=1, max_size=8)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunks=payload, registered=st.booleans())
def test_server_survives_arbitrary_input(live_server, chunks, registered):
    port, proc, log = live_server
    counter = test_server_survives_arbitrary_input.__dict__.setdefault("n", [0])
    counter[0] += 1
    nick = f"fz{counter[0]}"
    s = register(port, nick) if registered else socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        for chunk in chunks:
            try:
                s.sendall(chunk)
            except OSError:
                break      # the server may close us (QUIT, ERROR): that is an answer too
    finally:
        s.close()
    assert proc.poll() is None, log.read_text()[-2000:]
    # a separate, well-behaved client still gets answers
    probe = register(port, f"ok{counter[0]}")
    try:
        probe.sendall(b"PING :alive\r\n")
        lines = read_until(probe, b"alive\r\n").split(b"\r\n")
        assert lines[-2:] == [b":fuzz.server PONG fuzz.server :alive", b""], lines[-5:]
    finally:
        probe.close()


# Every command with each of these parameter shapes, from a registered and an unregistered
# connection: a fixed sweep, so the log check below means something when run alone.
SHAPES = [b"", b" ", b" :", b" *", b" 0", b" -1", b" #fuzz", b" #fuzz :x", b" fuzzer",
          b" +o", b" -b :", b" #fuzz +b", b" #fuzz +k", b" #fuzz +l :-1", b" #fuzz +ovl a b",
          b" ,,,", b" #a,#b,,#c k1,,k2", b" a b c d e f g h i j k l m n o p", b" :\x01ACTION\x01",
          b" \xff\xfe :\xc3", b" " + b"x" * 600, b" * :" + b"y" * 500, b" ~!@#$%^&*()"]


def sweep_every_command(port: int) -> None:
    for name in sorted(set(COMMAND_NAMES) - {"", "QUIT", "DIE", "RESTART"}) + ["QUIT"]:
        for registered in (False, True):
            nick = f"sw{len(name)}{name[:4].lower()}{int(registered)}"
            s = register(port, nick) if registered else socket.create_connection(("127.0.0.1", port), timeout=5)
            try:
                lines = [name.encode() + shape for shape in SHAPES]
                lines += [b"@label=l1;+draft/reply=x;a\\b " + line for line in lines[:6]]
                s.sendall(b"".join(line + b"\r\n" for line in lines) + b"PING :swept\r\n")
                if name != "QUIT":     # the server is still answering this connection
                    assert b":fuzz.server PONG fuzz.server :swept\r\n" in read_until(s, b"swept\r\n"), name
            finally:
                s.close()


def test_server_log_has_no_tracebacks(live_server):
    """No handler raised an exception: not under the fuzzing above (when it ran first in
    this module), nor under a fixed sweep of every command."""
    port, proc, log = live_server
    sweep_every_command(port)
    assert proc.poll() is None, log.read_text()[-3000:]
    probe = register(port, "afterswp")
    try:
        probe.sendall(b"PING :alive\r\n")
        assert b":fuzz.server PONG fuzz.server :alive\r\n" in read_until(probe, b"alive\r\n")
    finally:
        probe.close()
    assert_log_captures_server_records(log)
    assert_log_clean(log)


def test_log_check_reports_a_traceback_logged_by_the_server(tmp_path):
    """The check above is not vacuous: a server process whose VERSION handler raises logs
    the exception (log.exception in the command path), and assert_log_clean reports it."""
    port, proc, log = launch_server(tmp_path, prelude="""
        import attrs
        from ircd.commands import COMMANDS

        def broken_version(server, client, msg):
            raise RuntimeError("planted fault for the log check")

        COMMANDS["VERSION"] = attrs.evolve(COMMANDS["VERSION"], handler=broken_version)
    """)
    try:
        assert_log_captures_server_records(log)
        assert_log_clean(log)              # a fresh server: nothing to report yet
        s = register(port, "victim")
        try:
            s.sendall(b"VERSION\r\nPING :after\r\n")
            got = read_until(s, b"after\r\n")
        finally:
            s.close()
        assert b":fuzz.server 400 victim VERSION :Internal error processing the command\r\n" in got
        assert proc.poll() is None
        with pytest.raises(AssertionError) as info:
            assert_log_clean(log)
    finally:
        stop_server(proc)
    report = str(info.value)
    assert "1 error(s)/traceback(s)" in report
    assert " ERROR ircd.server: command 'VERSION' from victim failed" in report
    assert "Traceback (most recent call last)" in report
    assert "RuntimeError: planted fault for the log check" in report


def test_log_problems_reads_records_and_bare_tracebacks():
    text = textwrap.dedent("""\
        2024-01-02 03:04:05,678 INFO ircd.app: fuzz.server ready (network FuzzNet)
        2024-01-02 03:04:05,679 WARNING ircd.commands.oper: failed OPER from x (x@127.0.0.1): no
        2024-01-02 03:04:06,000 ERROR ircd.app: rehash refused, keeping the running configuration:
        [server] name: missing
        2024-01-02 03:04:07,000 INFO ircd.app: shutting down: Server shutting down (SIGTERM)
        Traceback (most recent call last):
          File "x.py", line 1, in <module>
        ValueError: uncaught
        """)
    problems = log_problems(text)
    assert problems == [
        "2024-01-02 03:04:06,000 ERROR ircd.app: rehash refused, keeping the running "
        "configuration:\n[server] name: missing",
        "2024-01-02 03:04:07,000 INFO ircd.app: shutting down: Server shutting down (SIGTERM)\n"
        "Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n"
        "ValueError: uncaught",
    ]
    assert log_problems(text.split("2024-01-02 03:04:06")[0]) == []
