"""Channels: JOIN, PART, TOPIC, NAMES, LIST, INVITE, KICK and MODE, with their errors."""

from irctest import show, shown

S = ":test.server"


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
    await b.send("JOIN #ROOM")                     # casemapped to the same channel
    assert shown(await b.ping_pong()) == [
        ":bob!~bob@127.0.0.1 JOIN #room",         # the channel keeps its first spelling
        f"{S} 353 bob = #room :@alice bob",
        f"{S} 366 bob #room :End of /NAMES list."]
    assert shown(await a.ping_pong()) == [":bob!~bob@127.0.0.1 JOIN #room"]


async def test_join_several_with_keys_and_join_zero(server):
    a = await server.client("op")
    await joined(a, "#locked")
    await a.send("MODE #locked +k sekrit")
    assert show(await a.expect("MODE")) == ":op!~op@127.0.0.1 MODE #locked +k sekrit"
    b = await server.client("guest")
    await b.send("JOIN #locked,#open")
    assert shown(await b.ping_pong()) == [
        f"{S} 475 guest #locked :Cannot join channel (+k) - bad key",
        ":guest!~guest@127.0.0.1 JOIN #open",
        f"{S} 353 guest = #open @guest",
        f"{S} 366 guest #open :End of /NAMES list."]
    await b.send("JOIN #locked,#open sekrit")      # already on #open: nothing for it
    assert shown(await b.ping_pong()) == [
        ":guest!~guest@127.0.0.1 JOIN #locked",
        f"{S} 353 guest = #locked :@op guest",
        f"{S} 366 guest #locked :End of /NAMES list."]
    await a.ping_pong()
    await b.send("JOIN 0")
    assert sorted(shown(await b.ping_pong())) == [
        ":guest!~guest@127.0.0.1 PART #locked :Left all channels",
        ":guest!~guest@127.0.0.1 PART #open :Left all channels"]
    assert shown(await a.ping_pong()) == [":guest!~guest@127.0.0.1 PART #locked :Left all channels"]
    assert set(server.state.find_user("guest").channels) == set()


async def test_join_errors(make_server):
    srv = await make_server(limits={"max_channels": 2})
    a = await srv.client("joiner")
    await a.send("JOIN nochan")
    assert shown(await a.ping_pong()) == [f"{S} 403 joiner nochan :No such channel"]
    await a.send("JOIN #bad\x07name")
    assert shown(await a.ping_pong()) == [f"{S} 476 joiner #bad\x07name :Invalid channel name"]
    await joined(a, "#one")
    await joined(a, "#two")
    await a.ping_pong()
    await a.send("JOIN #three")
    assert shown(await a.ping_pong()) == [f"{S} 405 joiner #three :You have joined too many channels"]
    assert set(srv.state.find_user("joiner").channels) == {"#one", "#two"}


async def test_invite_only_limit_and_bans(server):
    op = await server.client("chop")
    await joined(op, "#club")
    await op.send("MODE #club +il 2")
    assert shown(await op.ping_pong()) == [":chop!~chop@127.0.0.1 MODE #club +il 2"]
    guest = await server.client("guest")
    await guest.send("JOIN #club")
    assert shown(await guest.ping_pong()) == [
        f"{S} 473 guest #club :Cannot join channel (+i) - you must be invited"]
    await op.send("INVITE guest #club")
    assert shown(await op.ping_pong()) == [f"{S} 341 chop guest #club"]
    assert shown(await guest.ping_pong()) == [":chop!~chop@127.0.0.1 INVITE guest #club"]
    await joined(guest, "#club")
    third = await server.client("third")
    await op.send("MODE #club -i")
    assert shown(await op.ping_pong()) == [":guest!~guest@127.0.0.1 JOIN #club",
                                           ":chop!~chop@127.0.0.1 MODE #club -i"]
    await third.send("JOIN #club")
    assert shown(await third.ping_pong()) == [
        f"{S} 471 third #club :Cannot join channel (+l) - channel is full"]
    await op.send("MODE #club -l", "MODE #club +b third!*@*")
    assert shown(await op.ping_pong()) == [":chop!~chop@127.0.0.1 MODE #club -l",
                                           ":chop!~chop@127.0.0.1 MODE #club +b third!*@*"]
    await third.send("JOIN #club")
    assert shown(await third.ping_pong()) == [
        f"{S} 474 third #club :Cannot join channel (+b) - you are banned"]
    await op.send("MODE #club +e *!*@127.0.0.1")
    assert shown(await op.ping_pong()) == [":chop!~chop@127.0.0.1 MODE #club +e *!*@127.0.0.1"]
    await joined(third, "#club")
    assert shown(await op.ping_pong()) == [":third!~third@127.0.0.1 JOIN #club"]


async def test_part_and_errors(server):
    a = await server.client("parter")
    b = await server.client("watcher")
    await joined(a, "#p")
    await joined(b, "#p")
    await a.ping_pong()
    await a.send("PART #p :see you")
    assert shown(await a.ping_pong()) == [":parter!~parter@127.0.0.1 PART #p :see you"]
    assert shown(await b.ping_pong()) == [":parter!~parter@127.0.0.1 PART #p :see you"]
    await a.send("PART #p")
    assert shown(await a.ping_pong()) == [f"{S} 442 parter #p :You're not on that channel"]
    await a.send("PART #nowhere")
    assert shown(await a.ping_pong()) == [f"{S} 403 parter #nowhere :No such channel"]
    await a.send("PART")
    assert shown(await a.ping_pong()) == [f"{S} 461 parter PART :Not enough parameters"]
    assert await b.ping_pong() == []


async def test_topic(server):
    a = await server.client("setter")
    b = await server.client("reader")
    await joined(a, "#t")
    await joined(b, "#t")
    await b.send("TOPIC #t")
    assert shown(await b.ping_pong()) == [f"{S} 331 reader #t :No topic is set"]
    await b.send("TOPIC #t :not allowed")
    assert shown(await b.ping_pong()) == [f"{S} 482 reader #t :You're not a channel operator"]
    await a.ping_pong()
    await a.send("TOPIC #t :Hello world")
    assert shown(await a.ping_pong()) == [":setter!~setter@127.0.0.1 TOPIC #t :Hello world"]
    assert shown(await b.ping_pong()) == [":setter!~setter@127.0.0.1 TOPIC #t :Hello world"]
    await b.send("TOPIC #t")
    topic, who = await b.ping_pong()
    assert show(topic) == f"{S} 332 reader #t :Hello world"
    assert who.source == "test.server" and who.command == "333"
    assert who.params[:3] == ["reader", "#t", "setter!~setter@127.0.0.1"] and who.params[3].isdigit()
    c = await server.client("late")
    await c.send("JOIN #t")
    assert shown(await c.ping_pong()) == [
        ":late!~late@127.0.0.1 JOIN #t",
        f"{S} 332 late #t :Hello world",
        f"{S} 333 late #t setter!~setter@127.0.0.1 {who.params[3]}",
        f"{S} 353 late = #t :@setter reader late",
        f"{S} 366 late #t :End of /NAMES list."]
    await c.send("TOPIC #t :outsider")
    assert shown(await c.ping_pong()) == [f"{S} 482 late #t :You're not a channel operator"]
    assert server.state.find_channel("#t").topic == "Hello world"
    await a.send("MODE #t -t")
    assert shown(await a.ping_pong()) == [":late!~late@127.0.0.1 JOIN #t",
                                          ":setter!~setter@127.0.0.1 MODE #t -t"]
    await b.send("TOPIC #t :anyone now")
    assert shown(await b.ping_pong()) == [":late!~late@127.0.0.1 JOIN #t",
                                          ":setter!~setter@127.0.0.1 MODE #t -t",
                                          ":reader!~reader@127.0.0.1 TOPIC #t :anyone now"]
    assert shown(await c.ping_pong()) == [":setter!~setter@127.0.0.1 MODE #t -t",
                                          ":reader!~reader@127.0.0.1 TOPIC #t :anyone now"]
    await c.send("TOPIC #nope")
    assert shown(await c.ping_pong()) == [f"{S} 403 late #nope :No such channel"]


async def test_topic_is_truncated_to_topiclen(make_server):
    srv = await make_server(limits={"topiclen": 10})
    a = await srv.client("longer")
    await joined(a, "#t")
    await a.send("TOPIC #t :" + "x" * 50)
    assert shown(await a.ping_pong()) == [":longer!~longer@127.0.0.1 TOPIC #t xxxxxxxxxx"]
    await a.send("TOPIC #t")
    assert shown(await a.ping_pong())[0] == f"{S} 332 longer #t xxxxxxxxxx"


async def test_names_variants(server):
    a = await server.client("first", caps=["multi-prefix", "userhost-in-names"])
    await joined(a, "#n")
    await a.send("MODE #n +v first")
    assert shown(await a.ping_pong()) == [":first!~first@127.0.0.1 MODE #n +v first"]
    await a.send("NAMES #n")
    assert shown(await a.ping_pong()) == [f"{S} 353 first = #n @+first!~first@127.0.0.1",
                                          f"{S} 366 first #n :End of /NAMES list."]
    b = await server.client("second")
    await b.send("NAMES #n")
    assert shown(await b.ping_pong()) == [f"{S} 353 second = #n @first",
                                          f"{S} 366 second #n :End of /NAMES list."]
    await a.send("MODE #n +s")
    assert shown(await a.ping_pong()) == [":first!~first@127.0.0.1 MODE #n +s"]
    await a.send("NAMES #n")                 # a member sees it, marked secret (@)
    assert shown(await a.ping_pong()) == [f"{S} 353 first @ #n @+first!~first@127.0.0.1",
                                          f"{S} 366 first #n :End of /NAMES list."]
    await b.send("NAMES #n")
    assert shown(await b.ping_pong()) == [f"{S} 366 second #n :End of /NAMES list."]   # secret
    await b.send("NAMES")
    assert shown(await b.ping_pong()) == [f"{S} 366 second * :End of /NAMES list."]


async def test_no_implicit_names(server):
    a = await server.client("quiet", caps=["draft/no-implicit-names"])
    await a.send("JOIN #silent", "PING sync")
    msgs = await a.collect_until("PONG")
    assert shown(msgs) == [":quiet!~quiet@127.0.0.1 JOIN #silent", f"{S} PONG test.server sync"]


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
    await b.ping_pong()

    async def listing(client, *args):
        await client.send("LIST " + " ".join(args) if args else "LIST")
        msgs = await client.collect_until("323")
        nick = client.nick
        assert show(msgs[0]) == f"{S} 321 {nick} Channel :Users  Name"
        assert show(msgs[-1]) == f"{S} 323 {nick} :End of /LIST"
        assert [m.command for m in msgs[1:-1]] == ["322"] * (len(msgs) - 2)
        assert all(m.source == "test.server" and m.params[0] == nick for m in msgs[1:-1])
        return {m.params[1]: m for m in msgs if m.command == "322"}

    everything = await listing(b)
    assert set(everything) == {"#big", "#small"}              # +s hidden from non-members
    assert everything["#big"].params[1:] == ["#big", "2", "[+nt] the big one"]
    assert everything["#small"].params[1:] == ["#small", "1", "[+nt] "]
    assert (await listing(a))["#hidden"].params[1:] == ["#hidden", "1", "[+nst] "]
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
    await op.ping_pong()
    await victim.send("KICK #k kicker")
    assert shown(await victim.ping_pong()) == [f"{S} 482 victim #k :You're not a channel operator"]
    assert await op.ping_pong() == []
    await op.send("KICK #k victim :behave")
    assert shown(await op.ping_pong()) == [":kicker!~kicker@127.0.0.1 KICK #k victim behave"]
    assert shown(await victim.ping_pong()) == [":kicker!~kicker@127.0.0.1 KICK #k victim behave"]
    await op.send("KICK #k victim")
    assert shown(await op.ping_pong()) == [f"{S} 441 kicker victim #k :They aren't on that channel"]
    await op.send("KICK #k ghost")
    assert shown(await op.ping_pong()) == [f"{S} 401 kicker ghost :No such nick/channel"]
    await op.send("KICK #zz victim")
    assert shown(await op.ping_pong()) == [f"{S} 403 kicker #zz :No such channel"]
    await victim.send("KICK #k kicker")
    assert shown(await victim.ping_pong()) == [f"{S} 442 victim #k :You're not on that channel"]
    assert await op.ping_pong() == []


async def test_invite_errors_and_notify(server):
    op = await server.client("host")
    notified = await server.client("cohost", caps=["invite-notify"])
    guest = await server.client("guest2")
    await joined(op, "#inv")
    await joined(notified, "#inv")
    await op.send("MODE #inv +o cohost")
    assert shown(await op.ping_pong()) == [":cohost!~cohost@127.0.0.1 JOIN #inv",
                                           ":host!~host@127.0.0.1 MODE #inv +o cohost"]
    assert shown(await notified.ping_pong()) == [":host!~host@127.0.0.1 MODE #inv +o cohost"]
    await op.send("INVITE nobody #inv")
    assert shown(await op.ping_pong()) == [f"{S} 401 host nobody :No such nick/channel"]
    await guest.send("INVITE host #inv")
    assert shown(await guest.ping_pong()) == [f"{S} 442 guest2 #inv :You're not on that channel"]
    await op.send("INVITE cohost #inv")
    assert shown(await op.ping_pong()) == [f"{S} 443 host cohost #inv :is already on channel"]
    assert await notified.ping_pong() == []
    await op.send("INVITE guest2 #inv")
    assert shown(await op.ping_pong()) == [f"{S} 341 host guest2 #inv"]
    assert shown(await guest.ping_pong()) == [":host!~host@127.0.0.1 INVITE guest2 #inv"]
    assert shown(await notified.ping_pong()) == [":host!~host@127.0.0.1 INVITE guest2 #inv"]
    await op.send("INVITE guest2")
    assert shown(await op.ping_pong()) == [f"{S} 461 host INVITE :Not enough parameters"]


async def test_channel_modes_and_queries(server):
    op = await server.client("moder")
    user = await server.client("plain")
    await joined(op, "#m")
    await joined(user, "#m")
    await op.send("MODE #m")
    joined_, modeis, created = await op.ping_pong()
    assert show(joined_) == ":plain!~plain@127.0.0.1 JOIN #m"
    assert show(modeis) == f"{S} 324 moder #m +nt"
    assert show(created) == f"{S} 329 moder #m {created.params[2]}" and created.params[2].isdigit()
    await op.send("MODE #m +mk-t key")
    assert shown(await op.ping_pong()) == [":moder!~moder@127.0.0.1 MODE #m +mk-t key"]
    assert shown(await user.ping_pong()) == [":moder!~moder@127.0.0.1 MODE #m +mk-t key"]
    await user.send("MODE #m")
    assert shown(await user.ping_pong()) == [f"{S} 324 plain #m +mnk key",
                                             f"{S} 329 plain #m {created.params[2]}"]
    await user.send("MODE #m +i")
    assert shown(await user.ping_pong()) == [f"{S} 482 plain #m :You're not a channel operator"]
    await op.send("MODE #m +z", "MODE #m +l notanumber", "MODE #m +o ghost", "MODE #nope")
    assert shown(await op.ping_pong()) == [
        f"{S} 472 moder z :is an unknown mode char to me",
        f"{S} 696 moder #m l notanumber :Invalid limit mode parameter, it must be a positive number",
        f"{S} 401 moder ghost :No such nick/channel",
        f"{S} 403 moder #nope :No such channel"]
    assert await user.ping_pong() == []        # none of the refused changes reached the channel
    await op.send("MODE #m +bbb a!*@* b!*@* c!*@*", "MODE #m +e x!*@*", "MODE #m +I y!*@*")
    changes = [":moder!~moder@127.0.0.1 MODE #m +bbb a!*@* b!*@* c!*@*",
               ":moder!~moder@127.0.0.1 MODE #m +e x!*@*",
               ":moder!~moder@127.0.0.1 MODE #m +I y!*@*"]
    assert shown(await op.ping_pong()) == changes
    assert shown(await user.ping_pong()) == changes

    def entries(msgs, numeric, end, text):
        assert shown(msgs[-1:]) == [f"{S} {end} plain #m :{text}"]
        for m in msgs[:-1]:
            assert (m.source, m.command, m.params[:2]) == ("test.server", numeric, ["plain", "#m"])
            assert m.params[3] == "moder!~moder@127.0.0.1" and m.params[4].isdigit()
        return [m.params[2] for m in msgs[:-1]]

    await user.send("MODE #m b")
    bans = await user.ping_pong()
    assert entries(bans, "367", "368", "End of channel ban list") == ["a!*@*", "b!*@*", "c!*@*"]
    await user.send("MODE #m e")
    assert entries(await user.ping_pong(), "348", "349", "End of channel exception list") == ["x!*@*"]
    await user.send("MODE #m I")
    assert entries(await user.ping_pong(), "346", "347", "End of channel invite list") == ["y!*@*"]
    await op.send("MODE #m +v plain")
    assert shown(await op.ping_pong()) == [":moder!~moder@127.0.0.1 MODE #m +v plain"]
    assert shown(await user.ping_pong()) == [":moder!~moder@127.0.0.1 MODE #m +v plain"]
    await op.send("MODE #m -o+o moder moder")   # applied in order: ends as op
    assert shown(await op.ping_pong()) == [":moder!~moder@127.0.0.1 MODE #m -o+o moder moder"]
    assert shown(await user.ping_pong()) == [":moder!~moder@127.0.0.1 MODE #m -o+o moder moder"]
    assert server.state.find_channel("#m").is_op(server.state.find_user("moder"))


async def test_moderated_and_no_external(server):
    op = await server.client("mod")
    user = await server.client("voiceless")
    outside = await server.client("outsider")
    await joined(op, "#mod")
    await joined(user, "#mod")
    await op.ping_pong()
    await outside.send("PRIVMSG #mod :hi")
    assert shown(await outside.ping_pong()) == [
        f"{S} 404 outsider #mod :Cannot send to channel (no external messages, +n)"]
    await op.send("MODE #mod +m")
    assert shown(await op.ping_pong()) == [":mod!~mod@127.0.0.1 MODE #mod +m"]
    assert shown(await user.ping_pong()) == [":mod!~mod@127.0.0.1 MODE #mod +m"]
    await user.send("PRIVMSG #mod :hello?")
    assert shown(await user.ping_pong()) == [
        f"{S} 404 voiceless #mod :Cannot send to channel (moderated, +m)"]
    assert await op.ping_pong() == []                # nothing relayed
    await op.send("MODE #mod +v voiceless")
    assert shown(await op.ping_pong()) == [":mod!~mod@127.0.0.1 MODE #mod +v voiceless"]
    assert shown(await user.ping_pong()) == [":mod!~mod@127.0.0.1 MODE #mod +v voiceless"]
    await user.send("PRIVMSG #mod :now I can")
    assert shown(await user.ping_pong()) == []      # no error, and no copy without echo-message
    assert shown(await op.ping_pong()) == [":voiceless!~voiceles@127.0.0.1 PRIVMSG #mod :now I can"]


async def test_user_modes(server):
    a = await server.client("moded")
    await a.send("MODE moded +iwB")
    change = await a.expect("MODE")
    assert (change.source, change.params[0]) == ("moded!~moded@127.0.0.1", "moded")
    assert sorted(change.params[1]) == sorted("+iwB") and change.params[1][0] == "+"
    await a.send("MODE moded")
    umode, = await a.ping_pong()
    assert (umode.source, umode.command, umode.params[0]) == ("test.server", "221", "moded")
    assert sorted(umode.params[1]) == sorted("+Biw") and umode.params[1][0] == "+"
    await a.send("MODE moded +o")          # cannot self-oper: ignored without a word
    assert await a.ping_pong() == []
    assert "o" not in server.state.find_user("moded").modes
    await a.send("MODE moded +x")
    assert shown(await a.ping_pong()) == [f"{S} 501 moded :Unknown MODE flag"]
    b = await server.client("other")
    await a.send("MODE other +i")
    assert shown(await a.ping_pong()) == [f"{S} 502 moded :Can't change mode for other users"]
    assert "i" not in server.state.find_user("other").modes and await b.ping_pong() == []
    await a.send("MODE ghost")
    assert shown(await a.ping_pong()) == [f"{S} 401 moded ghost :No such nick/channel"]


async def test_key_is_shown_to_members_only(server):
    op = await server.client("keeper")
    await joined(op, "#vault")
    await op.send("MODE #vault +kl hunter2 5")
    assert shown(await op.ping_pong()) == [":keeper!~keeper@127.0.0.1 MODE #vault +kl hunter2 5"]
    outsider = await server.client("peeker")
    await outsider.send("MODE #vault", "LIST #vault")
    replies = await outsider.ping_pong()
    created = replies[1].params[2]
    assert shown(replies) == [f"{S} 324 peeker #vault +ntkl * 5",
                              f"{S} 329 peeker #vault {created}",
                              f"{S} 321 peeker Channel :Users  Name",
                              f"{S} 322 peeker #vault 1 :[+ntkl * 5] ",
                              f"{S} 323 peeker :End of /LIST"]
    await op.send("MODE #vault", "LIST #vault")
    assert shown(await op.ping_pong()) == [f"{S} 324 keeper #vault +ntkl hunter2 5",
                                           f"{S} 329 keeper #vault {created}",
                                           f"{S} 321 keeper Channel :Users  Name",
                                           f"{S} 322 keeper #vault 1 :[+ntkl hunter2 5] ",
                                           f"{S} 323 keeper :End of /LIST"]


async def test_kick_beyond_targmax_says_who_was_not_kicked(make_server):
    srv = await make_server(limits={"max_targets": 2})
    op = await srv.client("kop")
    await op.send("JOIN #many")
    await op.expect("366")
    members = [await srv.client(nick) for nick in ("u0", "u1", "u2")]
    for c in members:
        await c.send("JOIN #many")
        await c.expect("366")
    await op.ping_pong()
    await op.send("KICK #many u0,u1,u2 :out")
    got = shown(await op.ping_pong())
    assert got[0] == f"{S} 407 kop u2 :Too many targets: at most 2 per KICK, these were not kicked"
    assert got[1:] == [":kop!~kop@127.0.0.1 KICK #many u0 out", ":kop!~kop@127.0.0.1 KICK #many u1 out"]
