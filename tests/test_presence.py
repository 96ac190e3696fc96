"""AWAY (with away-notify and RPL_AWAY) and SETNAME (IRCv3 setname), as clients see them."""


async def join_all(channel, *clients):
    for c in clients:
        await c.send(f"JOIN {channel}")
        await c.expect("366")
    for c in clients:       # drain the JOINs of later joiners
        await c.ping_pong()


async def test_away_replies_broadcast_and_rpl_away(server):
    notified = await server.client("notified", caps=["away-notify"])
    plain = await server.client("plain")
    goer = await server.client("goer")
    await join_all("#a", notified, plain, goer)

    await goer.send("AWAY :gone fishing")
    reply = await goer.expect("306", skip=False)
    assert reply.params == ["goer", "You have been marked as being away"]
    assert await goer.ping_pong() == []
    assert server.state.find_user("goer").away == "gone fishing"

    seen = await notified.ping_pong()
    assert len(seen) == 1
    assert seen[0].command == "AWAY" and seen[0].params == ["gone fishing"]
    assert seen[0].source.startswith("goer!")
    assert await plain.ping_pong() == []          # no away-notify, no AWAY line

    await plain.send("PRIVMSG goer :are you there?")
    away = await plain.expect("301")
    assert away.params == ["plain", "goer", "gone fishing"]

    # changing the message is announced again; setting the same one is not
    await goer.send("AWAY :gone fishing")
    await goer.expect("306")
    await goer.ping_pong()
    assert await notified.ping_pong() == []

    await goer.send("AWAY")
    back = await goer.expect("305", skip=False)
    assert back.params == ["goer", "You are no longer marked as being away"]
    await goer.ping_pong()
    seen = await notified.ping_pong()
    assert [(m.command, m.params) for m in seen] == [("AWAY", [])]
    assert server.state.find_user("goer").away is None

    await plain.send("PRIVMSG goer :welcome back")
    assert await plain.ping_pong() == []          # no 301 any more

    # not away and "AWAY :" (empty) again: 305, nobody is told anything
    await goer.send("AWAY :")
    await goer.expect("305")
    await goer.ping_pong()
    assert await notified.ping_pong() == []


async def test_away_message_is_truncated_to_awaylen(make_server):
    srv = await make_server(limits={"awaylen": 10})
    watcher = await srv.client("watcher", caps=["away-notify"])
    user = await srv.client("longaway")
    await join_all("#t", watcher, user)
    await user.send("AWAY :" + "é" * 8)         # 16 bytes; cut on a character boundary
    await user.expect("306")
    assert srv.state.find_user("longaway").away == "é" * 5
    line = await watcher.expect("AWAY")
    assert line.params == ["é" * 5]


async def test_away_reaches_extended_monitor_watchers_with_away_notify(server):
    full = await server.client("full", caps=["extended-monitor", "away-notify"])
    monitor_only = await server.client("monly", caps=["extended-monitor"])
    notify_only = await server.client("nonly", caps=["away-notify"])
    target = await server.client("target")
    for c in (full, monitor_only, notify_only):
        await c.send("MONITOR + target")
        await c.expect("730")

    await target.send("AWAY :afk")
    await target.expect("306")
    await target.ping_pong()
    seen = await full.ping_pong()
    assert [(m.command, m.params) for m in seen] == [("AWAY", ["afk"])]
    assert seen[0].source.startswith("target!")
    assert await monitor_only.ping_pong() == []
    assert await notify_only.ping_pong() == []

    await target.send("AWAY")
    await target.expect("305")
    await target.ping_pong()
    assert [(m.command, m.params) for m in await full.ping_pong()] == [("AWAY", [])]


async def test_shared_channel_and_monitor_get_one_away_line(server):
    both = await server.client("both", caps=["extended-monitor", "away-notify"])
    target = await server.client("target")
    await join_all("#x", both, target)
    await both.send("MONITOR + target")
    await both.expect("730")
    await target.send("AWAY :brb")
    await target.expect("306")
    await target.ping_pong()
    assert [m.command for m in await both.ping_pong()] == ["AWAY"]


async def test_setname_changes_realname_and_tells_setname_clients(server):
    changer = await server.client("changer", caps=["setname"])
    peer = await server.client("peer", caps=["setname"])
    old = await server.client("oldclient")
    await join_all("#s", changer, peer, old)

    await changer.send("SETNAME :Bruce Wayne <bruce@wayne.example>")
    own = await changer.expect("SETNAME", skip=False)
    assert own.source.startswith("changer!")
    assert own.params == ["Bruce Wayne <bruce@wayne.example>"]
    seen = await peer.expect("SETNAME")
    assert seen.params == own.params and seen.source == own.source
    assert await old.ping_pong() == []
    assert server.state.find_user("changer").realname == "Bruce Wayne <bruce@wayne.example>"


async def test_setname_invalid_realname_fails(server):
    c = await server.client("namer", caps=["setname"])
    await c.send("SETNAME :" + "x" * 101)
    fail = await c.expect("FAIL", skip=False)
    assert fail.params[:2] == ["SETNAME", "INVALID_REALNAME"]
    await c.send("SETNAME : ")
    fail = await c.expect("FAIL", skip=False)
    assert fail.params[:2] == ["SETNAME", "INVALID_REALNAME"]
    await c.send("SETNAME")
    await c.expect("461", "namer", "SETNAME")
    assert server.state.find_user("namer").realname == "Test User"
    # exactly at the limit is fine
    await c.send("SETNAME :" + "y" * 100)
    ok = await c.expect("SETNAME")
    assert ok.params == ["y" * 100]


async def test_setname_without_the_cap_is_silent(server):
    c = await server.client("silent")
    await c.send("SETNAME :Quiet Name")
    assert await c.ping_pong() == []
    assert server.state.find_user("silent").realname == "Quiet Name"


async def test_setname_reaches_extended_monitor_watchers(server):
    watcher = await server.client("watcher", caps=["extended-monitor", "setname"])
    blind = await server.client("blind", caps=["extended-monitor"])
    target = await server.client("target", caps=["setname"])
    for c in (watcher, blind):
        await c.send("MONITOR + target")
        await c.expect("730")
    await target.send("SETNAME :new name")
    await target.expect("SETNAME")
    seen = await watcher.ping_pong()
    assert [(m.command, m.params) for m in seen] == [("SETNAME", ["new name"])]
    assert await blind.ping_pong() == []
