"""The test helper itself: a wait that fails must say what it waited for and what came.

A tiny trio server stands in for the ircd, so these tests depend on nothing but
tests/irctest.py.
"""

import functools

import pytest
import trio

from irctest import ConnectionClosed, IRCClient


async def fake_server(nursery, lines: list[str], *, tail: bytes = b"", close: bool = False) -> int:
    """Listen on 127.0.0.1; send each connection `lines` (and `tail` raw), then either
    close it or keep it open and silent. Returns the port."""
    async def handler(stream):
        await stream.send_all("".join(line + "\r\n" for line in lines).encode() + tail)
        if close:
            await stream.aclose()
        else:
            await trio.sleep_forever()

    listeners = await nursery.start(functools.partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
    return listeners[0].socket.getsockname()[1]


NOTICES = [f":fake.server NOTICE * :line {i}" for i in range(25)]


async def test_expect_timeout_shows_what_was_awaited_and_what_arrived(nursery):
    port = await fake_server(nursery, NOTICES)
    c = await IRCClient.connect(port)
    with pytest.raises(AssertionError) as info:
        await c.expect("JOIN", "#wanted", timeout=0.3)
    assert not isinstance(info.value, trio.TooSlowError)
    text = str(info.value)
    assert "timed out after 0.3s waiting for JOIN '#wanted'" in text
    # the last 20 lines that arrived, in order, and not the older ones
    shown = [line.strip() for line in text.splitlines() if "NOTICE" in line]
    assert shown == NOTICES[-20:]
    assert "still unread: nothing" in text


async def test_next_line_and_collect_until_timeouts_are_assertions(nursery):
    port = await fake_server(nursery, NOTICES[:3])
    c = await IRCClient.connect(port)
    assert await c.next_line() == NOTICES[0]
    with pytest.raises(AssertionError) as info:
        await c.collect_until("PONG", timeout=0.2)
    text = str(info.value)
    assert "waiting for PONG" in text
    assert [line.strip() for line in text.splitlines() if "NOTICE" in line] == NOTICES[:3]
    with pytest.raises(AssertionError) as info:
        await c.next_line(timeout=0.1)
    assert "timed out after 0.1s waiting for any line" in str(info.value)


async def test_register_timeout_names_the_nick(nursery):
    port = await fake_server(nursery, [":fake.server 001 dave :Welcome"])
    c = await IRCClient.connect(port)
    with pytest.raises(AssertionError) as info:
        await c.register("dave", timeout=0.2)
    text = str(info.value)
    assert "(376 or 422) after registering as dave" in text
    assert ":fake.server 001 dave :Welcome" in text


async def test_skip_false_mismatch_shows_the_unread_lines(nursery):
    port = await fake_server(nursery, NOTICES[:4], tail=b":fake.server PRIV")
    c = await IRCClient.connect(port)
    # let everything arrive, so that the unread lines are known when the check fails
    with trio.move_on_after(0.2):
        while len(c.lines) < 4 or not c.buffer:
            await c._fill()
    with pytest.raises(AssertionError) as info:
        await c.expect("001", skip=False)
    text = str(info.value)
    assert "expected 001 as the next message, got Message('NOTICE', ['*', 'line 0']" in text
    unread = text.split("still unread (3):", 1)[1].splitlines()
    assert [line.strip() for line in unread[1:4]] == NOTICES[1:4]
    assert "incomplete line: b':fake.server PRIV'" in text


async def test_connection_closed_while_waiting(nursery):
    port = await fake_server(nursery, NOTICES[:2], close=True)
    c = await IRCClient.connect(port)
    with pytest.raises(ConnectionClosed) as info:
        await c.expect("PONG", timeout=2)
    assert isinstance(info.value, AssertionError) and isinstance(info.value, EOFError)
    text = str(info.value)
    assert "connection closed while waiting for PONG" in text
    assert [line.strip() for line in text.splitlines() if "NOTICE" in line] == NOTICES[:2]


async def test_expect_returns_the_matching_message(nursery):
    port = await fake_server(nursery, NOTICES[:2] + [":a!b@c JOIN #wanted"])
    c = await IRCClient.connect(port)
    msg = await c.expect("JOIN", "#wanted", timeout=1)
    assert (msg.source, msg.command, msg.params) == ("a!b@c", "JOIN", ["#wanted"])
    assert list(c.history) == NOTICES[:2] + [":a!b@c JOIN #wanted"]


def test_show_is_canonical():
    """show() writes what a client reads: `:` only where needed, tags sorted, volatile
    tag values hidden."""
    from ircd.protocol.message import parse_line
    from irctest import show
    assert show(parse_line(":a!b@c JOIN :#x")) == ":a!b@c JOIN #x"
    assert show(parse_line(":s 353 n = #x :@a b")) == ":s 353 n = #x :@a b"
    assert show(parse_line(":s 331 n #x :")) == ":s 331 n #x :"
    assert show(parse_line(":s 001 n ::-)")) == ":s 001 n ::-)"
    assert show(parse_line("@time=2024;msgid=abc;+z=1;a :n!u@h PRIVMSG #x :hi")) == \
        "@+z=1;a;msgid=*;time=* :n!u@h PRIVMSG #x hi"
    assert show(parse_line("PING")) == "PING"
