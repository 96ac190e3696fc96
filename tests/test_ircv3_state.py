"""IRCv3 notifications about other users: extended-join, account-notify, away on join."""

from irctest import shown

S = ":test.server"


async def test_extended_join_carries_account_and_realname(server):
    watcher = await server.client("watcher", caps=["extended-join"])
    plain = await server.client("plainw")
    for c in (watcher, plain):
        await c.send("JOIN #x")
        await c.expect("366")
    # plainw's join, extended for the watcher
    assert shown(await watcher.ping_pong()) == [":plainw!~plainw@127.0.0.1 JOIN #x * :Test User"]
    joiner = await server.client("joiner", realname="Jo Iner")
    await joiner.send("JOIN #x")
    await joiner.ping_pong()
    assert shown(await watcher.ping_pong()) == [":joiner!~joiner@127.0.0.1 JOIN #x * :Jo Iner"]
    assert shown(await plain.ping_pong()) == [":joiner!~joiner@127.0.0.1 JOIN #x"]
    await joiner.send("PART #x")
    await joiner.ping_pong()
    assert shown(await watcher.ping_pong()) == [":joiner!~joiner@127.0.0.1 PART #x"]
    server.state.set_account(server.state.find_user("joiner"), "jo")
    await joiner.send("JOIN #x")
    await joiner.ping_pong()
    assert shown(await watcher.ping_pong()) == [":joiner!~joiner@127.0.0.1 JOIN #x jo :Jo Iner"]


async def test_account_notify_reaches_neighbours_with_the_cap(server):
    acct = await server.client("logger")
    notified = await server.client("notified", caps=["account-notify"])
    blind = await server.client("blind")
    for c in (acct, notified, blind):
        await c.send("JOIN #acc")
        await c.expect("366")
    for c in (acct, notified, blind):
        await c.ping_pong()
    user = server.state.find_user("logger")
    server.state.set_account(user, "logger-acct")
    server.state.set_account(user, None)
    assert shown(await notified.ping_pong()) == [":logger!~logger@127.0.0.1 ACCOUNT logger-acct",
                                                 ":logger!~logger@127.0.0.1 ACCOUNT *"]
    assert [m.command for m in await blind.ping_pong()] == []     # no cap, no ACCOUNT
    assert await acct.ping_pong() == []


async def test_away_notify_tells_joining_members_about_away_users(server):
    early = await server.client("early", caps=["away-notify"])
    await early.send("JOIN #aw")
    await early.expect("366")
    late = await server.client("lateaway")
    server.state.find_user("lateaway").away = "brb"
    await late.send("JOIN #aw")
    await late.ping_pong()
    assert shown(await early.ping_pong()) == [":lateaway!~lateaway@127.0.0.1 JOIN #aw",
                                              ":lateaway!~lateaway@127.0.0.1 AWAY brb"]


async def test_cap_ls_fits_on_one_line_for_302(server):
    """pydle keeps only the last line of a multi-line CAP LS: keep it on one line."""
    c = await server.client()
    await c.send("CAP LS 302")
    ls, = await c.ping_pong()
    assert (ls.source, ls.command, ls.params[:2], len(ls.params)) == ("test.server", "CAP",
                                                                      ["*", "LS"], 3)
    await c.send("CAP LS")          # 301 style: no values, still one line here
    ls301, = await c.ping_pong()
    assert ls301.params[:2] == ["*", "LS"] and len(ls301.params) == 3
    assert ls301.params[2].split() == [cap.split("=")[0] for cap in ls.params[2].split()]


async def test_cap_req_and_authenticate_accepted_after_registration(server):
    """pydle sends CAP REQ after 001; the server must still answer."""
    c = await server.client("pydle")
    await c.send("CAP REQ :server-time message-tags", "CAP REQ :-server-time", "CAP LIST")
    assert shown(await c.ping_pong()) == [f"{S} CAP pydle ACK :server-time message-tags",
                                          f"{S} CAP pydle ACK -server-time",
                                          f"{S} CAP pydle LIST message-tags"]
