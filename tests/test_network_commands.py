"""Everything a client can do works across two hops as on one server: a chain of three
in-process servers linked by real TLS links, clients on both ends."""

from __future__ import annotations

import pytest

from ircd.passwords import hash_password
from netutil import start_network, until

PASSWORD = "network oper"
OPERS = f'''
[[oper]]
name = "admin"
password = "{hash_password(PASSWORD)}"
hosts = ["*@127.0.0.1"]
'''
CAPS = ["echo-message", "message-tags", "server-time", "labeled-response", "batch",
        "away-notify", "account-notify", "invite-notify", "setname", "chghost",
        "extended-monitor", "extended-join"]


@pytest.fixture
async def chain(nursery, tmp_path):
    s1, s2, s3 = await start_network(nursery, tmp_path, [(1, 0), (2, 1)], 3, extra=OPERS)
    left = await s1.client("left", caps=CAPS)
    right = await s3.client("right", caps=CAPS)
    await until(lambda: s1.state.find_user("right") and s3.state.find_user("left"),
                what="both users to be known everywhere")
    return s1, s2, s3, left, right


async def joined(servers, chan, *clients):
    for c in clients:
        await c.send(f"JOIN {chan}")
        await c.expect("366")
        await until(lambda: all(s.state.find_channel(chan) and c.nick in
                                {u.nick for u in s.state.find_channel(chan).members}
                                for s in servers), what=f"{c.nick} in {chan} everywhere")


async def test_channel_commands_across_two_hops(chain):
    s1, s2, s3, left, right = chain
    servers = (s1, s2, s3)
    await joined(servers, "#room", left, right)
    assert (await left.expect("JOIN")).source.startswith("right!")
    # TOPIC and MODE by the op on s1 reach s3
    await left.send("TOPIC #room :set far away")
    got = await right.expect("TOPIC")
    assert got.source.startswith("left!") and got.params == ["#room", "set far away"]
    await left.send("MODE #room +v right")
    got = await right.expect("MODE")
    assert got.params == ["#room", "+v", "right"]
    await left.send("MODE #room +b bad!*@*")
    assert (await right.expect("MODE")).params == ["#room", "+b", "bad!*@*"]
    # a tagged channel message with a label: echoed with the label, relayed with tags
    await left.send("@label=l1;+draft/react=x PRIVMSG #room :tagged")
    echo = await left.expect("PRIVMSG")
    assert echo.tags["label"] == "l1" and echo.tags["+draft/react"] == "x"
    got = await right.expect("PRIVMSG")
    assert got.tags["+draft/react"] == "x" and got.tags["msgid"] == echo.tags["msgid"]
    assert got.tags["time"] == echo.tags["time"] and got.tags["msgid"].startswith("1AA")
    await right.send("NOTICE #room :a notice")
    assert (await left.expect("NOTICE")).params == ["#room", "a notice"]
    await right.send("@+typing=active TAGMSG #room")
    assert (await left.expect("TAGMSG")).tags["+typing"] == "active"
    # NAMES on the far server shows the statuses set on s1
    await right.send("NAMES #room")
    names = await right.expect("353")
    assert set(names.params[-1].split()) == {"@left", "+right"}
    # KICK from s1 removes the s3 user everywhere
    await left.send("KICK #room right :bye")
    got = await right.expect("KICK")
    assert got.params == ["#room", "right", "bye"]
    await until(lambda: s2.state.find_user("right") not in s2.state.find_channel("#room").members)
    # INVITE across: +i channel, invite-notify, the invitee joins
    await left.send("MODE #room +i")
    await left.expect("MODE")
    await left.send("INVITE right #room")
    assert (await left.expect("341")).params[1:] == ["right", "#room"]
    got = await right.expect("INVITE")
    assert got.source.startswith("left!") and got.params == ["right", "#room"]
    await until(lambda: s3.state.find_user("right").uid in s3.state.find_channel("#room").invited)
    await right.send("JOIN #room")
    assert (await right.expect("JOIN")).params[0] == "#room"
    await right.send("PART #room :leaving")
    got = await left.expect("PART")
    assert got.source.startswith("right!") and got.params == ["#room", "leaving"]


async def test_user_commands_across_two_hops(chain):
    s1, s2, s3, left, right = chain
    servers = (s1, s2, s3)
    await joined(servers, "#users", left, right)
    await left.expect("JOIN")
    # private message, with echo
    await left.send("PRIVMSG right :hi there")
    assert (await left.expect("PRIVMSG")).params == ["right", "hi there"]
    got = await right.expect("PRIVMSG")
    assert got.source.startswith("left!") and got.params == ["right", "hi there"]
    # NICK on s3 is seen on s1; the old nick is in WHOWAS on s1
    await right.send("NICK righter")
    got = await left.expect("NICK")
    assert got.source.startswith("right!") and got.params == ["righter"]
    await left.send("WHOWAS right")
    assert (await left.expect("314")).params[1] == "right"
    # AWAY (away-notify), SETNAME (setname), CHGHOST (chghost) by an oper on s1
    await right.send("AWAY :gone fishing")
    got = await left.expect("AWAY")
    assert got.source.startswith("righter!") and got.params == ["gone fishing"]
    await left.send("PRIVMSG righter :are you there")
    assert (await left.expect("301")).params[1:] == ["righter", "gone fishing"]
    await right.send("SETNAME :A New Name")
    assert (await left.expect("SETNAME")).params == ["A New Name"]
    await left.send(f"OPER admin :{PASSWORD}")
    await left.expect("381")
    await left.send("CHGHOST righter ident new.host")
    got = await left.expect("CHGHOST")
    assert got.source.startswith("righter!") and got.params == ["ident", "new.host"]
    assert (await right.expect("396")).params[1] == "new.host"
    # queries answered from the network state
    await left.send("ISON righter nobody")
    assert (await left.expect("303")).params[-1] == "righter"
    await left.send("USERHOST righter")
    assert (await left.expect("302")).params[-1] == "righter=-ident@new.host"
    await left.send("WHO #users")
    who = [m for m in await left.collect_until("315") if m.command == "352"]
    assert sorted((m.params[5], m.params[4]) for m in who) == [
        ("left", "s1.test"), ("righter", "s3.test")]
    await left.send("LINKS")
    links = [m for m in await left.collect_until("365") if m.command == "364"]
    assert [(m.params[1], m.params[2], m.params[3].split()[0]) for m in links] == [
        ("s1.test", "s1.test", "0"), ("s2.test", "s1.test", "1"), ("s3.test", "s2.test", "2")]
    await left.send("MAP")
    tree = [m.params[1] for m in await left.collect_until("007") if m.command == "006"]
    assert tree == ["s1.test (1AA) 1 users", "`- s2.test (2AA) 0 users",
                    "   `- s3.test (3AA) 1 users"]
    # WALLOPS reaches +w users on s3
    await right.send("MODE righter +w")
    await right.expect("MODE")
    await until(lambda: "w" in s1.state.find_user("righter").modes)
    await left.send("WALLOPS :network notice")
    got = await right.expect("WALLOPS")
    assert got.source.startswith("left!") and got.params == ["network notice"]
    # MONITOR on s1 follows a user on s3
    await left.send("MONITOR + righter")
    assert (await left.expect("730")).params[-1].startswith("righter!")
    # KILL of a user on another server
    await left.send("KILL righter :enough")
    error = await right.expect("ERROR")
    assert "Killed (left (enough))" in error.params[0]
    assert (await left.expect("731")).params[-1] == "righter"
    await until(lambda: s3.state.find_user("righter") is None and s2.state.find_user("righter") is None)


async def test_nick_taken_elsewhere_is_refused_and_lusers_counts_the_network(chain):
    s1, s2, s3, left, right = chain
    await right.send("NICK left")
    assert (await right.expect("433")).params[1] == "left"
    await left.send("LUSERS")
    msgs = {m.command: m for m in await left.collect_until("266")}
    assert msgs["251"].params[-1] == "There are 2 users and 0 invisible on 3 servers"
    assert msgs["255"].params[-1] == "I have 1 clients and 1 servers"


async def test_operators_see_links_in_stats_and_can_squit_and_connect(chain):
    s1, s2, s3, left, right = chain
    await joined((s1, s2, s3), "#ops", left, right)
    await left.send(f"OPER admin :{PASSWORD}")
    await left.expect("381")
    await left.send("STATS l")
    rows = [m for m in await left.collect_until("219") if m.command == "211"]
    link = [m for m in rows if m.params[1].startswith("s2.test[127.0.0.1:")]
    assert len(link) == 1 and link[0].params[-1].startswith("linked, lag")
    # SQUIT drops the link (a netsplit for everyone), CONNECT brings it back at once
    await left.send("SQUIT s2.test :maintenance")
    assert "Dropping the link to s2.test: maintenance" in (await left.expect("NOTICE")).params[-1]
    quit = await right.expect("QUIT")
    assert quit.source.startswith("left!") and quit.params == ["s2.test s1.test"]
    await until(lambda: len(s1.state.registry.servers) == 1, what="s1 alone")
    await left.send("CONNECT s2.test")
    assert "Connecting to s2.test" in (await left.expect("NOTICE")).params[-1]
    await until(lambda: len(s1.state.registry.servers) == 3, what="the network whole again")
    await left.send("CONNECT s2.test")
    assert "already linked" in (await left.expect("NOTICE")).params[-1]
    await left.send("CONNECT nowhere.test")
    assert (await left.expect("402")).params[1] == "nowhere.test"
    await left.send("SQUIT nowhere.test")
    assert (await left.expect("402")).params[1:] == ["nowhere.test", "No such server"]
    await left.send("SQUIT s3.test")            # on the network, but not linked to s1
    assert (await left.expect("402")).params[1:] == [
        "s3.test", "No such server: it is not linked to this one (SQUIT it from its neighbour)"]
    await right.send("CONNECT s2.test")           # not an operator
    assert (await right.expect("481")).params[0] == "right"


async def test_a_message_crossing_its_senders_kill_does_not_drop_a_link(chain):
    """The operator on s1 kills right while right (on s3) is talking: right's last lines
    may reach s1 after s1 removed right. They are ignored, and the links stay up."""
    s1, s2, s3, left, right = chain
    await joined((s1, s2, s3), "#race", left, right)
    await left.send(f"OPER admin :{PASSWORD}")
    await left.expect("381")
    await right.send(*[f"PRIVMSG #race :line {i}" for i in range(50)])
    await left.send("KILL right :race")
    await until(lambda: s3.state.find_user("right") is None, what="the kill to reach s3")
    await left.ping_pong()
    assert all(len(s.state.registry.servers) == 3 for s in (s1, s2, s3))
    assert all(l.established for s in (s1, s2, s3) for l in s.state.linking.links)
