"""Queries: WHO/WHOX, WHOIS, WHOWAS, ISON, USERHOST and the server-information commands."""

import time

from ircd.passwords import hash_password


async def joined(client, channel):
    await client.send(f"JOIN {channel}")
    await client.expect("366")


def by_command(msgs, command):
    return [m for m in msgs if m.command == command]


# -- WHO --------------------------------------------------------------------------------

async def test_who_channel_with_and_without_multi_prefix(server):
    op = await server.client("opper")
    voiced = await server.client("voicer")
    multi = await server.client("multi", caps=["multi-prefix"])
    plain = await server.client("plain")
    for c in (op, voiced, multi, plain):
        await joined(c, "#room")
    await op.send("MODE #room +vv opper voicer")
    await op.expect("MODE")
    await multi.ping_pong()

    await multi.send("WHO #room")
    msgs = await multi.collect_until("315")
    replies = {m.params[5]: m for m in by_command(msgs, "352")}
    assert set(replies) == {"opper", "voicer", "multi", "plain"}
    r = replies["opper"]
    assert r.params[:5] == ["multi", "#room", "~opper", "127.0.0.1", "test.server"]
    assert r.params[6] == "H@+"
    assert r.params[7] == "0 Test User"
    assert replies["voicer"].params[6] == "H+"
    assert replies["plain"].params[6] == "H"
    assert msgs[-1].params == ["multi", "#room", "End of /WHO list."]

    await plain.send("WHO #room")
    msgs = await plain.collect_until("315")
    flags = {m.params[5]: m.params[6] for m in by_command(msgs, "352")}
    assert flags["opper"] == "H@"


async def test_whox_irssi_query(server):
    a = await server.client("irssi")
    b = await server.client("bob", realname="Bob the Builder")
    for c in (a, b):
        await joined(c, "#chan")
    server.state.find_user("bob").account = "bobacct"
    await a.send("WHO #chan %tcuhnfdar,743")
    msgs = await a.collect_until("315")
    rows = {m.params[5]: m.params for m in by_command(msgs, "354")}
    assert not by_command(msgs, "352")
    # token, channel, user, host, nick, flags, hopcount, account, realname
    assert rows["bob"] == ["irssi", "743", "#chan", "~bob", "127.0.0.1", "bob", "H", "0",
                           "bobacct", "Bob the Builder"]
    assert rows["irssi"] == ["irssi", "743", "#chan", "~irssi", "127.0.0.1", "irssi", "H@",
                             "0", "0", "Test User"]
    assert msgs[-1].command == "315" and msgs[-1].params[1] == "#chan"


async def test_whox_field_order_ip_idle_and_oplevel(server):
    a = await server.client("asker")
    b = await server.client("other")
    await joined(b, "#x")
    # fields given out of order come back in the fixed order t c u i h s n f d l a o r
    await a.send("WHO other %rnoi")
    msg = await a.expect("354")
    assert msg.params == ["asker", "255.255.255.255", "other", "n/a", "Test User"]
    await a.send("WHO asker %in")
    msg = await a.expect("354")
    assert msg.params == ["asker", "127.0.0.1", "asker"]     # your own IP is not hidden
    await b.send("WHO #x %nlo")
    msg = await b.expect("354")
    assert msg.params[1] == "other" and msg.params[2].isdigit() and msg.params[3] == "*"
    await a.send("WHO other %sd")
    msg = await a.expect("354")
    assert msg.params == ["asker", "test.server", "0"]
    await a.expect("315")


async def test_who_masks_invisible_users_and_oper_filter(server):
    asker = await server.client("asker")
    hidden = await server.client("hidden")
    shown = await server.client("shown")
    oper = await server.client("opguy")
    await hidden.send("MODE hidden +i")
    await hidden.expect("MODE")
    server.state.find_user("opguy").modes.add("o")

    await asker.send("WHO *")
    nicks = {m.params[5] for m in by_command(await asker.collect_until("315"), "352")}
    assert nicks == {"asker", "shown", "opguy"}
    # an exact nick finds an invisible user
    await asker.send("WHO hidden")
    msgs = await asker.collect_until("315")
    assert [m.params[5] for m in by_command(msgs, "352")] == ["hidden"]
    assert msgs[-1].params[1] == "hidden"
    # sharing a channel makes the invisible user visible to masks
    await joined(hidden, "#shared")
    await joined(asker, "#shared")
    await asker.send("WHO h*")
    msgs = await asker.collect_until("315")
    assert [m.params[5] for m in by_command(msgs, "352")] == ["hidden"]
    # a mask over user@host, realname and server
    await asker.send("WHO *!~shown@*")
    nicks = [m.params[5] for m in by_command(await asker.collect_until("315"), "352")]
    assert nicks == ["shown"]
    await asker.send("WHO :Test User")
    nicks = {m.params[5] for m in by_command(await asker.collect_until("315"), "352")}
    assert nicks == {"asker", "hidden", "shown", "opguy"}
    # the o flag lists operators only; they carry * in their flags
    await asker.send("WHO * o")
    msgs = by_command(await asker.collect_until("315"), "352")
    assert [(m.params[5], m.params[6]) for m in msgs] == [("opguy", "H*")]
    assert oper and shown


async def test_who_channel_visibility_for_outsiders(server):
    member = await server.client("member")
    ghost = await server.client("ghost")
    outsider = await server.client("outsider")
    await ghost.send("MODE ghost +i")
    await ghost.expect("MODE")
    await joined(member, "#open")
    await joined(ghost, "#open")
    await outsider.send("WHO #open")
    nicks = [m.params[5] for m in by_command(await outsider.collect_until("315"), "352")]
    assert nicks == ["member"]
    await member.send("MODE #open +s")
    await member.expect("MODE")
    await outsider.send("WHO #open")
    msgs = await outsider.collect_until("315")
    assert msgs == [msgs[-1]]
    await outsider.send("WHO #nowhere")
    msgs = await outsider.collect_until("315")
    assert len(msgs) == 1 and msgs[0].params[1] == "#nowhere"


async def test_who_flags_away_and_bot(server):
    a = await server.client("asker")
    bot = await server.client("botty")
    await bot.send("MODE botty +B")
    await bot.expect("MODE")
    user = server.state.find_user("botty")
    user.away = "out"
    user.modes.add("o")
    await joined(bot, "#b")
    await a.send("WHO #b")
    msg = await a.expect("352")
    assert msg.params[6] == "G*@B"


# -- WHOIS ------------------------------------------------------------------------------

async def test_whois_of_away_bot_oper_over_tls(server):
    asker = await server.client("asker", caps=["multi-prefix"])
    target = await server.client("robo", tls=True, realname="A Robot")
    await target.send("MODE robo +B")
    await target.expect("MODE")
    await joined(target, "#pub")
    await joined(target, "#hideout")
    await target.send("MODE #hideout +s", "MODE #pub +v robo")
    await target.expect("MODE")
    await target.expect("MODE")
    user = server.state.find_user("robo")
    user.away = "gone fishing"
    user.modes.add("o")
    user.account = "roboacct"

    await asker.send("WHOIS ROBO")
    msgs = await asker.collect_until("318")
    codes = [m.command for m in msgs]
    assert codes == ["311", "319", "312", "313", "301", "671", "330", "335", "317", "318"]
    get = {m.command: m.params for m in msgs}
    assert get["311"] == ["asker", "robo", "~robo", "127.0.0.1", "*", "A Robot"]
    assert get["319"] == ["asker", "robo", "@+#pub"]          # the +s channel is hidden
    assert get["312"][:3] == ["asker", "robo", "test.server"]
    assert get["313"][1] == "robo"
    assert get["301"] == ["asker", "robo", "gone fishing"]
    assert get["671"] == ["asker", "robo", "is using a secure connection"]
    assert get["330"] == ["asker", "robo", "roboacct", "is logged in as"]
    assert get["335"] == ["asker", "robo", "is a bot"]
    idle, signon = int(get["317"][2]), int(get["317"][3])
    assert 0 <= idle < 60 and abs(signon - time.time()) < 60
    assert get["318"][:2] == ["asker", "robo"]

    # the user themself sees the secret channel and where they connect from
    await target.send("WHOIS robo")
    msgs = await target.collect_until("318")
    get = {m.command: m.params for m in msgs}
    assert set(get["319"][2].split()) == {"@#pub", "@#hideout"}
    assert "378" in get


async def test_whois_plain_user_has_no_optional_lines(server):
    asker = await server.client("asker")
    plain = await server.client("plain")  # noqa: F841 (kept open)
    await asker.send("WHOIS plain")
    msgs = await asker.collect_until("318")
    assert [m.command for m in msgs] == ["311", "312", "317", "318"]


async def test_whois_errors_and_server_parameter(server):
    asker = await server.client("asker")
    other = await server.client("other")  # noqa: F841 (kept open)
    await asker.send("WHOIS")
    await asker.expect("431", skip=False)
    await asker.send("WHOIS nobody")
    err = await asker.expect("401", skip=False)
    assert err.params[:2] == ["asker", "nobody"]
    end = await asker.expect("318", skip=False)
    assert end.params[1] == "nobody"
    await asker.send("WHOIS elsewhere.net other")
    err = await asker.expect("402", skip=False)
    assert err.params[1] == "elsewhere.net"
    await asker.send("WHOIS test.server other")
    await asker.expect("311", "asker", "other", skip=False)
    await asker.expect("318")
    await asker.send("WHOIS other other")     # the usual "remote WHOIS" for idle time
    await asker.expect("311", "asker", "other", skip=False)
    await asker.expect("317")
    await asker.expect("318")


# -- WHOWAS -----------------------------------------------------------------------------

async def test_whowas(server):
    asker = await server.client("asker")
    gone = await server.client("Leaver", realname="Left Already")
    await gone.send("NICK Leaver2")
    await gone.expect("NICK")
    await gone.send("QUIT :bye")
    await gone.expect("ERROR")
    again = await server.client("leaver")
    await again.send("QUIT")
    await again.expect("ERROR")
    await asker.ping_pong()

    await asker.send("WHOWAS LEAVER")
    msgs = await asker.collect_until("369")
    assert [m.command for m in msgs] == ["314", "312", "314", "312", "369"]
    assert msgs[0].params == ["asker", "leaver", "~leaver", "127.0.0.1", "*", "Test User"]
    assert msgs[2].params == ["asker", "Leaver", "~leaver", "127.0.0.1", "*", "Left Already"]
    assert msgs[1].params[:3] == ["asker", "leaver", "test.server"]
    assert msgs[-1].params[:2] == ["asker", "LEAVER"]

    await asker.send("WHOWAS leaver 1")
    msgs = await asker.collect_until("369")
    assert [m.command for m in msgs] == ["314", "312", "369"]

    await asker.send("WHOWAS neverseen")
    msgs = await asker.collect_until("369")
    assert [m.command for m in msgs] == ["406", "369"]
    assert msgs[0].params[1] == "neverseen"

    await asker.send("WHOWAS")
    await asker.expect("431", skip=False)
    await asker.send("WHOWAS leaver 1 other.server")
    await asker.expect("402", skip=False)


# -- ISON, USERHOST ---------------------------------------------------------------------

async def test_ison_answers_in_registered_case(server):
    asker = await server.client("asker")
    mixed = await server.client("MiXeD")  # noqa: F841 (kept open)
    await asker.send("ISON mixed nobody asker")
    reply = await asker.expect("303", skip=False)
    assert reply.params == ["asker", "MiXeD asker"]
    await asker.send("ISON :nobody MIXED")          # trailing form, as mIRC sends it
    reply = await asker.expect("303", skip=False)
    assert reply.params == ["asker", "MiXeD"]
    await asker.send("ISON zzz")
    reply = await asker.expect("303", skip=False)
    assert reply.params == ["asker", ""]
    await asker.send("ISON")
    await asker.expect("461", "asker", "ISON", skip=False)


async def test_userhost(server):
    asker = await server.client("asker")
    others = [await server.client(n) for n in ("one", "two", "three", "four", "five", "six")]
    server.state.find_user("one").modes.add("o")
    server.state.find_user("two").away = "brb"
    await asker.send("USERHOST ONE two nobody three four five six")
    reply = await asker.expect("302", skip=False)
    assert reply.params[1].split() == ["one*=+~one@127.0.0.1", "two=-~two@127.0.0.1",
                                       "three=+~three@127.0.0.1", "four=+~four@127.0.0.1"]
    await asker.send("USERHOST")
    await asker.expect("461", "asker", "USERHOST", skip=False)
    assert len(others) == 6


# -- server information -----------------------------------------------------------------

async def test_lusers_and_motd(server):
    c = await server.client("asker")
    await c.send("LUSERS")
    msgs = await c.collect_until("266")
    assert [m.command for m in msgs] == ["251", "252", "253", "254", "255", "265", "266"]
    await c.send("MOTD")
    msgs = await c.collect_until("376")
    assert msgs[0].command == "375"
    await c.send("MOTD test.server")
    await c.expect("375", skip=False)
    await c.collect_until("376")
    await c.send("MOTD other.server")
    err = await c.expect("402", skip=False)
    assert err.params[1:] == ["other.server", "No such server"]
    await c.send("LUSERS * other.server")
    await c.expect("402", skip=False)


async def test_motd_missing(make_server):
    srv = await make_server(server={"motd": ""})
    c = await srv.client("asker")
    await c.send("MOTD")
    await c.expect("422", skip=False)


async def test_version_time_admin_info(make_server):
    srv = await make_server(extra="""
        [admin]
        name = "Ada Admin"
        email = "ada@example.net"
        location = "Somewhere, Earth"
    """)
    c = await srv.client("asker")
    await c.send("VERSION")
    version = await c.expect("351", skip=False)
    assert version.params[1].startswith("ircd-") and version.params[2] == "test.server"
    isupport = [await c.next_message() for _ in srv.state.isupport_lines]
    assert all(m.command == "005" and m.params[-1] == "are supported by this server"
               for m in isupport)
    assert "WHOX" in [token for m in isupport for token in m.params[1:-1]]
    await c.send("VERSION nowhere.net")
    await c.expect("402", skip=False)

    await c.send("TIME")
    t = await c.expect("391", skip=False)
    assert t.params[1] == "test.server" and len(t.params) == 3
    assert time.strftime("%Y") in t.params[2]

    await c.send("ADMIN")
    msgs = [await c.next_message() for _ in range(4)]
    assert [m.command for m in msgs] == ["256", "257", "258", "259"]
    assert msgs[0].params[1] == "test.server"
    assert msgs[1].params[1] == "Somewhere, Earth"
    assert msgs[2].params[1] == "Ada Admin"
    assert msgs[3].params[1] == "ada@example.net"
    await c.send("ADMIN bad.server")
    await c.expect("402", skip=False)

    await c.send("INFO")
    msgs = await c.collect_until("374")
    assert len(msgs) > 2 and all(m.command == "371" for m in msgs[:-1])


async def test_links(server):
    c = await server.client("asker")
    await c.send("LINKS")
    link = await c.expect("364", skip=False)
    assert link.params[1:3] == ["test.server", "test.server"]
    assert link.params[3].startswith("0 ")
    end = await c.expect("365", skip=False)
    assert end.params[1] == "*"
    await c.send("LINKS *.server")
    await c.expect("364", skip=False)
    await c.expect("365", skip=False)
    await c.send("LINKS nomatch.*")
    end = await c.expect("365", skip=False)
    assert end.params[1] == "nomatch.*"
    await c.send("LINKS other.server *")
    await c.expect("402", skip=False)


async def test_stats(make_server):
    srv = await make_server(extra=f"""
        [[oper]]
        name = "boss"
        password = "{hash_password('secret')}"
        hosts = ["*@127.0.0.1", "*@localhost"]
    """)
    c = await srv.client("asker")
    await c.send("STATS u")
    up = await c.expect("242", skip=False)
    assert up.params[1].startswith("Server Up 0 days 00:")
    await c.expect("219", "asker", "u", skip=False)

    await c.send("STATS o")                       # not an operator: nothing but the end
    await c.expect("219", "asker", "o", skip=False)
    await c.send("STATS l")
    link = await c.expect("211", skip=False)
    assert link.params[1] == "test.server"
    await c.expect("219", "asker", "l", skip=False)

    await c.send("STATS m")
    msgs = await c.collect_until("219")
    counts = {m.params[1]: int(m.params[2]) for m in msgs if m.command == "212"}
    assert counts["STATS"] == 4 and counts["NICK"] == 1

    await c.send("STATS z")
    await c.expect("219", "asker", "z", skip=False)
    await c.send("STATS")
    await c.expect("461", "asker", "STATS", skip=False)
    await c.send("STATS u elsewhere.net")
    await c.expect("402", skip=False)

    srv.state.find_user("asker").modes.add("o")
    other = await srv.client("other")  # noqa: F841 (kept open)
    await c.send("STATS o")
    msgs = await c.collect_until("219")
    assert [m.params[1:] for m in msgs if m.command == "243"] == [
        ["O", "*@127.0.0.1", "*", "boss"], ["O", "*@localhost", "*", "boss"]]
    await c.send("STATS l")
    msgs = await c.collect_until("219")
    links = [m for m in msgs if m.command == "211"]
    assert [m.params[1] for m in links] == ["asker[~asker@127.0.0.1]", "other[~other@127.0.0.1]"]
    # sendq, sent lines, sent KiB, received lines, received KiB, seconds connected
    sent_lines, received_lines = int(links[0].params[3]), int(links[0].params[5])
    assert sent_lines > 20            # the welcome burst and every reply so far
    assert received_lines >= 10       # NICK, USER and the queries above
    assert all(p.isdigit() for p in links[0].params[2:8])


async def test_help(server):
    c = await server.client("asker")
    await c.send("HELP")
    msgs = await c.collect_until("706")
    assert msgs[0].command == "704" and msgs[0].params[1] == "*"
    listed = " ".join(m.params[2] for m in msgs if m.command == "705").split()
    for name in ("WHO", "WHOIS", "PRIVMSG", "HELP", "JOIN"):
        assert name in listed
    await c.send("HELP who")
    msgs = await c.collect_until("706")
    assert [m.command for m in msgs] == ["704", "705", "705", "706"]
    assert all(m.params[1] == "who" for m in msgs)
    assert msgs[2].params[2].startswith("WHO <mask")
    await c.send("HELP frobnicate")
    err = await c.expect("524", skip=False)
    assert err.params[1:] == ["frobnicate", "No help available on this topic"]


async def test_every_command_answers_help(server):
    from ircd.commands import COMMANDS
    c = await server.client("asker")
    for name in sorted(COMMANDS):
        await c.send(f"HELP {name}")
        msgs = await c.collect_until("706")
        assert msgs[0].command == "704", name
        assert msgs[2].params[2].startswith(name), name


async def test_queries_need_registration(server):
    c = await server.client()
    await c.send("WHOIS someone", "HELP")
    await c.expect("451")
    await c.expect("451")


async def test_whois_channel_list_is_split_to_fit_lines(server):
    asker = await server.client("asker")
    busy = await server.client("busy")
    names = [f"#{i:02d}" + "x" * 56 for i in range(21)]
    for i in range(0, 21, 7):
        await busy.send("JOIN " + ",".join(names[i:i + 7]))
    for _ in range(21):
        await busy.expect("366")
    await asker.send("WHOIS busy")
    msgs = await asker.collect_until("318")
    lines = by_command(msgs, "319")
    assert len(lines) > 1
    got = [name.lstrip("@") for m in lines for name in m.params[2].split()]
    assert sorted(got) == names
    for m in lines:
        assert len(f":test.server 319 asker busy :{m.params[2]}".encode()) <= 510
