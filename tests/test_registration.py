"""Registration as real clients do it: plain, with CAP negotiation, with PASS, and badly."""

import trio

from irctest import show, shown

S = ":test.server"


def welcome(nick, ident):
    return f"{S} 001 {nick} :Welcome to the TestNet IRC Network {nick}!~{ident}@127.0.0.1"


async def test_plain_registration_gets_welcome_burst(server):
    c = await server.client()
    msgs = await c.register("alice")
    commands = [m.command for m in msgs]
    for numeric in ("001", "002", "003", "004", "005", "251", "255", "265", "266", "375", "372", "376"):
        assert numeric in commands, numeric
    assert show(msgs[0]) == welcome("alice", "alice")
    assert all(m.source == "test.server" and m.params[0] == "alice" for m in msgs)
    assert commands[:5] == ["001", "002", "003", "004", "005"] and commands[-1] == "376"
    isupport = " ".join(" ".join(m.params[1:-1]) for m in msgs if m.command == "005")
    for token in ("CASEMAPPING=rfc1459", "CHANTYPES=#&", "PREFIX=(ov)@+", "NETWORK=TestNet",
                  "CHANMODES=beI,k,l,imnst", "WHOX", "BOT=B", "MONITOR=100", "UTF8ONLY",
                  "STATUSMSG=@+", "ELIST=CMNTU", "SAFELIST", "EXCEPTS=e", "INVEX=I"):
        assert token in isupport.split(), token
    # every 005 line fits the protocol limit
    assert all(len(line.encode()) <= 510 for line in [" ".join(m.params) for m in msgs])


async def test_trailing_parameters_mean_the_same(server):
    """Limnoria sends `NICK :name` and `CAP :END`."""
    c = await server.client()
    await c.send("CAP LS :302", "NICK :lim", "USER lim 0 * :Lim Bot", "CAP :END")
    ls = await c.next_message()
    assert (ls.command, ls.params[:2]) == ("CAP", ["*", "LS"])
    assert show(await c.next_message()) == welcome("lim", "lim")


async def test_cap_negotiation_suspends_registration(server):
    c = await server.client()
    await c.send("CAP LS 302", "NICK capper", "USER c 0 * :c")
    ls = await c.expect("CAP")
    assert ls.params[:2] == ["*", "LS"]
    caps = ls.params[-1].split()
    for cap in ("message-tags", "server-time", "echo-message", "labeled-response", "batch",
                "multi-prefix", "userhost-in-names", "away-notify", "account-notify",
                "account-tag", "extended-join", "chghost", "setname", "invite-notify",
                "cap-notify", "extended-monitor"):
        assert cap in caps, cap
    assert await c.ping_pong() == []       # no 001 while negotiating
    await c.send("CAP REQ :multi-prefix bogus-cap")
    assert shown(await c.ping_pong()) == [f"{S} CAP * NAK :multi-prefix bogus-cap"]
    await c.send("CAP REQ :multi-prefix server-time", "CAP LIST")
    assert shown(await c.ping_pong()) == [f"{S} CAP * ACK :multi-prefix server-time",
                                          f"{S} CAP * LIST :cap-notify multi-prefix server-time"]
    await c.send("CAP END")
    assert show(await c.next_message()) == welcome("capper", "c")


async def test_weechat_style_cap_end_before_ack(server):
    c = await server.client()
    await c.send("CAP LS 302", "NICK wee", "USER wee 0 * :w", "CAP REQ :server-time", "CAP END")
    ls = await c.next_message()
    assert ls.params[:2] == ["*", "LS"]
    assert show(await c.next_message()) == f"{S} CAP * ACK server-time"
    assert show(await c.next_message()) == welcome("wee", "wee")


async def test_cap_after_registration_and_invalid_subcommand(server):
    c = await server.client("late")
    await c.send("CAP REQ :echo-message", "CAP FROB")
    assert shown(await c.ping_pong()) == [f"{S} CAP late ACK echo-message",
                                          f"{S} 410 late FROB :Invalid CAP command"]


async def test_nick_errors(server):
    holder = await server.client("taken")  # noqa: F841 (kept open)
    c = await server.client()
    await c.send("NICK", "NICK 1bad", "NICK " + "x" * 31, "NICK TAKEN")   # casemapped clash
    assert shown(await c.ping_pong()) == [f"{S} 431 * :No nickname given",
                                          f"{S} 432 * 1bad :Erroneous nickname",
                                          f"{S} 432 * {'x' * 31} :Erroneous nickname",
                                          f"{S} 433 * TAKEN :Nickname is already in use"]
    await c.send("NICK t[a]ken", "USER t 0 * :t")
    assert show(await c.next_message()) == welcome("t[a]ken", "t")


async def test_rfc1459_casemapping_applies_to_nicks(server):
    holder = await server.client("a[b]")  # noqa: F841 (kept open)
    c = await server.client()
    await c.send("NICK A{B}")
    assert shown(await c.ping_pong()) == [f"{S} 433 * A{{B}} :Nickname is already in use"]


async def test_nick_change_is_seen_by_channel_members(server):
    a = await server.client("anna")
    b = await server.client("bert")
    await a.send("JOIN #room")
    await a.expect("366")
    await b.send("JOIN #room")
    await b.expect("366")
    await a.send("NICK anne")
    assert shown(await a.ping_pong()) == [":bert!~bert@127.0.0.1 JOIN #room",
                                          ":anna!~anna@127.0.0.1 NICK anne"]    # once, not twice
    assert shown(await b.ping_pong()) == [":anna!~anna@127.0.0.1 NICK anne"]


async def test_commands_before_registration_are_refused(server):
    c = await server.client()
    await c.send("JOIN :", "PRIVMSG x :y")       # irssi sends an empty JOIN early
    assert shown(await c.ping_pong()) == [f"{S} 451 * :You have not registered"] * 2


async def test_reregistration_refused(server):
    c = await server.client("once")
    await c.send("USER again 0 * :x", "PASS foo")
    assert shown(await c.ping_pong()) == [f"{S} 462 once :You may not reregister"] * 2
    assert server.state.find_user("once").ident == "~once"


async def test_password_required(make_server):
    srv = await make_server(server={"password": "sesame"})
    good = await srv.client()
    await good.register("good", password="sesame")
    refused = "ERROR :Closing Link: 127.0.0.1 (Bad password)"
    bad = await srv.client()
    await bad.send("PASS wrong", "NICK bad", "USER bad 0 * :b")
    assert show(await bad.next_message()) == f"{S} 464 bad :Password incorrect"
    assert show(await bad.next_message()) == refused
    none = await srv.client()
    await none.send("NICK none", "USER none 0 * :b")
    assert show(await none.next_message()) == f"{S} 464 none :Password incorrect"
    assert show(await none.next_message()) == refused
    assert srv.state.find_user("bad") is None and srv.state.find_user("none") is None


async def test_ping_pong_and_missing_origin(server):
    c = await server.client("pinger")
    await c.send("PING :hello there", "PING")
    assert show(await c.next_message()) == f"{S} PONG test.server :hello there"
    assert show(await c.next_message()) == f"{S} 409 pinger :No origin specified"


async def test_quit_closes_with_error_and_tells_channel(server):
    a = await server.client("quitter")
    b = await server.client("stayer")
    for c in (a, b):
        await c.send("JOIN #q")
        await c.expect("366")
    await a.send("QUIT :gone fishing")
    err = await a.expect("ERROR")
    assert show(err) == "ERROR :Closing Link: 127.0.0.1 (Quit: gone fishing)"
    assert shown(await b.ping_pong()) == [":quitter!~quitter@127.0.0.1 QUIT :Quit: gone fishing"]
    with trio.fail_after(5):
        while await a._fill():
            pass
    assert a.closed


async def test_unknown_command(server):
    c = await server.client("who")
    await c.send("FROBNICATE x")
    assert shown(await c.ping_pong()) == [f"{S} 421 who FROBNICATE :Unknown command"]


async def test_registration_timeout(make_server):
    srv = await make_server(limits={"registration_timeout": 0.5})
    c = await srv.client()
    await c.send("NICK slow")
    err = await c.next_message(timeout=5)
    assert show(err) == "ERROR :Closing Link: 127.0.0.1 (Registration timed out)"


async def test_server_pings_idle_client_and_times_out(make_server, nursery):
    srv = await make_server(limits={"ping_interval": 0.3, "ping_timeout": 0.5})
    c = await srv.client("idle")
    watcher = await srv.client("watcher")
    for client in (c, watcher):
        await client.send("JOIN #idle")
        await client.expect("366")
    await c.ping_pong()
    await watcher.ping_pong()

    async def keep_watcher_active():
        while True:
            await watcher.send("PONG :keepalive")
            await trio.sleep(0.1)
    nursery.start_soon(keep_watcher_active)

    ping = await c.next_message(timeout=5)
    assert show(ping) == "PING test.server"
    err = await c.next_message(timeout=5)
    assert err.command == "ERROR"
    assert err.params[0].startswith("Closing Link: 127.0.0.1 (Ping timeout: ")
    reason = err.params[0][len("Closing Link: 127.0.0.1 ("):-1]
    assert reason.endswith(" seconds")
    assert shown(await watcher.ping_pong()) == [":idle!~idle@127.0.0.1 QUIT :" + reason]


async def test_answering_pings_keeps_client_connected(make_server):
    srv = await make_server(limits={"ping_interval": 0.3, "ping_timeout": 0.5})
    c = await srv.client("alive")
    for _ in range(3):
        ping = await c.next_message(timeout=5)
        assert show(ping) == "PING test.server"
        await c.send(f"PONG :{ping.params[0]}")
    await c.send("PING check")
    assert show(await c.next_message()) == f"{S} PONG test.server check"


async def test_welcome_lines_carry_each_clients_nick_and_fit_the_line_limit(nursery, tmp_path):
    """The welcome burst is built once and written with each client's nick: a long nick
    next to a long MOTD line is still cut to 512 bytes, and nobody gets another's nick."""
    from irctest import start_server
    long_line = "m" * 470
    srv = await start_server(nursery, tmp_path, server={"motd": long_line},
                             limits={"nicklen": 30})
    short = await srv.client()
    long = await srv.client()
    nick = "n" * 30
    for client, name in ((short, "ab"), (long, nick)):
        msgs = await client.register(name)
        assert all(m.params[0] == name for m in msgs)
        line = f":test.server 372 {name} :- {long_line}"[:510]
        assert [show(m) for m in msgs if m.command == "372"] == [line]
        # 005 comes from the same template; VERSION sends it again, the same way
        isupport = [show(m) for m in msgs if m.command == "005"]
        await client.send("VERSION")
        again = [show(m) for m in await client.collect_until("005") if m.command == "005"]
        assert again[0] == isupport[0]
