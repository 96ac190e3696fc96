"""MONITOR (IRCv3 monitor and extended-monitor): every subcommand, the limit, and the
730/731 notifications on connect, nick change and quit."""

import trio

from irctest import IRCClient, show, shown

S = ":test.server"


def entries(msgs, code):
    """Every target in the given numerics, in order."""
    out = []
    for m in msgs:
        if m.command == code:
            out.extend(m.params[-1].split(","))
    return out


async def test_monitor_add_reports_online_and_offline(server):
    watcher = await server.client("watcher")
    online = await server.client("online")  # noqa: F841 (kept open)
    await watcher.send("MONITOR + online,Offline")
    msgs = await watcher.ping_pong()
    assert sorted(m.command for m in msgs) == ["730", "731"]
    mononline = next(m for m in msgs if m.command == "730")
    assert mononline.params == ["watcher", "online!~online@127.0.0.1"]
    monoffline = next(m for m in msgs if m.command == "731")
    assert monoffline.params == ["watcher", "Offline"]       # as the client sent it
    assert server.state.monitors == {"online": {watcher_client(server, "watcher")},
                                     "offline": {watcher_client(server, "watcher")}}


def watcher_client(server, nick):
    return server.state.find_user(nick).session


async def test_monitor_list_remove_clear_and_status(server):
    c = await server.client("lister")
    here = await server.client("here")  # noqa: F841 (kept open)
    await c.send("MONITOR L")
    msgs = await c.ping_pong()
    assert [m.command for m in msgs] == ["733"]
    assert msgs[0].params == ["lister", "End of MONITOR list"]

    await c.send("MONITOR + here,Gone,QUX", "MONITOR + qux")  # already there: not added twice
    assert shown(await c.ping_pong()) == [f"{S} 730 lister here!~here@127.0.0.1",
                                          f"{S} 731 lister Gone,QUX", f"{S} 731 lister qux"]
    await c.send("MONITOR L")
    msgs = await c.ping_pong()
    assert [m.command for m in msgs] == ["732", "733"]
    assert sorted(entries(msgs, "732")) == ["gone", "here", "qux"]
    assert show(msgs[1]) == f"{S} 733 lister :End of MONITOR list"

    await c.send("MONITOR S")
    msgs = await c.ping_pong()
    assert entries(msgs, "730") == ["here!~here@127.0.0.1"]
    assert sorted(entries(msgs, "731")) == ["gone", "qux"]

    await c.send("MONITOR - GONE,notlisted")
    assert await c.ping_pong() == []                 # no output for removal
    await c.send("MONITOR L")
    assert sorted(entries(await c.ping_pong(), "732")) == ["here", "qux"]
    assert "gone" not in server.state.monitors

    await c.send("MONITOR C")
    assert await c.ping_pong() == []                 # no output for clearing
    await c.send("MONITOR L")
    assert [m.command for m in await c.ping_pong()] == ["733"]
    assert server.state.monitors == {}
    assert watcher_client(server, "lister").monitoring is None

    await c.send("MONITOR S")
    assert await c.ping_pong() == []


async def test_monitor_subcommands_are_case_insensitive_and_errors(server):
    c = await server.client("errs")
    await c.send("MONITOR + x", "MONITOR l")
    assert shown(await c.ping_pong()) == [f"{S} 731 errs x", f"{S} 732 errs x",
                                          f"{S} 733 errs :End of MONITOR list"]
    await c.send("MONITOR", "MONITOR +", "MONITOR - :,", "MONITOR X")
    assert shown(await c.ping_pong()) == [f"{S} 461 errs MONITOR :Not enough parameters"] * 3 + [
        f"{S} 400 errs MONITOR X :Unknown MONITOR subcommand: use +, -, C, L or S"]
    assert set(server.state.monitors) == {"x"}


async def test_monitor_ignores_masks_and_channels(server):
    c = await server.client("masker")
    await c.send("MONITOR + *!username@127.0.0.1,#chan,ok")
    assert shown(await c.ping_pong()) == [f"{S} 731 masker ok"]
    assert set(server.state.monitors) == {"ok"}
    other = await server.client("someone")  # noqa: F841 (kept open)
    assert await c.ping_pong() == []


async def test_monitor_limit(make_server):
    srv = await make_server(limits={"monitor": 2})
    c = await srv.client("limited")
    await c.send("MONITOR + one,two,three,four")
    assert shown(await c.ping_pong()) == [f"{S} 734 limited 2 three,four :Monitor list is full.",
                                          f"{S} 731 limited one,two"]
    # re-adding an entry already listed is fine at the limit; a new one is not
    await c.send("MONITOR + two")
    assert shown(await c.ping_pong()) == [f"{S} 731 limited two"]
    await c.send("MONITOR + five")
    assert shown(await c.ping_pong()) == [f"{S} 734 limited 2 five :Monitor list is full."]
    assert set(srv.state.monitors) == {"one", "two"}
    # removing makes room
    await c.send("MONITOR - one", "MONITOR + five")
    assert shown(await c.ping_pong()) == [f"{S} 731 limited five"]
    assert set(srv.state.monitors) == {"two", "five"}


async def test_monitor_disabled_with_zero_limit(make_server):
    srv = await make_server(limits={"monitor": 0})
    c = await srv.client("nomon")
    await c.send("MONITOR + any")
    assert shown(await c.ping_pong()) == [f"{S} 734 nomon 0 any :Monitor list is full."]
    assert srv.state.monitors == {}


async def test_online_offline_on_connect_quit_and_nick_change(server):
    watcher = await server.client("watcher")
    await watcher.send("MONITOR + bar,qux")
    assert shown(await watcher.ping_pong()) == [f"{S} 731 watcher bar,qux"]

    bar = await server.client("bar")
    note = await watcher.expect("730", skip=False)
    assert show(note) == f"{S} 730 watcher bar!~bar@127.0.0.1"

    async def nick(new):
        old = bar.nick
        await bar.send(f"NICK {new}")
        assert shown(await bar.ping_pong()) == [f":{old}!~bar@127.0.0.1 NICK {new}"]
        bar.nick = new
        return shown(await watcher.ping_pong())

    assert await nick("qux") == [f"{S} 731 watcher bar", f"{S} 730 watcher qux!~bar@127.0.0.1"]
    assert await nick("QUX") == []                # a case change is no news
    assert await nick("other") == [f"{S} 731 watcher QUX"]
    assert await nick("bar") == [f"{S} 730 watcher bar!~bar@127.0.0.1"]
    await bar.send("QUIT :bye")
    assert show(await bar.expect("ERROR")) == "ERROR :Closing Link: 127.0.0.1 (Quit: bye)"
    gone = await watcher.expect("731", skip=False)
    assert show(gone) == f"{S} 731 watcher bar"


async def test_unregistered_nick_is_not_online(server):
    watcher = await server.client("watcher")
    await watcher.send("MONITOR + halfway")
    assert shown(await watcher.ping_pong()) == [f"{S} 731 watcher halfway"]
    half = await IRCClient.connect(server.port)
    await half.send("NICK halfway")
    assert await half.ping_pong() == []            # the NICK is taken in, not registered
    assert await watcher.ping_pong() == []
    await half.send("USER h 0 * :h")
    assert show(await half.expect("001")) == \
        f"{S} 001 halfway :Welcome to the TestNet IRC Network halfway!~h@127.0.0.1"
    assert shown(await watcher.ping_pong()) == [f"{S} 730 watcher halfway!~h@127.0.0.1"]


async def test_two_watchers_one_removes(server):
    a = await server.client("wa")
    b = await server.client("wb")
    for c in (a, b):
        await c.send("MONITOR + target")
        assert shown(await c.ping_pong()) == [f"{S} 731 {c.nick} target"]
    await b.send("MONITOR - target")
    assert await b.ping_pong() == []
    target = await server.client("target")  # noqa: F841 (kept open)
    assert show(await a.expect("730")) == f"{S} 730 wa target!~target@127.0.0.1"
    assert await b.ping_pong() == []


async def test_watcher_quit_cleans_up(server):
    a = await server.client("leaver")
    await a.send("MONITOR + somebody,else")
    await a.ping_pong()
    assert set(server.state.monitors) == {"somebody", "else"}
    await a.send("QUIT")
    assert show(await a.expect("ERROR")) == "ERROR :Closing Link: 127.0.0.1 (Client Quit)"
    with trio.fail_after(5):
        while server.state.monitors:
            await trio.sleep(0.01)


async def test_long_lists_are_split_within_512_bytes(make_server):
    srv = await make_server(limits={"monitor": 200, "flood_control": False})
    c = await srv.client("many")
    nicks = [f"nick{i:03d}xxxxxxxxxxxxxxxxxx" for i in range(150)]
    await c.send("MONITOR + " + ",".join(nicks[:15]))
    for i in range(15, 150, 15):
        await c.send("MONITOR + " + ",".join(nicks[i:i + 15]))
    added = await c.ping_pong()
    assert [m.command for m in added] == ["731"] * 10
    assert [n for m in added for n in m.params[1].split(",")] == nicks
    await c.send("MONITOR L")
    raw = []
    with trio.fail_after(5):
        while True:
            line = await c.next_line()
            raw.append(line)
            if " 733 " in line:
                break
    assert all(len(line.encode()) + 2 <= 512 for line in raw)
    assert len(raw) > 2
    listed = [n for line in raw if " 732 " in line for n in line.split(" :", 1)[1].split(",")]
    assert sorted(listed) == sorted(n.lower() for n in nicks)


async def test_extended_monitor_chghost_and_plain_monitor_not(make_server):
    from ircd.passwords import hash_password
    srv = await make_server(extra=f'[[oper]]\nname = "admin"\npassword = "{hash_password("pw")}"\n')
    oper = await srv.client("boss")
    await oper.send("OPER admin pw")
    assert shown(await oper.ping_pong()) == [f"{S} 381 boss :You are now an IRC operator",
                                             ":boss!~boss@127.0.0.1 MODE boss +o"]
    ext = await srv.client("ext", caps=["extended-monitor", "chghost"])
    plain = await srv.client("plain", caps=["chghost"])
    target = await srv.client("target")  # noqa: F841 (kept open)
    for c in (ext, plain):
        await c.send("MONITOR + target")
        assert shown(await c.ping_pong()) == [f"{S} 730 {c.nick} target!~target@127.0.0.1"]
    await oper.send("CHGHOST target newid new.host")
    assert shown(await oper.ping_pong()) == [
        f"{S} NOTICE boss :*** Changed the host of target to newid@new.host"]
    assert shown(await ext.ping_pong()) == [":target!~target@127.0.0.1 CHGHOST newid new.host"]
    assert await plain.ping_pong() == []
    await ext.send("MONITOR S")
    assert shown(await ext.ping_pong()) == [f"{S} 730 ext target!newid@new.host"]
