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


async def test_wrong_fingerprint_is_refused_and_both_sides_log_why(nursery, tmp_path, caplog):
    import logging
    from netutil import Node, link_blocks
    from irctest import write_config
    from ircd.app import App
    from ircd.config import load_config
    caplog.set_level(logging.INFO)
    a, b = Node(tmp_path, 1), Node(tmp_path, 2)
    wrong = Node(tmp_path / "other", 2)            # b's name, another certificate
    apps = []
    for node, peer, connect in ((a, wrong, False), (b, a, True)):
        path, _, _ = write_config(node.dir, server={"name": node.name, "sid": node.sid},
                                  extra=link_blocks(node, [peer], [peer] if connect else []))
        app = App(load_config(path))
        nursery.start_soon(app.main)
        await app.ready.wait()
        apps.append(app)
    await until(lambda: any("pins" in r.getMessage() for r in caplog.records), what="refusals")
    refusals = [r.getMessage() for r in caplog.records if "pins" in r.getMessage()]
    assert any(m.startswith("link with s2.test at 127.0.0.1:") and " refused: s2.test presented "
               f"certificate {b.fingerprint}, but its [[link]] block pins {wrong.fingerprint}" in m
               for m in refusals), refusals
    # and the refused side hears why, and logs it
    await until(lambda: any(r.getMessage().startswith("link with s1.test at 127.0.0.1:")
                            and "refused: the peer closed the link: s2.test presented" in r.getMessage()
                            for r in caplog.records), what="the refused side's log line")
    assert len(apps[0].server.registry.servers) == 1 and len(apps[1].server.registry.servers) == 1


async def test_a_link_that_would_close_a_loop_is_refused(nursery, tmp_path, caplog):
    import logging
    caplog.set_level(logging.INFO)
    # a triangle: 2 -> 1, 3 -> 2, and then 3 -> 1 would close the loop
    s1, s2, s3 = await start_network(nursery, tmp_path, [(1, 0), (2, 1), (2, 0)], 3,
                                     autoconnect=False)
    await until(lambda: any("linking it here would close a loop" in r.getMessage()
                            for r in caplog.records), timeout=10, what="the loop refusal")
    assert not any("lost" in r.getMessage() for r in caplog.records)   # nobody split
    assert all(len(s.state.registry.servers) == 3 for s in (s1, s2, s3))
    assert len([l for l in s3.state.linking.links if l.established]) == 1
    # the tree holds: one path between any two servers
    assert s1.state.registry.servers["3AA"].direction in ("2AA", "3AA")


async def test_nick_clash_at_link_time_renames_the_later_claimant(nursery, tmp_path):
    from netutil import Node, link_blocks
    from irctest import RunningServer, wait_listening, write_config
    from ircd.app import App
    from ircd.config import load_config
    a, b = Node(tmp_path, 1), Node(tmp_path, 2)
    servers = []
    for node, peer in ((a, b), (b, a)):
        path, port, tls = write_config(node.dir, server={"name": node.name, "sid": node.sid},
                                       extra=link_blocks(node, [peer], []))
        app = App(load_config(path))
        nursery.start_soon(app.main)
        await app.ready.wait()
        await wait_listening(port)
        servers.append(RunningServer(app, path, port, tls))
    s1, s2 = servers
    first = await s1.client("dup")
    second = await s2.client("dup")         # claimed later, on the other server
    s2.app.linker.connect_soon("s1.test")
    await until(lambda: len(s1.state.registry.servers) == 2 and len(s2.state.registry.servers) == 2)
    nick = await second.expect("NICK")
    assert nick.source.startswith("dup!") and nick.params == ["2AA000001"]
    notice = await second.expect("NOTICE")
    assert "claimed earlier elsewhere" in notice.params[-1]
    assert await first.quiet(0.3) == []      # the earlier claimant keeps its nick, untouched
    await until(lambda: s1.state.find_user("dup").uid == "1AA000001"
                and s1.state.find_user("2AA000001") is not None)
    await second.send("PRIVMSG dup :hello from the renamed one")
    got = await first.expect("PRIVMSG")
    assert got.source.startswith("2AA000001!") and got.params[-1] == "hello from the renamed one"


async def test_an_alternate_uplink_re_forms_the_tree_when_the_hub_goes(nursery, tmp_path):
    """s3 may link to s1 or s2 (both autoconnect); whichever it is linked to goes away,
    and s3 links to the other by itself."""
    servers = await start_network(nursery, tmp_path, [(1, 0), (2, 1), (2, 0)], 3)
    s1, s2, s3 = servers
    hub_sid = next(l.peer_sid for l in s3.state.linking.links if l.established)
    hub = s1 if hub_sid == "1AA" else s2
    other = s2 if hub is s1 else s1
    watcher = await other.client("watcher")
    far = await s3.client("far")
    await until(lambda: other.state.find_user("far"), what="far seen from the other side")
    hub.app.request_shutdown("the hub goes away")
    await until(lambda: len(other.state.registry.servers) == 2
                and any(l.established and l.peer_sid == "3AA" for l in other.state.linking.links),
                timeout=15, what="s3 to link to its alternate")
    await watcher.send("PRIVMSG far :found you")
    got = await far.expect("PRIVMSG")
    assert got.source.startswith("watcher!") and got.params == ["far", "found you"]
