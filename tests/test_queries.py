"""Queries: WHO/WHOX, WHOIS, WHOWAS, ISON, USERHOST and the server-information commands."""

import time

from irctest import show, shown

from ircd import __version__
from ircd.passwords import hash_password

S = ":test.server"


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
    assert show(await op.expect("MODE")) == ":opper!~opper@127.0.0.1 MODE #room +vv opper voicer"
    await op.ping_pong()
    assert shown(await multi.ping_pong())[-1] == ":opper!~opper@127.0.0.1 MODE #room +vv opper voicer"

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
    assert flags == {"opper": "H@", "voicer": "H+", "multi": "H", "plain": "H"}   # highest only
    assert show(msgs[-1]) == f"{S} 315 plain #room :End of /WHO list."


async def test_whox_irssi_query(server):
    a = await server.client("irssi")
    b = await server.client("bob", realname="Bob the Builder")
    for c in (a, b):
        await joined(c, "#chan")
    server.state.find_user("bob").account = "bobacct"
    await a.ping_pong()
    await a.send("WHO #chan %tcuhnfdar,743")
    msgs = await a.collect_until("315")
    rows = {m.params[5]: m.params for m in by_command(msgs, "354")}
    assert not by_command(msgs, "352")
    # token, channel, user, host, nick, flags, hopcount, account, realname
    assert rows["bob"] == ["irssi", "743", "#chan", "~bob", "127.0.0.1", "bob", "H", "0",
                           "bobacct", "Bob the Builder"]
    assert rows["irssi"] == ["irssi", "743", "#chan", "~irssi", "127.0.0.1", "irssi", "H@",
                             "0", "0", "Test User"]
    assert show(msgs[-1]) == f"{S} 315 irssi #chan :End of /WHO list."
    assert len(msgs) == 3 and all(m.source == "test.server" for m in msgs)


async def test_whox_field_order_ip_idle_and_oplevel(server):
    a = await server.client("asker")
    b = await server.client("other")
    await joined(b, "#x")
    # fields given out of order come back in the fixed order t c u i h s n f d l a o r
    await a.send("WHO other %rnoi")
    assert shown(await a.ping_pong()) == [f"{S} 354 asker 255.255.255.255 other n/a :Test User",
                                          f"{S} 315 asker other :End of /WHO list."]
    await a.send("WHO asker %in")
    assert shown(await a.ping_pong()) == [f"{S} 354 asker 127.0.0.1 asker",   # your own IP
                                          f"{S} 315 asker asker :End of /WHO list."]
    await b.send("WHO #x %nlo")
    msg, end = await b.ping_pong()
    assert msg.params[:2] == ["other", "other"] and msg.params[2].isdigit() and msg.params[3] == "*"
    assert show(end) == f"{S} 315 other #x :End of /WHO list."
    await a.send("WHO other %sd")
    assert shown(await a.ping_pong()) == [f"{S} 354 asker test.server 0",
                                          f"{S} 315 asker other :End of /WHO list."]


async def test_who_masks_invisible_users_and_oper_filter(server):
    asker = await server.client("asker")
    hidden = await server.client("hidden")
    visible = await server.client("shown")
    oper = await server.client("opguy")
    await hidden.send("MODE hidden +i")
    assert show(await hidden.expect("MODE")) == ":hidden!~hidden@127.0.0.1 MODE hidden +i"
    server.state.find_user("opguy").modes.add("o")

    def reply(nick, flags="H"):
        return f"{S} 352 asker * ~{nick} 127.0.0.1 test.server {nick} {flags} :0 Test User"

    await asker.send("WHO *")
    msgs = await asker.collect_until("315")
    assert sorted(shown(msgs[:-1])) == sorted([reply("asker"), reply("shown"), reply("opguy", "H*")])
    assert show(msgs[-1]) == f"{S} 315 asker * :End of /WHO list."
    # an exact nick finds an invisible user
    await asker.send("WHO hidden")
    assert shown(await asker.collect_until("315")) == [
        reply("hidden"), f"{S} 315 asker hidden :End of /WHO list."]
    # sharing a channel makes the invisible user visible to masks
    await joined(hidden, "#shared")
    await joined(asker, "#shared")
    await asker.send("WHO h*")
    assert shown(await asker.collect_until("315")) == [
        reply("hidden"), f"{S} 315 asker h* :End of /WHO list."]
    # a mask over user@host, realname and server
    await asker.send("WHO *!~shown@*")
    nicks = [m.params[5] for m in by_command(await asker.collect_until("315"), "352")]
    assert nicks == ["shown"]
    await asker.send("WHO :Test User")
    nicks = {m.params[5] for m in by_command(await asker.collect_until("315"), "352")}
    assert nicks == {"asker", "hidden", "shown", "opguy"}
    # the o flag lists operators only; they carry * in their flags
    await asker.send("WHO * o")
    assert shown(await asker.collect_until("315")) == [
        reply("opguy", "H*"), f"{S} 315 asker * :End of /WHO list."]
    assert oper and visible


async def test_who_channel_visibility_for_outsiders(server):
    member = await server.client("member")
    ghost = await server.client("ghost")
    outsider = await server.client("outsider")
    await ghost.send("MODE ghost +i")
    assert show(await ghost.expect("MODE")) == ":ghost!~ghost@127.0.0.1 MODE ghost +i"
    await joined(member, "#open")
    await joined(ghost, "#open")
    await outsider.send("WHO #open")                 # the invisible member is left out
    assert shown(await outsider.collect_until("315")) == [
        f"{S} 352 outsider #open ~member 127.0.0.1 test.server member H@ :0 Test User",
        f"{S} 315 outsider #open :End of /WHO list."]
    await member.send("MODE #open +s")
    await member.expect("MODE")
    await member.ping_pong()
    await outsider.send("WHO #open")
    assert shown(await outsider.collect_until("315")) == [f"{S} 315 outsider #open :End of /WHO list."]
    await outsider.send("WHO #nowhere")
    assert shown(await outsider.collect_until("315")) == [f"{S} 315 outsider #nowhere :End of /WHO list."]


async def test_who_flags_away_and_bot(server):
    a = await server.client("asker")
    bot = await server.client("botty")
    await bot.send("MODE botty +B")
    assert show(await bot.expect("MODE")) == ":botty!~botty@127.0.0.1 MODE botty +B"
    user = server.state.find_user("botty")
    user.away = "out"
    user.modes.add("o")
    await joined(bot, "#b")
    await a.send("WHO #b")
    assert shown(await a.ping_pong()) == [
        f"{S} 352 asker #b ~botty 127.0.0.1 test.server botty G*@B :0 Test User",
        f"{S} 315 asker #b :End of /WHO list."]


# -- WHOIS ------------------------------------------------------------------------------

async def test_whois_of_away_bot_oper_over_tls(server):
    asker = await server.client("asker", caps=["multi-prefix"])
    target = await server.client("robo", tls=True, realname="A Robot")
    await target.send("MODE robo +B")
    assert show(await target.expect("MODE")) == ":robo!~robo@127.0.0.1 MODE robo +B"
    await joined(target, "#pub")
    await joined(target, "#hideout")
    await target.send("MODE #hideout +s", "MODE #pub +v robo")
    assert shown(await target.ping_pong()) == [":robo!~robo@127.0.0.1 MODE #hideout +s",
                                               ":robo!~robo@127.0.0.1 MODE #pub +v robo"]
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
    assert get["312"] == ["asker", "robo", "test.server", "Python IRC server"]
    assert get["313"] == ["asker", "robo", "is an IRC operator"]
    assert get["301"] == ["asker", "robo", "gone fishing"]
    assert get["671"] == ["asker", "robo", "is using a secure connection"]
    assert get["330"] == ["asker", "robo", "roboacct", "is logged in as"]
    assert get["335"] == ["asker", "robo", "is a bot"]
    idle, signon = int(get["317"][2]), int(get["317"][3])
    assert 0 <= idle < 60 and abs(signon - time.time()) < 60
    assert get["318"] == ["asker", "robo", "End of /WHOIS list."]
    assert all(m.source == "test.server" for m in msgs)

    # the user themself sees the secret channel and where they connect from
    await target.send("WHOIS robo")
    msgs = await target.collect_until("318")
    assert [m.command for m in msgs] == ["311", "319", "312", "313", "301", "671", "330", "335",
                                         "378", "317", "318"]
    get = {m.command: m.params for m in msgs}
    assert set(get["319"][2].split()) == {"@#pub", "@#hideout"}   # no multi-prefix: @ only
    assert get["378"] == ["robo", "robo", "is connecting from ~robo@127.0.0.1 127.0.0.1"]


async def test_whois_plain_user_has_no_optional_lines(server):
    asker = await server.client("asker")
    plain = await server.client("plain")  # noqa: F841 (kept open)
    await asker.send("WHOIS plain")
    msgs = await asker.collect_until("318")
    assert [m.command for m in msgs] == ["311", "312", "317", "318"]
    signon = msgs[2].params[3]
    assert shown(msgs) == [f"{S} 311 asker plain ~plain 127.0.0.1 * :Test User",
                           f"{S} 312 asker plain test.server :Python IRC server",
                           f"{S} 317 asker plain {msgs[2].params[2]} {signon} :seconds idle, signon time",
                           f"{S} 318 asker plain :End of /WHOIS list."]
    assert abs(int(signon) - time.time()) < 60


async def test_whois_errors_and_server_parameter(server):
    asker = await server.client("asker")
    other = await server.client("other")  # noqa: F841 (kept open)
    await asker.send("WHOIS", "WHOIS nobody", "WHOIS elsewhere.net other")
    assert shown(await asker.ping_pong()) == [f"{S} 431 asker :No nickname given",
                                              f"{S} 401 asker nobody :No such nick/channel",
                                              f"{S} 318 asker nobody :End of /WHOIS list.",
                                              f"{S} 402 asker elsewhere.net :No such server"]
    for query in ("WHOIS test.server other",
                  "WHOIS other other"):      # the usual "remote WHOIS" for idle time
        await asker.send(query)
        msgs = await asker.ping_pong()
        assert [m.command for m in msgs] == ["311", "312", "317", "318"]
        assert shown(msgs[:2]) == [f"{S} 311 asker other ~other 127.0.0.1 * :Test User",
                                   f"{S} 312 asker other test.server :Python IRC server"]
        assert msgs[2].params[:2] == ["asker", "other"] and msgs[2].params[2].isdigit()
        assert show(msgs[3]) == f"{S} 318 asker other :End of /WHOIS list."


# -- WHOWAS -----------------------------------------------------------------------------

async def test_whowas(server):
    asker = await server.client("asker")
    gone = await server.client("Leaver", realname="Left Already")
    await gone.send("NICK Leaver2")
    assert show(await gone.expect("NICK")) == ":Leaver!~leaver@127.0.0.1 NICK Leaver2"
    await gone.send("QUIT :bye")
    assert show(await gone.expect("ERROR")) == "ERROR :Closing Link: 127.0.0.1 (Quit: bye)"
    again = await server.client("leaver")
    await again.send("QUIT")
    assert show(await again.expect("ERROR")) == "ERROR :Closing Link: 127.0.0.1 (Client Quit)"
    await asker.ping_pong()

    await asker.send("WHOWAS LEAVER")
    msgs = await asker.collect_until("369")
    assert [m.command for m in msgs] == ["314", "312", "314", "312", "369"]
    assert msgs[0].params == ["asker", "leaver", "~leaver", "127.0.0.1", "*", "Test User"]
    assert msgs[2].params == ["asker", "Leaver", "~leaver", "127.0.0.1", "*", "Left Already"]
    assert msgs[1].params[:3] == ["asker", "leaver", "test.server"]
    assert msgs[3].params[:3] == ["asker", "Leaver", "test.server"]
    assert show(msgs[-1]) == f"{S} 369 asker LEAVER :End of WHOWAS"

    await asker.send("WHOWAS leaver 1")
    one = await asker.collect_until("369")
    assert shown(one) == [show(msgs[0]), show(msgs[1]), f"{S} 369 asker leaver :End of WHOWAS"]

    await asker.send("WHOWAS neverseen", "WHOWAS", "WHOWAS leaver 1 other.server")
    assert shown(await asker.ping_pong()) == [f"{S} 406 asker neverseen :There was no such nickname",
                                              f"{S} 369 asker neverseen :End of WHOWAS",
                                              f"{S} 431 asker :No nickname given",
                                              f"{S} 402 asker other.server :No such server"]


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
    assert shown(await asker.ping_pong()) == [f"{S} 461 asker ISON :Not enough parameters"]


async def test_userhost(server):
    asker = await server.client("asker")
    others = [await server.client(n) for n in ("one", "two", "three", "four", "five", "six")]
    server.state.find_user("one").modes.add("o")
    server.state.find_user("two").away = "brb"
    await asker.send("USERHOST ONE two nobody three four five six")
    # at most five nicks are looked at (TARGMAX USERHOST:5); unknown ones are left out
    assert shown(await asker.ping_pong()) == [
        f"{S} 302 asker :one*=+~one@127.0.0.1 two=-~two@127.0.0.1 three=+~three@127.0.0.1 "
        "four=+~four@127.0.0.1"]
    await asker.send("USERHOST")
    assert shown(await asker.ping_pong()) == [f"{S} 461 asker USERHOST :Not enough parameters"]
    assert len(others) == 6


# -- server information -----------------------------------------------------------------

async def test_lusers_and_motd(server):
    c = await server.client("asker")
    await c.send("LUSERS")
    assert shown(await c.ping_pong()) == [
        f"{S} 251 asker :There are 1 users and 0 invisible on 1 servers",
        f"{S} 252 asker 0 :operator(s) online",
        f"{S} 253 asker 0 :unknown connection(s)",
        f"{S} 254 asker 0 :channels formed",
        f"{S} 255 asker :I have 1 clients and 0 servers",
        f"{S} 265 asker 1 1 :Current local users 1, max 1",
        f"{S} 266 asker 1 1 :Current global users 1, max 1"]
    motd = [f"{S} 375 asker :- test.server Message of the day - ",
            f"{S} 372 asker :- Welcome to TestNet.",
            f"{S} 372 asker :- This server has no MOTD of its own yet: set [server] motd or motd_file.",
            f"{S} 376 asker :End of /MOTD command."]
    await c.send("MOTD")
    assert shown(await c.ping_pong()) == motd
    await c.send("MOTD test.server")
    assert shown(await c.ping_pong()) == motd
    await c.send("MOTD other.server", "LUSERS * other.server")
    assert shown(await c.ping_pong()) == [f"{S} 402 asker other.server :No such server"] * 2


async def test_motd_missing(make_server):
    srv = await make_server(server={"motd": ""})
    c = await srv.client("asker")
    await c.send("MOTD")
    assert shown(await c.ping_pong()) == [f"{S} 422 asker :MOTD File is missing"]


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
    assert show(version) == f"{S} 351 asker ircd-{__version__} test.server :Python IRC server"
    isupport = await c.ping_pong()
    assert len(isupport) == len(srv.state.isupport_lines)
    assert all(m.source == "test.server" and m.command == "005" and m.params[0] == "asker"
               and m.params[-1] == "are supported by this server" for m in isupport)
    assert "WHOX" in [token for m in isupport for token in m.params[1:-1]]
    await c.send("VERSION nowhere.net")
    assert shown(await c.ping_pong()) == [f"{S} 402 asker nowhere.net :No such server"]

    await c.send("TIME")
    t, = await c.ping_pong()
    assert (t.source, t.command, t.params[:2], len(t.params)) == ("test.server", "391",
                                                                  ["asker", "test.server"], 3)
    assert time.strftime("%Y") in t.params[2] and t.params[2].endswith(" +0000")

    await c.send("ADMIN")
    assert shown(await c.ping_pong()) == [f"{S} 256 asker test.server :Administrative info",
                                          f"{S} 257 asker :Somewhere, Earth",
                                          f"{S} 258 asker :Ada Admin",
                                          f"{S} 259 asker ada@example.net"]
    await c.send("ADMIN bad.server")
    assert shown(await c.ping_pong()) == [f"{S} 402 asker bad.server :No such server"]

    await c.send("INFO")
    msgs = await c.collect_until("374")
    assert len(msgs) > 2 and all(m.command == "371" for m in msgs[:-1])
    assert shown(msgs[:2]) == [f"{S} 371 asker :ircd-{__version__} -- Python IRC server",
                               f"{S} 371 asker :Network: TestNet"]
    assert show(msgs[-1]) == f"{S} 374 asker :End of /INFO list."


async def test_links(server):
    c = await server.client("asker")
    link = f"{S} 364 asker test.server test.server :0 Python IRC server"
    await c.send("LINKS")
    assert shown(await c.ping_pong()) == [link, f"{S} 365 asker * :End of /LINKS list."]
    await c.send("LINKS *.server")
    assert shown(await c.ping_pong()) == [link, f"{S} 365 asker *.server :End of /LINKS list."]
    await c.send("LINKS nomatch.*")
    assert shown(await c.ping_pong()) == [f"{S} 365 asker nomatch.* :End of /LINKS list."]
    await c.send("LINKS other.server *")
    assert shown(await c.ping_pong()) == [f"{S} 402 asker other.server :No such server"]


async def test_stats(make_server):
    srv = await make_server(extra=f"""
        [[oper]]
        name = "boss"
        password = "{hash_password('secret')}"
        hosts = ["*@127.0.0.1", "*@localhost"]
    """)
    c = await srv.client("asker")
    def end(letter):
        return f"{S} 219 asker {letter} :End of /STATS report"

    await c.send("STATS u")
    up = await c.expect("242", skip=False)
    assert up.source == "test.server" and up.params[0] == "asker"
    assert up.params[1].startswith("Server Up 0 days 00:")
    assert show(await c.next_message()) == end("u")

    await c.send("STATS o")                       # not an operator: nothing but the end
    assert show(await c.next_message()) == end("o")
    await c.send("STATS l")                       # not an operator: the server's own line
    link = await c.expect("211", skip=False)
    assert link.params[:2] == ["asker", "test.server"] and len(link.params) == 8
    assert all(p.isdigit() for p in link.params[2:])
    assert show(await c.next_message()) == end("l")

    await c.send("STATS m")
    msgs = await c.collect_until("219")
    assert shown(msgs) == [f"{S} 212 asker STATS 4", f"{S} 212 asker NICK 1", f"{S} 212 asker USER 1",
                           end("m")]

    await c.send("STATS z", "STATS", "STATS u elsewhere.net")
    assert shown(await c.ping_pong()) == [end("z"), f"{S} 461 asker STATS :Not enough parameters",
                                          f"{S} 402 asker elsewhere.net :No such server"]

    srv.state.find_user("asker").modes.add("o")
    other = await srv.client("other")  # noqa: F841 (kept open)
    await c.send("STATS o")
    assert shown(await c.collect_until("219")) == [f"{S} 243 asker O *@127.0.0.1 * boss",
                                                   f"{S} 243 asker O *@localhost * boss", end("o")]
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
    assert show(msgs[0]) == f"{S} 704 asker * :** Help for test.server **"
    assert show(msgs[-1]) == f"{S} 706 asker * :End of /HELP"
    assert all(m.source == "test.server" and m.command == "705" and m.params[:2] == ["asker", "*"]
               for m in msgs[1:-1])
    listed = " ".join(m.params[2] for m in msgs if m.command == "705").split()
    for name in ("WHO", "WHOIS", "PRIVMSG", "HELP", "JOIN"):
        assert name in listed
    await c.send("HELP who")
    assert shown(await c.collect_until("706")) == [
        f"{S} 704 asker who :** WHO **",
        f"{S} 705 asker who :",
        f"{S} 705 asker who :WHO <mask|channel> [o][%<fields>[,<token>]] -- list matching users",
        f"{S} 706 asker who :End of /HELP"]
    await c.send("HELP frobnicate")
    assert shown(await c.ping_pong()) == [f"{S} 524 asker frobnicate :No help available on this topic"]


async def test_every_command_answers_help(server):
    from ircd.commands import COMMANDS
    c = await server.client("asker")
    for name in sorted(COMMANDS):
        await c.send(f"HELP {name}")
        msgs = await c.collect_until("706")
        assert show(msgs[0]) == f"{S} 704 asker {name} :** {name} **", name
        assert msgs[2].params[:2] == ["asker", name] and msgs[2].params[2].startswith(name), name
        assert show(msgs[-1]) == f"{S} 706 asker {name} :End of /HELP"


async def test_queries_need_registration(server):
    c = await server.client()
    await c.send("WHOIS someone", "HELP")
    assert shown(await c.ping_pong()) == [f"{S} 451 * :You have not registered"] * 2


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
