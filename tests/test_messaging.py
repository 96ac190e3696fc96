"""PRIVMSG, NOTICE, TAGMSG and the IRCv3 tags, echo and labels that travel with them."""

import re


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
    await a.send("PRIVMSG TARGET :psst")
    msg = await b.expect("PRIVMSG")
    assert msg.params == ["target", "psst"]
    await a.send("NOTICE target :note")
    assert (await b.expect("NOTICE")).params == ["target", "note"]
    await a.send("PRIVMSG ghost :anyone?")
    await a.expect("401", "sender", "ghost")
    await a.send("PRIVMSG")
    await a.expect("411")
    await a.send("PRIVMSG target")
    await a.expect("412")
    await a.send("PRIVMSG target :")
    await a.expect("412")
    await a.send("PRIVMSG #nochan :x")
    await a.expect("403", "sender", "#nochan")
    await a.send("PRIVMSG a,b,c,d,e :too many")
    await a.expect("407")


async def test_multiple_targets(server):
    a = await server.client("multi")
    b = await server.client("one")
    c = await server.client("two")
    await a.send("PRIVMSG one,two :both")
    assert (await b.expect("PRIVMSG")).params == ["one", "both"]
    assert (await c.expect("PRIVMSG")).params == ["two", "both"]


async def test_statusmsg_reaches_ops_only(server):
    op, voice, plain, outsider = await in_channel(server, "#s", "sop", "svoice", "splain", "sout")
    await outsider.send("PART #s")
    await outsider.expect("PART")
    await op.send("MODE #s +v svoice")
    for c in (op, voice, plain):
        await c.expect("MODE")
    await plain.send("PRIVMSG @#s :ops only", "PRIVMSG +#s :voice and up")
    first = await op.expect("PRIVMSG")
    assert first.params == ["@#s", "ops only"]
    assert (await op.expect("PRIVMSG")).params == ["+#s", "voice and up"]
    assert (await voice.expect("PRIVMSG")).params == ["+#s", "voice and up"]
    assert [m.command for m in await plain.ping_pong()] == []


async def test_echo_message_server_time_msgid_and_tags(server):
    a, b, c = await in_channel(server, "#tags",
                               ("tagger", ("echo-message", "server-time", "message-tags")),
                               ("timeonly", ("server-time",)), "plainer")
    await a.send("@+draft/reply=abc;+example.com/x=y\\sz PRIVMSG #tags :tagged")
    echo = await a.expect("PRIVMSG")
    assert echo.params == ["#tags", "tagged"]
    assert TIME_RE.match(echo.tags["time"]) and echo.tags["msgid"]
    assert echo.tags["+draft/reply"] == "abc" and echo.tags["+example.com/x"] == "y z"
    timed = await b.expect("PRIVMSG")
    assert set(timed.tags) == {"time"} and timed.tags["time"] == echo.tags["time"]
    plain = await c.expect("PRIVMSG")
    assert plain.tags == {}
    # msgids are unique per message, and in the network: they start with the server's SID
    await a.send("PRIVMSG #tags :again")
    assert (await a.expect("PRIVMSG")).tags["msgid"] != echo.tags["msgid"]
    assert echo.tags["msgid"].startswith(server.state.sid)


async def test_tagmsg_only_to_message_tags_clients(server):
    a, b, c = await in_channel(server, "#tm", ("typer", ("message-tags",)),
                               ("seer", ("message-tags",)), "blind")
    await a.send("@+typing=active TAGMSG #tm")
    got = await b.expect("TAGMSG")
    assert got.params == ["#tm"] and got.tags["+typing"] == "active"
    assert [m.command for m in await c.ping_pong()] == []
    await a.send("@+typing=active TAGMSG seer")
    assert (await b.expect("TAGMSG")).params == ["seer"]


async def test_labeled_response_ack_single_and_batch(server):
    a = await server.client("labeler", caps=["labeled-response", "batch", "message-tags", "echo-message"])
    b = await server.client("peer")
    await a.send("@label=one PRIVMSG peer :hi")
    echo = await a.expect("PRIVMSG")
    assert echo.tags["label"] == "one"
    await b.expect("PRIVMSG")
    await a.send("@label=two PONG :x")
    ack = await a.expect("ACK")
    assert ack.tags == {"label": "two"}
    await a.send("@label=three JOIN #lab")
    start = await a.expect("BATCH")
    assert start.tags["label"] == "three" and start.params[1] == "labeled-response"
    ref = start.params[0][1:]
    body = await a.collect_until("BATCH")
    assert body[-1].params == ["-" + ref]
    assert all(m.tags.get("batch") == ref for m in body[:-1])
    assert [m.command for m in body[:-1]] == ["JOIN", "353", "366"]


async def test_account_and_bot_tags(server):
    bot = await server.client("botty")
    await bot.send("MODE botty +B")
    await bot.expect("MODE")
    server.state.set_account(server.state.find_user("botty"), "botacct")
    r = await server.client("rcv", caps=["message-tags", "account-tag"])
    await bot.send("PRIVMSG rcv :beep")
    msg = await r.expect("PRIVMSG")
    assert msg.tags["account"] == "botacct" and "bot" in msg.tags


async def test_away_reply_on_private_message(server):
    a = await server.client("asker")
    b = await server.client("awayer")
    server.state.find_user("awayer").away = "at lunch"
    await a.send("PRIVMSG awayer :hi")
    await a.expect("301", "asker", "awayer", "at lunch")
    await b.expect("PRIVMSG")


async def test_client_tags_too_long_are_refused(server):
    """A client may send 4094 bytes of tag data (IRCv3 message-tags); more gets 417."""
    a = await server.client("bigtags", caps=["message-tags"])
    b = await server.client("bt")
    await a.send(f"@+big={'x' * 4100} PRIVMSG bt :hi")
    await a.expect("417")
    assert [m.command for m in await b.ping_pong()] == []


async def test_long_relayed_line_is_cut_to_512_bytes(server):
    a = await server.client("l" * 30)
    b = await server.client("receiver")
    text = "é" * 300       # 600 bytes of UTF-8; the client line itself is too long
    await a.send("PRIVMSG receiver :" + "y" * 480)
    await b.expect("PRIVMSG")
    await a.send("PRIVMSG receiver :" + text[:240])
    msg = await b.expect("PRIVMSG")
    raw = f":{'l' * 30}!~llllllll@127.0.0.1 PRIVMSG receiver :{msg.params[1]}"
    assert len(raw.encode()) <= 510
    assert set(msg.params[1]) == {"é"}       # cut on a character boundary
