"""PRIVMSG, NOTICE, TAGMSG and the IRCv3 tags, echo and labels that travel with them."""

import re
import socket
import time

import trio

from irctest import show, shown

S = ":test.server"

TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


async def in_channel(server, channel, *specs):
    clients = []
    for spec in specs:
        nick, caps = spec if isinstance(spec, tuple) else (spec, ())
        c = await server.client(nick, caps=list(caps))
        await c.send(f"JOIN {channel}")
        await c.expect("366")
        clients.append(c)
    for c in clients:     # drain the JOINs of those who came later
        await c.ping_pong()
    return clients


async def test_channel_message_reaches_members_not_sender(server):
    a, b, c = await in_channel(server, "#chat", "ann", "ben", "cat")
    await a.send("PRIVMSG #chat :hello all")
    for other in (b, c):
        msg = await other.expect("PRIVMSG")
        assert msg.source == "ann!~ann@127.0.0.1" and msg.params == ["#chat", "hello all"]
        assert msg.tags == {}          # no caps, no tags
    assert [m.command for m in await a.ping_pong()] == []


async def test_private_message_notice_and_errors(server):
    a = await server.client("sender")
    b = await server.client("target")
    await a.send("PRIVMSG TARGET :psst", "NOTICE target :note")
    assert await a.ping_pong() == []
    assert shown(await b.ping_pong()) == [":sender!~sender@127.0.0.1 PRIVMSG target psst",
                                          ":sender!~sender@127.0.0.1 NOTICE target note"]
    await a.send("PRIVMSG ghost :anyone?", "PRIVMSG", "PRIVMSG target", "PRIVMSG target :",
                 "PRIVMSG #nochan :x", "PRIVMSG a,b,c,d,e :too many")
    assert shown(await a.ping_pong()) == [
        f"{S} 401 sender ghost :No such nick/channel",
        f"{S} 411 sender :No recipient given (PRIVMSG)",
        f"{S} 412 sender :No text to send",
        f"{S} 412 sender :No text to send",
        f"{S} 403 sender #nochan :No such channel",
        f"{S} 407 sender a,b,c,d,e :Too many recipients, at most 4 per message"]
    assert await b.ping_pong() == []


async def test_multiple_targets(server):
    a = await server.client("multi")
    b = await server.client("one")
    c = await server.client("two")
    await a.send("PRIVMSG one,two :both")
    assert await a.ping_pong() == []
    assert shown(await b.ping_pong()) == [":multi!~multi@127.0.0.1 PRIVMSG one both"]
    assert shown(await c.ping_pong()) == [":multi!~multi@127.0.0.1 PRIVMSG two both"]


async def test_statusmsg_reaches_ops_only(server):
    op, voice, plain, outsider = await in_channel(server, "#s", "sop", "svoice", "splain", "sout")
    await outsider.send("PART #s")
    assert shown(await outsider.ping_pong()) == [":sout!~sout@127.0.0.1 PART #s"]
    await op.send("MODE #s +v svoice")
    for c in (op, voice, plain):       # op first: once it has the echo, so have the others
        assert shown(await c.ping_pong()) == [":sout!~sout@127.0.0.1 PART #s",
                                              ":sop!~sop@127.0.0.1 MODE #s +v svoice"]
    await plain.send("PRIVMSG @#s :ops only", "PRIVMSG +#s :voice and up")
    assert await plain.ping_pong() == []
    assert shown(await op.ping_pong()) == [":splain!~splain@127.0.0.1 PRIVMSG @#s :ops only",
                                           ":splain!~splain@127.0.0.1 PRIVMSG +#s :voice and up"]
    assert shown(await voice.ping_pong()) == [":splain!~splain@127.0.0.1 PRIVMSG +#s :voice and up"]
    assert await outsider.ping_pong() == []


async def test_echo_message_server_time_msgid_and_tags(server):
    a, b, c = await in_channel(server, "#tags",
                               ("tagger", ("echo-message", "server-time", "message-tags")),
                               ("timeonly", ("server-time",)), "plainer")
    await a.send("@+draft/reply=abc;+example.com/x=y\\sz PRIVMSG #tags :tagged")
    echo, = await a.ping_pong()
    assert show(echo) == ("@+draft/reply=abc;+example.com/x=y z;msgid=*;time=* "
                          ":tagger!~tagger@127.0.0.1 PRIVMSG #tags tagged")
    assert TIME_RE.match(echo.tags["time"]) and echo.tags["msgid"]
    timed, = await b.ping_pong()
    assert show(timed) == "@time=* :tagger!~tagger@127.0.0.1 PRIVMSG #tags tagged"
    assert timed.tags["time"] == echo.tags["time"]
    assert shown(await c.ping_pong()) == [":tagger!~tagger@127.0.0.1 PRIVMSG #tags tagged"]
    # msgids are unique per message, and in the network: they start with the server's SID
    await a.send("PRIVMSG #tags :again")
    assert (await a.expect("PRIVMSG")).tags["msgid"] != echo.tags["msgid"]
    assert echo.tags["msgid"].startswith(server.state.sid)


async def test_tagmsg_only_to_message_tags_clients(server):
    a, b, c = await in_channel(server, "#tm", ("typer", ("message-tags",)),
                               ("seer", ("message-tags",)), "blind")
    await a.send("@+typing=active TAGMSG #tm")
    assert await a.ping_pong() == []           # no echo-message: no copy for the sender
    got, = await b.ping_pong()
    assert show(got) == "@+typing=active;msgid=* :typer!~typer@127.0.0.1 TAGMSG #tm"
    assert [m.command for m in await c.ping_pong()] == []
    await a.send("@+typing=active TAGMSG seer")
    assert await a.ping_pong() == []
    again, = await b.ping_pong()
    assert show(again) == "@+typing=active;msgid=* :typer!~typer@127.0.0.1 TAGMSG seer"
    assert again.tags["msgid"] != got.tags["msgid"]


async def test_labeled_response_ack_single_and_batch(server):
    a = await server.client("labeler", caps=["labeled-response", "batch", "message-tags", "echo-message"])
    b = await server.client("peer")
    await a.send("@label=one PRIVMSG peer :hi")
    echo, = await a.ping_pong()
    assert show(echo) == "@label=one;msgid=* :labeler!~labeler@127.0.0.1 PRIVMSG peer hi"
    assert shown(await b.ping_pong()) == [":labeler!~labeler@127.0.0.1 PRIVMSG peer hi"]
    await a.send("@label=two PONG :x")
    assert shown(await a.ping_pong()) == [f"@label=two {S} ACK"]
    await a.send("@label=three JOIN #lab")
    start, *body, end = await a.ping_pong()
    ref = start.params[0][1:]
    assert show(start) == f"@label=three {S} BATCH +{ref} labeled-response"
    assert re.fullmatch(r"[A-Za-z0-9-]+", ref)
    assert shown(body) == [f"@batch={ref} :labeler!~labeler@127.0.0.1 JOIN #lab",
                           f"@batch={ref} {S} 353 labeler = #lab @labeler",
                           f"@batch={ref} {S} 366 labeler #lab :End of /NAMES list."]
    assert show(end) == f"{S} BATCH -{ref}"


async def test_account_and_bot_tags(server):
    bot = await server.client("botty")
    await bot.send("MODE botty +B")
    assert shown(await bot.ping_pong()) == [":botty!~botty@127.0.0.1 MODE botty +B"]
    server.state.set_account(server.state.find_user("botty"), "botacct")
    r = await server.client("rcv", caps=["message-tags", "account-tag"])
    plain = await server.client("plainrcv")
    await bot.send("PRIVMSG rcv :beep", "PRIVMSG plainrcv :beep")
    await bot.ping_pong()
    assert shown(await r.ping_pong()) == [
        "@account=botacct;bot;msgid=* :botty!~botty@127.0.0.1 PRIVMSG rcv beep"]
    assert shown(await plain.ping_pong()) == [":botty!~botty@127.0.0.1 PRIVMSG plainrcv beep"]


async def test_away_reply_on_private_message(server):
    a = await server.client("asker")
    b = await server.client("awayer")
    server.state.find_user("awayer").away = "at lunch"
    await a.send("PRIVMSG awayer :hi")
    assert shown(await a.ping_pong()) == [f"{S} 301 asker awayer :at lunch"]
    assert shown(await b.ping_pong()) == [":asker!~asker@127.0.0.1 PRIVMSG awayer hi"]


async def test_client_tags_too_long_are_refused(server):
    """A client may send 4094 bytes of tag data (IRCv3 message-tags); more gets 417."""
    a = await server.client("bigtags", caps=["message-tags"])
    b = await server.client("bt")
    await a.send(f"@+big={'x' * 4100} PRIVMSG bt :hi")
    assert shown(await a.ping_pong()) == [f"{S} 417 bigtags :Input line was too long"]
    assert [m.command for m in await b.ping_pong()] == []


async def test_long_relayed_line_is_cut_to_512_bytes(server):
    a = await server.client("l" * 30)
    b = await server.client("receiver")
    text = "é" * 300       # 600 bytes of UTF-8; the client line itself is too long
    source = f"{'l' * 30}!~llllllll@127.0.0.1"
    await a.send("PRIVMSG receiver :" + "y" * 480)
    msg = await b.expect("PRIVMSG")
    # ":" + source + " PRIVMSG receiver :" is 70 bytes: 440 of the 480 fit in 510
    assert (msg.source, msg.params) == (source, ["receiver", "y" * 440])
    await a.send("PRIVMSG receiver :" + text[:240])
    msg = await b.expect("PRIVMSG")
    assert (msg.source, msg.params) == (source, ["receiver", "é" * 220])
    raw = f":{source} PRIVMSG receiver :{msg.params[1]}"
    assert len(raw.encode()) <= 510          # cut on a character boundary


async def test_a_recipient_named_twice_gets_the_message_once(server):
    a = await server.client("doubler")
    b = await server.client("target")
    await a.send("PRIVMSG target,TARGET,target :once")
    await a.ping_pong()
    assert shown(await b.ping_pong()) == [":doubler!~doubler@127.0.0.1 PRIVMSG target once"]


async def test_channel_recipients_follow_joins_parts_and_capability_changes(server):
    """Who hears a channel message, and in which form, is worked out once per channel
    and kept: a join, a part, a quit and a member's new capability all change it."""
    a, b = await in_channel(server, "#kept", "kann", "kben")
    await a.send("PRIVMSG #kept :one")
    assert (await b.expect("PRIVMSG")).tags == {}
    await b.send("CAP REQ :server-time")
    await b.expect("CAP")
    await a.send("PRIVMSG #kept :two")
    timed = await b.expect("PRIVMSG")
    assert timed.params == ["#kept", "two"] and TIME_RE.match(timed.tags["time"])
    c = await server.client("kcat")
    await c.send("JOIN #kept")
    await c.expect("366")
    await a.send("PRIVMSG #kept :three")
    assert (await c.expect("PRIVMSG")).params == ["#kept", "three"]
    assert (await b.expect("PRIVMSG")).params == ["#kept", "three"]
    await c.send("PART #kept")
    await c.expect("PART")
    await a.send("PRIVMSG #kept :four")
    assert (await b.expect("PRIVMSG")).params == ["#kept", "four"]
    assert [m.command for m in await c.ping_pong()] == []


async def test_lines_from_one_read_arrive_in_order_whatever_their_targets(make_server):
    """Channel lines that one pass queues on many connections at once, and private
    lines and replies written between them, reach each client in the order said."""
    server = await make_server(limits={"flood_control": False})
    # more members than PIECE_MIN, so that the channel's lines are queued as Pieces
    a, b, c, *others = await in_channel(server, "#ord", "oann", "oben", ("ocat", ("server-time",)),
                                        *(f"oidle{i}" for i in range(8)))
    burst = []
    for i in range(40):
        burst.append(f"PRIVMSG #ord :c{i}")
        if i % 7 == 3:
            burst.append(f"PRIVMSG oben :p{i}")
        if i % 11 == 5:
            burst.append(f"NOTICE #ord :n{i}")
    await a.send(*burst)                     # one write: the server reads it in one pass
    want_b = [line.split(" :", 1)[1] for line in burst]
    want_c = [line.split(" :", 1)[1] for line in burst if " oben " not in line]
    got_b = [m.params[-1] for m in await b.ping_pong() if m.command in ("PRIVMSG", "NOTICE")]
    got_c = [(m.params[-1], "time" in m.tags) for m in await c.ping_pong()
             if m.command in ("PRIVMSG", "NOTICE")]
    assert got_b == want_b
    assert got_c == [(text, True) for text in want_c]
    await b.send("PRIVMSG #ord :from ben", "PRIVMSG #ord :again")
    assert [m.params[-1] for m in await a.ping_pong() if m.command == "PRIVMSG"] == [
        "from ben", "again"]
    assert [m.params[-1] for m in await c.ping_pong() if m.command == "PRIVMSG"] == [
        "from ben", "again"]


def _blast(port: int, nick: str, channel: str, lines: list[str]) -> None:
    """A client in its own thread: registers, joins, then sends `lines` one write each,
    so that they reach the server while it writes (os.write lets this thread run)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        f = sock.makefile("rb")
        sock.sendall(f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\nJOIN {channel}\r\n".encode())
        while b" 366 " not in f.readline():
            pass
        for line in lines:
            sock.sendall(line.encode() + b"\r\n")
            time.sleep(0)
        sock.sendall(b"QUIT :done\r\n")
        while f.readline():
            pass


async def test_input_that_arrives_while_a_fan_out_is_written_keeps_each_senders_order(make_server):
    """The server handles input that arrives while it writes a large fan-out (every
    FLUSH_CHUNK connections) and adds its output to the writes not yet made: every
    member still gets every line of each sender, once and in the order sent."""
    server = await make_server(limits={"flood_control": False, "max_connections_per_ip": 0})
    members = await in_channel(server, "#mid", *(f"midle{i}" for i in range(100)))
    want = {nick: [f"{nick}-{i}" for i in range(200)] for nick in ("mann", "mben")}
    async with trio.open_nursery() as nursery:
        for nick, texts in want.items():
            nursery.start_soon(trio.to_thread.run_sync, _blast, server.port, nick, "#mid",
                               [f"PRIVMSG #mid :{t}" for t in texts])
    for c in members:
        got = [m.params[-1] for m in await c.ping_pong() if m.command == "PRIVMSG"]
        for nick, texts in want.items():
            assert [t for t in got if t.startswith(nick)] == texts
        assert len(got) == 400
