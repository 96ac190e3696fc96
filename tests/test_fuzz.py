"""Arbitrary bytes and lines thrown at a live server process: it must stay up and answer.

The server runs as a real `ircd run` subprocess, so a crash anywhere shows up as a
dead process or a silent socket, whichever comes first.
"""

import socket
import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ircd.commands import COMMANDS
from irctest import free_port

COMMAND_NAMES = sorted(COMMANDS) + ["CAP", "AUTHENTICATE", "", "PRIVMSG", "JOIN", "MODE"]


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    (directory / "ircd.toml").write_text(f"""
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
""")
    log = open(directory / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "ircd", "run", "--config",
                             str(directory / "ircd.toml")], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                raise AssertionError("fuzz server did not start")
            time.sleep(0.1)
    yield port, proc, directory / "server.log"
    proc.terminate()
    proc.wait(10)
    log.close()


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
        assert b"PONG" in read_until(probe, b"alive")
    finally:
        probe.close()


def test_server_log_has_no_tracebacks(live_server):
    """Runs after the fuzzing in this module: no handler raised an exception."""
    port, proc, log = live_server
    assert proc.poll() is None
    assert "Traceback" not in log.read_text()
