"""AWAY (with away-notify and RPL_AWAY) and SETNAME (IRCv3 setname), as clients see them."""

from irctest import shown

S = ":test.server"
AWAY_ON = f"{S} 306 %s :You have been marked as being away"
AWAY_OFF = f"{S} 305 %s :You are no longer marked as being away"


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

    assert shown(await notified.ping_pong()) == [":goer!~goer@127.0.0.1 AWAY :gone fishing"]
    assert await plain.ping_pong() == []          # no away-notify, no AWAY line

    await plain.send("PRIVMSG goer :are you there?")
    assert shown(await plain.ping_pong()) == [f"{S} 301 plain goer :gone fishing"]

    # setting the same message again is not announced
    await goer.send("AWAY :gone fishing")
    assert shown(await goer.ping_pong()) == [":plain!~plain@127.0.0.1 PRIVMSG goer :are you there?",
                                             AWAY_ON % "goer"]
    assert await notified.ping_pong() == []

    await goer.send("AWAY")
    back = await goer.expect("305", skip=False)
    assert back.params == ["goer", "You are no longer marked as being away"]
    assert await goer.ping_pong() == []
    assert shown(await notified.ping_pong()) == [":goer!~goer@127.0.0.1 AWAY"]
    assert server.state.find_user("goer").away is None

    await plain.send("PRIVMSG goer :welcome back")
    assert await plain.ping_pong() == []          # no 301 any more

    # not away and "AWAY :" (empty) again: 305, nobody is told anything
    await goer.send("AWAY :")
    assert shown(await goer.ping_pong()) == [":plain!~plain@127.0.0.1 PRIVMSG goer :welcome back",
                                             AWAY_OFF % "goer"]
    assert await notified.ping_pong() == [] and await plain.ping_pong() == []


async def test_away_message_is_truncated_to_awaylen(make_server):
    srv = await make_server(limits={"awaylen": 10})
    watcher = await srv.client("watcher", caps=["away-notify"])
    user = await srv.client("longaway")
    await join_all("#t", watcher, user)
    await user.send("AWAY :" + "é" * 8)         # 16 bytes; cut on a character boundary
    assert shown(await user.ping_pong()) == [AWAY_ON % "longaway"]
    assert srv.state.find_user("longaway").away == "é" * 5
    assert shown(await watcher.ping_pong()) == [":longaway!~longaway@127.0.0.1 AWAY ééééé"]


async def test_away_reaches_extended_monitor_watchers_with_away_notify(server):
    full = await server.client("full", caps=["extended-monitor", "away-notify"])
    monitor_only = await server.client("monly", caps=["extended-monitor"])
    notify_only = await server.client("nonly", caps=["away-notify"])
    target = await server.client("target")
    for c in (full, monitor_only, notify_only):
        await c.send("MONITOR + target")
        assert shown(await c.ping_pong()) == [f"{S} 730 {c.nick} target!~target@127.0.0.1"]

    await target.send("AWAY :afk")
    assert shown(await target.ping_pong()) == [AWAY_ON % "target"]
    assert shown(await full.ping_pong()) == [":target!~target@127.0.0.1 AWAY afk"]
    assert await monitor_only.ping_pong() == []
    assert await notify_only.ping_pong() == []

    await target.send("AWAY")
    assert shown(await target.ping_pong()) == [AWAY_OFF % "target"]
    assert shown(await full.ping_pong()) == [":target!~target@127.0.0.1 AWAY"]
    assert await monitor_only.ping_pong() == [] and await notify_only.ping_pong() == []


async def test_shared_channel_and_monitor_get_one_away_line(server):
    both = await server.client("both", caps=["extended-monitor", "away-notify"])
    target = await server.client("target")
    await join_all("#x", both, target)
    await both.send("MONITOR + target")
    assert shown(await both.ping_pong()) == [f"{S} 730 both target!~target@127.0.0.1"]
    await target.send("AWAY :brb")
    assert shown(await target.ping_pong()) == [AWAY_ON % "target"]
    assert shown(await both.ping_pong()) == [":target!~target@127.0.0.1 AWAY brb"]


async def test_setname_changes_realname_and_tells_setname_clients(server):
    changer = await server.client("changer", caps=["setname"])
    peer = await server.client("peer", caps=["setname"])
    old = await server.client("oldclient")
    await join_all("#s", changer, peer, old)

    await changer.send("SETNAME :Bruce Wayne <bruce@wayne.example>")
    line = ":changer!~changer@127.0.0.1 SETNAME :Bruce Wayne <bruce@wayne.example>"
    assert shown(await changer.ping_pong()) == [line]
    assert shown(await peer.ping_pong()) == [line]
    assert await old.ping_pong() == []
    assert server.state.find_user("changer").realname == "Bruce Wayne <bruce@wayne.example>"


async def test_setname_invalid_realname_fails(server):
    c = await server.client("namer", caps=["setname"])
    invalid = (f"{S} FAIL SETNAME INVALID_REALNAME :Realname is not valid: it must be 1 to 100 "
               "characters without control characters")
    await c.send("SETNAME :" + "x" * 101, "SETNAME : ", "SETNAME")
    assert shown(await c.ping_pong()) == [invalid, invalid,
                                          f"{S} 461 namer SETNAME :Not enough parameters"]
    assert server.state.find_user("namer").realname == "Test User"
    # exactly at the limit is fine
    await c.send("SETNAME :" + "y" * 100)
    assert shown(await c.ping_pong()) == [f":namer!~namer@127.0.0.1 SETNAME {'y' * 100}"]
    assert server.state.find_user("namer").realname == "y" * 100


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
        assert shown(await c.ping_pong()) == [f"{S} 730 {c.nick} target!~target@127.0.0.1"]
    await target.send("SETNAME :new name")
    assert shown(await target.ping_pong()) == [":target!~target@127.0.0.1 SETNAME :new name"]
    assert shown(await watcher.ping_pong()) == [":target!~target@127.0.0.1 SETNAME :new name"]
    assert await blind.ping_pong() == []
