"""MONITOR (IRCv3 monitor and extended-monitor): every subcommand, the limit, and the
730/731 notifications on connect, nick change and quit."""

import trio

from irctest import IRCClient


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
    await c.ping_pong()
    await c.send("MONITOR L")
    msgs = await c.ping_pong()
    assert [m.command for m in msgs] == ["732", "733"]
    assert sorted(entries(msgs, "732")) == ["gone", "here", "qux"]

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
    msgs = await c.ping_pong()
    assert [m.command for m in msgs] == ["731", "732", "733"]
    await c.send("MONITOR")
    await c.expect("461", "errs", "MONITOR")
    await c.send("MONITOR +")
    await c.expect("461", "errs", "MONITOR")
    await c.send("MONITOR - :,")
    await c.expect("461", "errs", "MONITOR")
    await c.send("MONITOR X")
    err = await c.expect("400")
    assert err.params[1:3] == ["MONITOR", "X"]


async def test_monitor_ignores_masks_and_channels(server):
    c = await server.client("masker")
    await c.send("MONITOR + *!username@127.0.0.1,#chan,ok")
    msgs = await c.ping_pong()
    assert [(m.command, m.params[1]) for m in msgs] == [("731", "ok")]
    assert set(server.state.monitors) == {"ok"}
    other = await server.client("someone")  # noqa: F841 (kept open)
    assert await c.ping_pong() == []


async def test_monitor_limit(make_server):
    srv = await make_server(limits={"monitor": 2})
    c = await srv.client("limited")
    await c.send("MONITOR + one,two,three,four")
    msgs = await c.ping_pong()
    full = [m for m in msgs if m.command == "734"]
    assert len(full) == 1
    assert full[0].params == ["limited", "2", "three,four", "Monitor list is full."]
    assert entries(msgs, "731") == ["one", "two"]
    # re-adding an entry already listed is fine at the limit; a new one is not
    await c.send("MONITOR + two")
    assert [m.command for m in await c.ping_pong()] == ["731"]
    await c.send("MONITOR + five")
    full = await c.expect("734")
    assert full.params[1:3] == ["2", "five"]
    # removing makes room
    await c.send("MONITOR - one", "MONITOR + five")
    assert [(m.command, m.params[1]) for m in await c.ping_pong()] == [("731", "five")]


async def test_monitor_disabled_with_zero_limit(make_server):
    srv = await make_server(limits={"monitor": 0})
    c = await srv.client("nomon")
    await c.send("MONITOR + any")
    full = await c.expect("734")
    assert full.params[1:3] == ["0", "any"]


async def test_online_offline_on_connect_quit_and_nick_change(server):
    watcher = await server.client("watcher")
    await watcher.send("MONITOR + bar,qux")
    await watcher.ping_pong()

    bar = await server.client("bar")
    note = await watcher.expect("730", skip=False)
    assert note.params == ["watcher", "bar!~bar@127.0.0.1"]

    await bar.send("NICK qux")
    await bar.expect("NICK")
    msgs = await watcher.ping_pong()
    assert [(m.command, m.params[1]) for m in msgs] == [("731", "bar"), ("730", "qux!~bar@127.0.0.1")]

    await bar.send("NICK QUX")                   # a case change is no news
    await bar.expect("NICK")
    assert await watcher.ping_pong() == []

    await bar.send("NICK other")
    await bar.expect("NICK")
    msgs = await watcher.ping_pong()
    assert [(m.command, m.params[1]) for m in msgs] == [("731", "QUX")]

    await bar.send("NICK bar")
    await bar.expect("NICK")
    await watcher.expect("730")
    await bar.send("QUIT :bye")
    await bar.expect("ERROR")
    gone = await watcher.expect("731", skip=False)
    assert gone.params == ["watcher", "bar"]


async def test_unregistered_nick_is_not_online(server):
    watcher = await server.client("watcher")
    await watcher.send("MONITOR + halfway")
    await watcher.expect("731")
    half = await IRCClient.connect(server.port)
    await half.send("NICK halfway")
    assert await watcher.quiet(0.3) == []
    await half.send("USER h 0 * :h")
    await half.expect("001")
    await watcher.expect("730")


async def test_two_watchers_one_removes(server):
    a = await server.client("wa")
    b = await server.client("wb")
    for c in (a, b):
        await c.send("MONITOR + target")
        await c.expect("731")
    await b.send("MONITOR - target")
    await b.ping_pong()
    target = await server.client("target")  # noqa: F841 (kept open)
    await a.expect("730")
    assert await b.ping_pong() == []


async def test_watcher_quit_cleans_up(server):
    a = await server.client("leaver")
    await a.send("MONITOR + somebody,else")
    await a.ping_pong()
    assert set(server.state.monitors) == {"somebody", "else"}
    await a.send("QUIT")
    await a.expect("ERROR")
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
    await c.ping_pong()
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
    await oper.expect("381")
    ext = await srv.client("ext", caps=["extended-monitor", "chghost"])
    plain = await srv.client("plain", caps=["chghost"])
    target = await srv.client("target")  # noqa: F841 (kept open)
    for c in (ext, plain):
        await c.send("MONITOR + target")
        await c.expect("730")
    await oper.send("CHGHOST target newid new.host")
    await oper.ping_pong()
    seen = await ext.ping_pong()
    assert [(m.command, m.params) for m in seen] == [("CHGHOST", ["newid", "new.host"])]
    assert seen[0].source == "target!~target@127.0.0.1"
    assert await plain.ping_pong() == []
    await ext.send("MONITOR S")
    status = await ext.expect("730")
    assert status.params[1] == "target!newid@new.host"
