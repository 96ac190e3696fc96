"""IRCv3 notifications about other users: extended-join, account-notify, away on join."""


async def test_extended_join_carries_account_and_realname(server):
    watcher = await server.client("watcher", caps=["extended-join"])
    plain = await server.client("plainw")
    for c in (watcher, plain):
        await c.send("JOIN #x")
        await c.expect("366")
    await watcher.expect("JOIN")          # plainw's join, extended
    joiner = await server.client("joiner", realname="Jo Iner")
    await joiner.send("JOIN #x")
    ext = await watcher.expect("JOIN")
    assert ext.source.startswith("joiner!") and ext.params == ["#x", "*", "Jo Iner"]
    simple = await plain.expect("JOIN")
    assert simple.params == ["#x"]
    await joiner.send("PART #x")
    await watcher.expect("PART")
    server.state.set_account(server.state.find_user("joiner"), "jo")
    await joiner.send("JOIN #x")
    ext = await watcher.expect("JOIN")
    assert ext.params == ["#x", "jo", "Jo Iner"]


async def test_account_notify_reaches_neighbours_with_the_cap(server):
    acct = await server.client("logger")
    notified = await server.client("notified", caps=["account-notify"])
    blind = await server.client("blind")
    for c in (acct, notified, blind):
        await c.send("JOIN #acc")
        await c.expect("366")
    user = server.state.find_user("logger")
    server.state.set_account(user, "logger-acct")
    msg = await notified.expect("ACCOUNT")
    assert msg.source.startswith("logger!") and msg.params == ["logger-acct"]
    server.state.set_account(user, None)
    assert (await notified.expect("ACCOUNT")).params == ["*"]
    assert [m.command for m in await blind.ping_pong()] == []     # no cap, no ACCOUNT


async def test_away_notify_tells_joining_members_about_away_users(server):
    early = await server.client("early", caps=["away-notify"])
    await early.send("JOIN #aw")
    await early.expect("366")
    late = await server.client("lateaway")
    server.state.find_user("lateaway").away = "brb"
    await late.send("JOIN #aw")
    await early.expect("JOIN")
    away = await early.expect("AWAY")
    assert away.source.startswith("lateaway!") and away.params == ["brb"]


async def test_cap_ls_fits_on_one_line_for_302(server):
    """pydle keeps only the last line of a multi-line CAP LS: keep it on one line."""
    c = await server.client()
    await c.send("CAP LS 302")
    ls = await c.expect("CAP")
    assert ls.params[:2] == ["*", "LS"] and len(ls.params) == 3
    await c.send("CAP LS")          # 301 style: no values, still one line here
    ls = await c.expect("CAP")
    assert len(ls.params) == 3


async def test_cap_req_and_authenticate_accepted_after_registration(server):
    """pydle sends CAP REQ after 001; the server must still answer."""
    c = await server.client("pydle")
    await c.send("CAP REQ :server-time message-tags")
    ack = await c.expect("CAP")
    assert ack.params == ["pydle", "ACK", "server-time message-tags"]
    await c.send("CAP REQ :-server-time")
    await c.expect("CAP", "pydle", "ACK")
    await c.send("CAP LIST")
    listed = await c.expect("CAP", "pydle", "LIST")
    assert listed.params[2].split() == ["message-tags"]
