"""A netsplit loses nothing: what each side said is delivered to the other after the
heal, once, in a chathistory batch with its original time and msgid; a private message
to someone split away waits for them."""

from __future__ import annotations

import trio

from netutil import start_network, until, wait_linked

CAPS = ["batch", "server-time", "message-tags"]


def members(server, name: str) -> set:
    chan = server.state.find_channel(name)
    return {u.nick for u in chan.members} if chan is not None else set()


async def split(a, b) -> None:
    a.state.linking.linked_to(b.state.name).close("cut for the test")
    await until(lambda: len(a.state.registry.servers) == 1 and len(b.state.registry.servers) == 1,
                what="the netsplit")


async def heal(a, b) -> None:
    b.app.linker.connect_soon(a.state.name)
    await wait_linked([a, b], 2)


async def test_each_side_gets_what_the_other_said_during_the_split(nursery, tmp_path):
    s1, s2 = await start_network(nursery, tmp_path, [(1, 0)], 2, autoconnect=False)
    left = await s1.client("left", caps=CAPS)
    right = await s2.client("right", caps=CAPS)
    plain = await s2.client("plain")
    for c in (left, right, plain):
        await c.send("JOIN #c")
        await c.expect("366")
        await until(lambda: all(c.nick in members(s, "#c") for s in (s1, s2)),
                    what=f"{c.nick} in #c on both servers")
    await split(s1, s2)
    sent = []
    for i in range(3):
        await left.send(f"PRIVMSG #c :left during the split {i}")
        sent.append((await left.ping_pong(), i))
    await right.send("PRIVMSG #c :right during the split")
    late = await s2.client("late", caps=CAPS)          # joins after those were said
    await late.send("JOIN #c")
    await late.expect("366")
    await right.ping_pong()
    await plain.ping_pong()
    assert not [m for msgs, _ in sent for m in msgs if m.command == "PRIVMSG"]  # no echo
    await heal(s1, s2)
    # right (with batch) gets left's three lines in one chathistory batch, original times
    while True:
        start = await right.expect("BATCH")
        if start.params[0].startswith("+") and start.params[1] == "chathistory":
            break
    assert start.params[1:] == ["chathistory", "#c"]
    ref = start.params[0][1:]
    lines = []
    while True:
        m = await right.next_message()
        if m.command == "BATCH":
            assert m.params == ["-" + ref]
            break
        lines.append(m)
    assert [(m.source.split("!")[0], m.params, m.tags["batch"]) for m in lines] == [
        ("left", ["#c", f"left during the split {i}"], ref) for i in range(3)]
    assert all(m.tags["msgid"].startswith("1AA") and m.tags["time"] for m in lines)
    # without batch: the same lines, plain
    got = [m for m in await plain.ping_pong() if m.command == "PRIVMSG"]
    assert [m.params[-1] for m in got] == [f"left during the split {i}" for i in range(3)]
    # left gets right's line; the late joiner gets nothing said before it joined
    got = [m for m in await left.ping_pong() if m.command == "PRIVMSG"]
    assert [(m.source.split("!")[0], m.params[-1]) for m in got] == [("right", "right during the split")]
    assert [m for m in await late.ping_pong() if m.command == "PRIVMSG"] == []
    # exactly once: a second split and heal replays nothing again
    await split(s1, s2)
    await heal(s1, s2)
    await trio.sleep(0.2)
    for c in (left, right, plain, late):
        assert [m for m in await c.ping_pong() if m.command == "PRIVMSG"] == [], c.nick


async def test_a_private_message_to_someone_split_away_waits_for_them(nursery, tmp_path):
    s1, s2 = await start_network(nursery, tmp_path, [(1, 0)], 2, autoconnect=False)
    sender = await s1.client("sender", caps=["standard-replies"])
    plain = await s1.client("plainsender")
    away = await s2.client("faraway")
    await until(lambda: s1.state.find_user("faraway"), what="faraway on s1")
    await split(s1, s2)
    await sender.send("PRIVMSG faraway :are you there")
    warn = await sender.expect("WARN")
    assert warn.params[:3] == ["PRIVMSG", "QUEUED", "faraway"]
    assert warn.params[-1].startswith("queued: faraway's server is unreachable")
    await plain.send("PRIVMSG faraway :me too")
    notice = await plain.expect("NOTICE")
    assert notice.params[-1].startswith("*** PRIVMSG queued: queued: faraway's server is unreachable")
    await heal(s1, s2)
    got = [await away.expect("PRIVMSG"), await away.expect("PRIVMSG")]
    assert [(m.source.split("!")[0], m.params) for m in got] == [
        ("sender", ["faraway", "are you there"]), ("plainsender", ["faraway", "me too"])]
    note = await sender.expect("NOTE")
    assert note.params[:3] == ["PRIVMSG", "DELIVERED", "faraway"]


async def test_a_held_message_that_expires_is_reported_undelivered(nursery, tmp_path):
    s1, s2 = await start_network(nursery, tmp_path, [(1, 0)], 2, autoconnect=False,
                                 limits={"hold_seconds": 1})
    sender = await s1.client("sender", caps=["standard-replies"])
    gone = await s2.client("gone")  # noqa: F841 (kept connected)
    await until(lambda: s1.state.find_user("gone"), what="gone on s1")
    await split(s1, s2)
    await sender.send("PRIVMSG gone :hello?")
    assert (await sender.expect("WARN")).params[1] == "QUEUED"
    fail = await sender.expect("FAIL", timeout=5)
    assert fail.params[:3] == ["PRIVMSG", "NOT_DELIVERED", "gone"]
    assert fail.params[-1] == ("Your message to gone was not delivered: their server did not "
                               "come back within 1 seconds")


async def test_a_link_cut_without_notice_resumes_with_nothing_lost_and_no_netsplit(nursery, tmp_path):
    """The TCP connection under a link is shut down (no TLS goodbye, no Error frame): the
    link is held, the connecting side reconnects by itself, the two resume from what
    each had handled, and nobody sees a QUIT."""
    import socket
    s1, s2 = await start_network(nursery, tmp_path, [(1, 0)], 2)
    left = await s1.client("left", caps=CAPS)
    right = await s2.client("right", caps=CAPS)
    for c in (left, right):
        await c.send("JOIN #r")
        await c.expect("366")
        await until(lambda: all(c.nick in members(s, "#r") for s in (s1, s2)))
    await left.ping_pong()
    await right.ping_pong()
    link = s2.state.linking.linked_to("s1.test")
    sock = link.conn.sock
    sock.shutdown(socket.SHUT_RDWR)            # the connection breaks under the link
    await until(lambda: s1.state.linking.suspended and s2.state.linking.suspended,
                what="both sides to hold the link")
    for i in range(5):                          # said while the link is down
        await left.send(f"PRIVMSG #r :while down {i}")
        await right.send(f"PRIVMSG #r :back at you {i}")
    await until(lambda: not s1.state.linking.suspended and not s2.state.linking.suspended
                and all(len(s.state.registry.servers) == 2 for s in (s1, s2)),
                timeout=10, what="the link to resume")
    await trio.sleep(0.2)
    got_right = [m for m in await right.ping_pong() if m.command in ("PRIVMSG", "QUIT", "JOIN")]
    got_left = [m for m in await left.ping_pong() if m.command in ("PRIVMSG", "QUIT", "JOIN")]
    assert [m.params[-1] for m in got_right] == [f"while down {i}" for i in range(5)]
    assert [m.params[-1] for m in got_left] == [f"back at you {i}" for i in range(5)]


async def test_a_split_longer_than_the_history_is_said_to_those_it_affects(nursery, tmp_path):
    """Both sides: who said what the log lost, and who did not get it."""
    s1, s2 = await start_network(nursery, tmp_path, [(1, 0)], 2, autoconnect=False,
                                 limits={"history_messages": 3})
    talker = await s1.client("talker", caps=["standard-replies"])
    other = await s2.client("other")
    for c in (talker, other):
        await c.send("JOIN #h")
        await c.expect("366")
        await until(lambda: all(c.nick in members(s, "#h") for s in (s1, s2)))
    await split(s1, s2)
    for i in range(6):
        await talker.send(f"PRIVMSG #h :number {i}")
    await talker.ping_pong()
    await heal(s1, s2)
    warn = await talker.expect("WARN")
    assert warn.params[:3] == ["PRIVMSG", "HISTORY_LIMIT", "#h"]
    assert "outlasted this server's message history" in warn.params[-1]
    got = await other.ping_pong()
    said = [m.params[-1] for m in got if m.command == "PRIVMSG"]
    assert said == ["number 3", "number 4", "number 5"]       # what the log still had
    # and the other side hears that what it got is not all that was said
    told = [m.params[-1] for m in got if m.command == "NOTICE"]
    assert len(told) == 1 and told[0].startswith("*** PRIVMSG history limit: The netsplit "
                                                 "outlasted the message history")
    assert "some messages said in #h over there" in told[0]
