"""Linked servers are one network to their clients (in-process servers, real TLS links)."""

from __future__ import annotations

from netutil import start_network, until


async def test_two_linked_servers_share_channels_messages_and_counts(nursery, tmp_path):
    a, b = await start_network(nursery, tmp_path, [(1, 0)], 2)
    alice = await a.client("alice")
    bob = await b.client("bob")
    await alice.send("JOIN #x")
    await alice.expect("366")
    await until(lambda: b.state.find_channel("#x"), what="#x to reach s2")
    await bob.send("JOIN #x")
    names = await bob.expect("353")
    assert set(names.params[-1].split()) == {"@alice", "bob"}
    joined = await alice.expect("JOIN")
    assert joined.source.startswith("bob!") and joined.params == ["#x"]
    await alice.send("PRIVMSG #x :hello over the link")
    got = await bob.expect("PRIVMSG")
    assert got.source.startswith("alice!") and got.params == ["#x", "hello over the link"]
    await bob.send("PRIVMSG alice :and back")
    got = await alice.expect("PRIVMSG")
    assert got.source.startswith("bob!") and got.params == ["alice", "and back"]
    await bob.send("LUSERS")
    luser = await bob.expect("251")
    assert luser.params[-1] == "There are 2 users and 0 invisible on 2 servers"
    await alice.send("WHOIS bob")
    server_line = await alice.expect("312")
    assert server_line.params[1:3] == ["bob", "s2.test"]


async def test_three_servers_in_a_chain_relay_across_two_hops(nursery, tmp_path):
    s1, s2, s3 = await start_network(nursery, tmp_path, [(1, 0), (2, 1)], 3)
    left = await s1.client("left", caps=["echo-message"])
    right = await s3.client("right")
    await left.send("JOIN #chain")
    await left.expect("366")
    await until(lambda: s3.state.find_channel("#chain"), what="#chain on s3")
    await right.send("JOIN #chain")
    await right.expect("366")
    assert (await left.expect("JOIN")).source.startswith("right!")
    await left.send("PRIVMSG #chain :two hops")
    assert (await left.expect("PRIVMSG")).params == ["#chain", "two hops"]   # echo
    got = await right.expect("PRIVMSG")
    assert got.source.startswith("left!") and got.params == ["#chain", "two hops"]
    # WHOIS across two hops: the remote server's name, and the idle time it knows
    await left.send("WHOIS right")
    reply = await left.collect_until("318")
    by = {m.command: m for m in reply}
    assert by["312"].params[1:3] == ["right", "s3.test"]
    assert by["317"].params[1] == "right" and int(by["317"].params[2]) >= 0
    # the middle server sees a channel with no local members but both remote ones
    chan = s2.state.find_channel("#chain")
    assert sorted(u.nick for u in chan.members) == ["left", "right"]


async def test_netsplit_and_heal_in_batches_with_the_classic_reason(nursery, tmp_path):
    s1, s2, s3 = await start_network(nursery, tmp_path, [(1, 0), (2, 1)], 3)
    watcher = await s1.client("watcher", caps=["batch"])
    plain = await s1.client("plain")
    far = await s3.client("faraway")
    for c in (watcher, plain):
        await c.send("JOIN #split")
        await c.expect("366")
    await until(lambda: s3.state.find_channel("#split"), what="#split on s3")
    await far.send("JOIN #split")
    await far.expect("366")
    await watcher.expect("JOIN")
    await plain.expect("JOIN")
    s2.state.linking.linked_to("s3.test").close("cut for the test")
    start = await watcher.expect("BATCH")
    assert start.params[1:] == ["netsplit", "s2.test", "s3.test"]
    quit = await watcher.expect("QUIT")
    assert quit.source.startswith("faraway!") and quit.params == ["s2.test s3.test"]
    assert quit.tags == {"batch": start.params[0][1:]}
    assert (await watcher.expect("BATCH")).params == ["-" + start.params[0][1:]]
    quit = await plain.expect("QUIT")
    assert quit.params == ["s2.test s3.test"] and quit.tags == {}
    # each side keeps chatting
    await watcher.send("PRIVMSG #split :still here")
    assert (await plain.expect("PRIVMSG")).params == ["#split", "still here"]
    # s3 reconnects by itself; the users come back in a netjoin batch
    start = await watcher.expect("BATCH", timeout=10)
    assert start.params[1] == "netjoin"
    joined = await watcher.expect("JOIN")
    assert joined.source.startswith("faraway!") and joined.tags == {"batch": start.params[0][1:]}
    assert (await plain.expect("JOIN", timeout=10)).source.startswith("faraway!")
    assert len(s1.state.registry.servers) == 3
