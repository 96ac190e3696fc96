"""Channels: JOIN, PART, TOPIC, NAMES, LIST, INVITE, KICK and MODE, with their errors."""


async def joined(client, channel, key=None):
    await client.send(f"JOIN {channel}" + (f" {key}" if key else ""))
    end = await client.expect("366", client.nick)
    assert end.params[1].lower() == channel.lower()


async def test_creator_gets_ops_and_names(server):
    a = await server.client("alice")
    await a.send("JOIN #room")
    join = await a.expect("JOIN")
    assert join.source == "alice!~alice@127.0.0.1" and join.params == ["#room"]
    names = await a.expect("353")
    assert names.params[1:] == ["=", "#room", "@alice"]
    await a.expect("366", "alice", "#room")
    b = await server.client("bob")
    await joined(b, "#ROOM")                       # casemapped to the same channel
    seen = await a.expect("JOIN")
    assert seen.source.startswith("bob!")


async def test_join_several_with_keys_and_join_zero(server):
    a = await server.client("op")
    await joined(a, "#locked")
    await a.send("MODE #locked +k sekrit")
    await a.expect("MODE")
    b = await server.client("guest")
    await b.send("JOIN #locked,#open")
    await b.expect("475", "guest", "#locked")
    await b.expect("366", "guest", "#open")
    await b.send("JOIN #locked,#open sekrit")
    await b.expect("366", "guest", "#locked")
    await b.send("JOIN 0")
    parts = [await b.expect("PART"), await b.expect("PART")]
    assert sorted(p.params[0] for p in parts) == ["#locked", "#open"]


async def test_join_errors(make_server):
    srv = await make_server(limits={"max_channels": 2})
    a = await srv.client("joiner")
    await a.send("JOIN nochan")
    await a.expect("403", "joiner", "nochan")
    await a.send("JOIN #bad\x07name")
    await a.expect("476")
    await joined(a, "#one")
    await joined(a, "#two")
    await a.send("JOIN #three")
    await a.expect("405", "joiner", "#three")


async def test_invite_only_limit_and_bans(server):
    op = await server.client("chop")
    await joined(op, "#club")
    await op.send("MODE #club +il 2")
    mode = await op.expect("MODE")
    assert mode.params[1:] == ["+il", "2"]
    guest = await server.client("guest")
    await guest.send("JOIN #club")
    await guest.expect("473")
    await op.send("INVITE guest #club")
    await op.expect("341", "chop", "guest", "#club")
    inv = await guest.expect("INVITE")
    assert inv.params == ["guest", "#club"]
    await joined(guest, "#club")
    third = await server.client("third")
    await op.send("MODE #club -i")
    await op.expect("MODE")
    await third.send("JOIN #club")
    await third.expect("471")
    await op.send("MODE #club -l", "MODE #club +b third!*@*")
    await op.expect("MODE")
    await op.expect("MODE")
    await third.send("JOIN #club")
    await third.expect("474")
    await op.send("MODE #club +e *!*@127.0.0.1")
    await op.expect("MODE")
    await joined(third, "#club")


async def test_part_and_errors(server):
    a = await server.client("parter")
    b = await server.client("watcher")
    await joined(a, "#p")
    await joined(b, "#p")
    await a.send("PART #p :see you")
    part = await b.expect("PART")
    assert part.params == ["#p", "see you"]
    await a.expect("PART")
    await a.send("PART #p")
    await a.expect("442", "parter", "#p")
    await a.send("PART #nowhere")
    await a.expect("403", "parter", "#nowhere")
    await a.send("PART")
    await a.expect("461")


async def test_topic(server):
    a = await server.client("setter")
    b = await server.client("reader")
    await joined(a, "#t")
    await joined(b, "#t")
    await b.send("TOPIC #t")
    await b.expect("331")
    await b.send("TOPIC #t :not allowed")
    await b.expect("482", "reader", "#t")
    await a.send("TOPIC #t :Hello world")
    topic = await b.expect("TOPIC")
    assert topic.source.startswith("setter!") and topic.params == ["#t", "Hello world"]
    await b.send("TOPIC #t")
    await b.expect("332", "reader", "#t", "Hello world")
    who = await b.expect("333", "reader", "#t")
    assert who.params[2].startswith("setter!") and who.params[3].isdigit()
    c = await server.client("late")
    await c.send("JOIN #t")
    await c.expect("332", "late", "#t", "Hello world")
    await c.send("TOPIC #t :outsider")
    await c.expect("482")
    await a.send("MODE #t -t")
    await a.expect("MODE")
    await b.send("TOPIC #t :anyone now")
    await b.expect("TOPIC")
    await c.send("TOPIC #nope")
    await c.expect("403")


async def test_topic_is_truncated_to_topiclen(make_server):
    srv = await make_server(limits={"topiclen": 10})
    a = await srv.client("longer")
    await joined(a, "#t")
    await a.send("TOPIC #t :" + "x" * 50)
    topic = await a.expect("TOPIC")
    assert topic.params[1] == "x" * 10


async def test_names_variants(server):
    a = await server.client("first", caps=["multi-prefix", "userhost-in-names"])
    await joined(a, "#n")
    await a.send("MODE #n +v first")
    await a.expect("MODE")
    await a.send("NAMES #n")
    names = await a.expect("353")
    assert names.params[3] == "@+first!~first@127.0.0.1"
    b = await server.client("second")
    await b.send("NAMES #n")
    names = await b.expect("353")
    assert names.params[3] == "@first"
    await a.send("MODE #n +s")
    await a.expect("MODE")
    await b.send("NAMES #n")
    end = await b.expect("366")     # secret channel: nothing but the end
    assert end.params[1] == "#n"
    await b.send("NAMES")
    await b.expect("366", "second", "*")


async def test_no_implicit_names(server):
    a = await server.client("quiet", caps=["draft/no-implicit-names"])
    await a.send("JOIN #silent", "PING sync")
    msgs = await a.collect_until("PONG")
    assert [m.command for m in msgs] == ["JOIN", "PONG"]


async def test_list_with_elist_filters(server):
    a = await server.client("lister")
    b = await server.client("other")
    await joined(a, "#big")
    await joined(b, "#big")
    await joined(a, "#small")
    await joined(a, "#hidden")
    await a.send("MODE #hidden +s", "TOPIC #big :the big one")
    await a.expect("MODE")
    await a.expect("TOPIC")

    async def listing(client, *args):
        await client.send("LIST " + " ".join(args) if args else "LIST")
        msgs = await client.collect_until("323")
        return {m.params[1]: m for m in msgs if m.command == "322"}

    everything = await listing(b)
    assert set(everything) == {"#big", "#small"}              # +s hidden from non-members
    assert everything["#big"].params[2] == "2" and "the big one" in everything["#big"].params[3]
    assert set(await listing(a)) == {"#big", "#small", "#hidden"}
    assert set(await listing(b, ">1")) == {"#big"}
    assert set(await listing(b, "<2")) == {"#small"}
    assert set(await listing(b, "#sm*")) == {"#small"}
    assert set(await listing(b, "!#sm*")) == {"#big"}
    assert set(await listing(b, "T<60")) == {"#big"}
    assert set(await listing(b, "C<60")) == {"#big", "#small"}


async def test_kick(server):
    op = await server.client("kicker")
    victim = await server.client("victim")
    await joined(op, "#k")
    await joined(victim, "#k")
    await victim.send("KICK #k kicker")
    await victim.expect("482")
    await op.send("KICK #k victim :behave")
    kick = await victim.expect("KICK")
    assert kick.params == ["#k", "victim", "behave"]
    await op.expect("KICK")
    await op.send("KICK #k victim")
    await op.expect("441", "kicker", "victim", "#k")
    await op.send("KICK #k ghost")
    await op.expect("401")
    await op.send("KICK #zz victim")
    await op.expect("403")
    await victim.send("KICK #k kicker")
    await victim.expect("442")


async def test_invite_errors_and_notify(server):
    op = await server.client("host")
    notified = await server.client("cohost", caps=["invite-notify"])
    guest = await server.client("guest2")
    await joined(op, "#inv")
    await joined(notified, "#inv")
    await op.send("MODE #inv +o cohost")
    await notified.expect("MODE")
    await op.send("INVITE nobody #inv")
    await op.expect("401")
    await guest.send("INVITE host #inv")
    await guest.expect("442")
    await op.send("INVITE cohost #inv")
    await op.expect("443")
    await op.send("INVITE guest2 #inv")
    await op.expect("341")
    seen = await notified.expect("INVITE")
    assert seen.source.startswith("host!") and seen.params == ["guest2", "#inv"]
    await op.send("INVITE guest2")
    await op.expect("461")


async def test_channel_modes_and_queries(server):
    op = await server.client("moder")
    user = await server.client("plain")
    await joined(op, "#m")
    await joined(user, "#m")
    await op.send("MODE #m")
    modeis = await op.expect("324")
    assert modeis.params[1:] == ["#m", "+nt"]
    await op.expect("329")
    await op.send("MODE #m +mk-t key")
    change = await user.expect("MODE")
    assert change.params[1:] == ["+mk-t", "key"]
    await user.send("MODE #m")
    modeis = await user.expect("324")
    assert modeis.params[2] == "+mnk" and modeis.params[3] == "key"
    await user.send("MODE #m +i")
    await user.expect("482")
    await op.send("MODE #m +z")
    await op.expect("472", "moder", "z")
    await op.send("MODE #m +l notanumber")
    await op.expect("696")
    await op.send("MODE #m +o ghost")
    await op.expect("401")
    await op.send("MODE #nope")
    await op.expect("403")
    await op.send("MODE #m +bbb a!*@* b!*@* c!*@*", "MODE #m +e x!*@*", "MODE #m +I y!*@*")
    await op.expect("MODE")
    await user.send("MODE #m b")
    bans = await user.collect_until("368")
    assert [m.params[2] for m in bans if m.command == "367"] == ["a!*@*", "b!*@*", "c!*@*"]
    await user.send("MODE #m e")
    excepts = await user.collect_until("349")
    assert [m.params[2] for m in excepts if m.command == "348"] == ["x!*@*"]
    await user.send("MODE #m I")
    invex = await user.collect_until("347")
    assert [m.params[2] for m in invex if m.command == "346"] == ["y!*@*"]
    await op.send("MODE #m +v plain")
    await user.expect("MODE", "#m", "+v", "plain")
    await op.send("MODE #m -o+o moder moder")   # applied in order: ends as op
    change = await user.expect("MODE")
    assert change.params[1:] == ["-o+o", "moder", "moder"]
    assert server.state.find_channel("#m").is_op(server.state.find_user("moder"))


async def test_moderated_and_no_external(server):
    op = await server.client("mod")
    user = await server.client("voiceless")
    outside = await server.client("outsider")
    await joined(op, "#mod")
    await joined(user, "#mod")
    await outside.send("PRIVMSG #mod :hi")
    err = await outside.expect("404")
    assert "+n" in err.params[2]
    await op.send("MODE #mod +m")
    await user.expect("MODE")
    await user.send("PRIVMSG #mod :hello?")
    err = await user.expect("404")
    assert "+m" in err.params[2]
    await op.send("MODE #mod +v voiceless")
    await user.expect("MODE")
    await user.send("PRIVMSG #mod :now I can")
    msg = await op.expect("PRIVMSG")
    assert msg.params == ["#mod", "now I can"]


async def test_user_modes(server):
    a = await server.client("moded")
    await a.send("MODE moded +iwB")
    change = await a.expect("MODE")
    assert change.params[0] == "moded" and set(change.params[1]) == set("+iwB")
    await a.send("MODE moded")
    umode = await a.expect("221")
    assert set(umode.params[1]) == set("+Biw")
    await a.send("MODE moded +o")          # cannot self-oper
    assert "o" not in server.state.find_user("moded").modes
    await a.send("MODE moded +x")
    await a.expect("501")
    b = await server.client("other")
    await a.send("MODE other +i")
    await a.expect("502")
    await a.send("MODE ghost")
    await a.expect("401")
