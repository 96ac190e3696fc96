"""Registration as real clients do it: plain, with CAP negotiation, with PASS, and badly."""

import trio



async def test_plain_registration_gets_welcome_burst(server):
    c = await server.client()
    msgs = await c.register("alice")
    commands = [m.command for m in msgs]
    for numeric in ("001", "002", "003", "004", "005", "251", "255", "265", "266", "375", "372", "376"):
        assert numeric in commands, numeric
    assert msgs[0].source == "test.server"
    assert "alice!~alice@127.0.0.1" in msgs[0].params[1]
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
    welcome = await c.expect("001")
    assert welcome.params[0] == "lim"


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
    assert await c.quiet(0.3) == []       # no 001 while negotiating
    await c.send("CAP REQ :multi-prefix bogus-cap")
    nak = await c.expect("CAP")
    assert nak.params[1:] == ["NAK", "multi-prefix bogus-cap"]
    await c.send("CAP REQ :multi-prefix server-time", "CAP LIST")
    ack = await c.expect("CAP")
    assert ack.params[1] == "ACK"
    listed = await c.expect("CAP")
    assert listed.params[1] == "LIST"
    assert set(listed.params[2].split()) >= {"multi-prefix", "server-time"}
    await c.send("CAP END")
    await c.expect("001")


async def test_weechat_style_cap_end_before_ack(server):
    c = await server.client()
    await c.send("CAP LS 302", "NICK wee", "USER wee 0 * :w", "CAP REQ :server-time", "CAP END")
    await c.expect("CAP", "*", "ACK")
    await c.expect("001")


async def test_cap_after_registration_and_invalid_subcommand(server):
    c = await server.client("late")
    await c.send("CAP REQ :echo-message")
    ack = await c.expect("CAP")
    assert ack.params == ["late", "ACK", "echo-message"]
    await c.send("CAP FROB")
    err = await c.expect("410")
    assert err.params[1] == "FROB"


async def test_nick_errors(server):
    holder = await server.client("taken")  # noqa: F841 (kept open)
    c = await server.client()
    await c.send("NICK")
    await c.expect("431")
    await c.send("NICK 1bad")
    await c.expect("432", "*", "1bad")
    await c.send("NICK " + "x" * 31)
    await c.expect("432")
    await c.send("NICK TAKEN")            # casemapped clash
    await c.expect("433", "*", "TAKEN")
    await c.send("NICK t[a]ken", "USER t 0 * :t")
    await c.expect("001")


async def test_rfc1459_casemapping_applies_to_nicks(server):
    holder = await server.client("a[b]")  # noqa: F841 (kept open)
    c = await server.client()
    await c.send("NICK A{B}")
    await c.expect("433")


async def test_nick_change_is_seen_by_channel_members(server):
    a = await server.client("anna")
    b = await server.client("bert")
    await a.send("JOIN #room")
    await a.expect("366")
    await b.send("JOIN #room")
    await b.expect("366")
    await a.send("NICK anne")
    own = await a.expect("NICK")
    assert own.source.startswith("anna!") and own.params == ["anne"]
    seen = await b.expect("NICK")
    assert seen.source.startswith("anna!") and seen.params == ["anne"]


async def test_commands_before_registration_are_refused(server):
    c = await server.client()
    await c.send("JOIN :", "PRIVMSG x :y")       # irssi sends an empty JOIN early
    await c.expect("451")
    await c.expect("451")


async def test_reregistration_refused(server):
    c = await server.client("once")
    await c.send("USER again 0 * :x")
    await c.expect("462")
    await c.send("PASS foo")
    await c.expect("462")


async def test_password_required(make_server):
    srv = await make_server(server={"password": "sesame"})
    good = await srv.client()
    await good.register("good", password="sesame")
    bad = await srv.client()
    await bad.send("PASS wrong", "NICK bad", "USER bad 0 * :b")
    await bad.expect("464")
    err = await bad.expect("ERROR")
    assert "Bad password" in err.params[0]
    none = await srv.client()
    await none.send("NICK none", "USER none 0 * :b")
    await none.expect("464")


async def test_ping_pong_and_missing_origin(server):
    c = await server.client("pinger")
    await c.send("PING :hello there")
    pong = await c.expect("PONG")
    assert pong.params == ["test.server", "hello there"]
    await c.send("PING")
    await c.expect("409")


async def test_quit_closes_with_error_and_tells_channel(server):
    a = await server.client("quitter")
    b = await server.client("stayer")
    for c in (a, b):
        await c.send("JOIN #q")
        await c.expect("366")
    await a.send("QUIT :gone fishing")
    err = await a.expect("ERROR")
    assert "Quit: gone fishing" in err.params[0]
    seen = await b.expect("QUIT")
    assert seen.source.startswith("quitter!") and seen.params == ["Quit: gone fishing"]
    with trio.fail_after(5):
        while await a._fill():
            pass
    assert a.closed


async def test_unknown_command(server):
    c = await server.client("who")
    await c.send("FROBNICATE x")
    await c.expect("421", "who", "FROBNICATE")


async def test_registration_timeout(make_server):
    srv = await make_server(limits={"registration_timeout": 0.5})
    c = await srv.client()
    await c.send("NICK slow")
    err = await c.expect("ERROR", timeout=5)
    assert "Registration timed out" in err.params[0]


async def test_server_pings_idle_client_and_times_out(make_server):
    srv = await make_server(limits={"ping_interval": 0.3, "ping_timeout": 0.5})
    c = await srv.client("idle")
    ping = await c.expect("PING", timeout=5)
    assert ping.params == ["test.server"]
    err = await c.expect("ERROR", timeout=5)
    assert "Ping timeout" in err.params[0]


async def test_answering_pings_keeps_client_connected(make_server):
    srv = await make_server(limits={"ping_interval": 0.3, "ping_timeout": 0.5})
    c = await srv.client("alive")
    for _ in range(3):
        ping = await c.expect("PING", timeout=5)
        await c.send(f"PONG :{ping.params[0]}")
    await c.send("PING check")
    await c.expect("PONG")
