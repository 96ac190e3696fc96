"""Protection from day one: fake lag, Excess Flood, SendQ, per-IP limits, bad input, TLS."""

import socket

import trio

from irctest import IRCClient


async def test_fake_lag_delays_but_answers_everything(make_server):
    srv = await make_server(limits={"flood_burst": 3, "flood_rate": 10.0})
    c = await srv.client("lagged")
    await trio.sleep(0.5)                        # let the budget refill after registration
    start = trio.current_time()
    await c.send(*[f"PING {i}" for i in range(10)])
    tokens = [(await c.expect("PONG")).params[1] for _ in range(10)]
    assert tokens == [str(i) for i in range(10)]        # nothing lost, order kept
    assert trio.current_time() - start >= 0.4            # 7 commands over budget at 10/s


async def test_excess_flood_disconnects(make_server):
    srv = await make_server(limits={"flood_burst": 5, "flood_rate": 1.0, "recvq": 2000})
    c = await srv.client("flooder")
    watcher = await srv.client("watcher")
    await c.send("JOIN #f")
    await watcher.send("JOIN #f")
    await watcher.expect("366")
    await c.send(*[f"PRIVMSG #f :flood line number {i}" for i in range(200)])
    err = await c.expect("ERROR", timeout=10)
    assert "Excess Flood" in err.params[0]
    quit_ = await watcher.expect("QUIT", timeout=10)
    assert quit_.source.startswith("flooder!") and quit_.params == ["Excess Flood"]


async def test_flood_control_off_lifts_rate_limits(make_server):
    srv = await make_server(limits={"flood_control": False, "flood_burst": 2, "flood_rate": 1.0,
                                    "recvq": 1024})
    c = await srv.client("bench")
    await c.send(*[f"PING {i}" for i in range(300)])
    for i in range(300):
        assert (await c.expect("PONG")).params[1] == str(i)


async def test_sendq_exceeded_disconnects_a_client_that_never_reads(make_server):
    srv = await make_server(limits={"flood_control": False, "sendq": 20000})
    talker = await srv.client("talker")
    await talker.send("JOIN #q")
    await talker.expect("366")
    # a reader with a tiny receive buffer that never reads
    sock = trio.socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    await sock.connect(("127.0.0.1", srv.port))
    sleeper = IRCClient(trio.SocketStream(sock))
    await sleeper.register("sleeper")
    await sleeper.send("JOIN #q")
    await talker.expect("JOIN")
    line = "PRIVMSG #q :" + "z" * 400
    quit_ = None
    with trio.fail_after(30):
        while quit_ is None:
            await talker.send(*[line] * 200)
            for raw in await talker.quiet(0.01):
                if " QUIT " in raw:
                    quit_ = raw
    assert quit_.startswith(":sleeper!") and quit_.endswith("SendQ exceeded")
    assert srv.state.find_user("sleeper") is None


async def test_max_connections_per_ip(make_server):
    srv = await make_server(limits={"max_connections_per_ip": 2})
    first = await srv.client("one")
    second = await srv.client()
    third = await srv.client()
    err = await third.expect("ERROR")
    assert "Too many connections" in err.params[0]
    await first.send("QUIT")
    await first.expect("ERROR")
    await trio.sleep(0.2)
    fourth = await srv.client("four")             # room again after one left
    assert fourth.nick == "four"
    await second.close()


async def test_server_full(make_server):
    srv = await make_server(limits={"max_clients": 1})
    first = await srv.client("only")
    second = await srv.client()
    err = await second.expect("ERROR")
    assert "full" in err.params[0]
    assert first.nick == "only"


async def test_invalid_utf8_gets_standard_reply(server):
    a = await server.client("utf")
    b = await server.client("dest")
    await a.send_raw(b"PRIVMSG dest :caf\xe9\r\n")
    fail = await a.expect("FAIL")
    assert fail.params[:2] == ["PRIVMSG", "INVALID_UTF8"]
    assert [m.command for m in await b.ping_pong()] == []
    await a.send("PRIVMSG dest :café")                    # valid UTF-8 passes
    assert (await b.expect("PRIVMSG")).params[1] == "café"


async def test_over_long_lines_are_refused_and_connection_survives(server):
    a = await server.client("longline")
    await a.send("PRIVMSG longline :" + "x" * 600)
    await a.expect("417")
    await a.send("@" + "a=" + "b" * 9000 + " PING x")
    await a.expect("417")
    await a.send_raw(b"PING " + b"y" * 20000)        # no newline yet: discarded as it arrives
    await a.expect("417")
    await a.send_raw(b"\r\nPING ok\r\n")
    assert (await a.expect("PONG")).params[1] == "ok"


async def test_tags_up_to_the_limit_are_accepted(server):
    a = await server.client("tagged", caps=["message-tags"])
    await a.send("@+x=" + "t" * 4000 + " PING fine")
    assert (await a.expect("PONG")).params[1] == "fine"


async def test_tls_listener_registers_and_relays(server):
    secure = await server.client("secure", tls=True)
    plain = await server.client("plain")
    assert server.state.find_user("secure").secure
    await secure.send("PRIVMSG plain :over tls")
    assert (await plain.expect("PRIVMSG")).params == ["plain", "over tls"]


async def test_crlf_and_lf_line_endings_and_blank_lines(server):
    c = await server.client()
    await c.send_raw(b"NICK lf\nUSER lf 0 * :x\n\r\n\nPING a\r\n")
    await c.expect("001")
    assert (await c.expect("PONG")).params[1] == "a"


async def test_list_and_who_larger_than_the_sendq_are_paced_not_fatal(make_server):
    """SAFELIST: a LIST (or WHO *) bigger than the send queue still arrives whole."""
    srv = await make_server(limits={"sendq": 8192, "flood_control": False, "max_channels": 200,
                                    "max_connections_per_ip": 0})
    maker = await srv.client("maker")
    for start in range(0, 200, 10):      # in steps, so the joins' own replies fit the sendq
        await maker.send(*[f"JOIN #channel-with-a-long-name-{i:04d}" for i in range(start, start + 10)])
        for _ in range(10):
            await maker.expect("366")
    others = [await srv.client(f"who{i}") for i in range(60)]
    lister = await srv.client("lister")
    await lister.send("LIST")
    msgs = await lister.collect_until("323", timeout=20)
    assert len([m for m in msgs if m.command == "322"]) == 200        # ~20 KB through an 8 KB sendq
    await lister.send("WHO *")
    msgs = await lister.collect_until("315", timeout=20)
    assert len([m for m in msgs if m.command == "352"]) == 62
    await lister.send("WHO * %nuhr")
    msgs = await lister.collect_until("315", timeout=20)
    assert len([m for m in msgs if m.command == "354"]) == 62
    assert srv.state.find_user("lister") is not None
    assert len(others) == 60


async def _stalled_client(srv, nick):
    sock = trio.socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    await sock.connect(("127.0.0.1", srv.port))
    client = IRCClient(trio.SocketStream(sock))
    await client.register(nick)
    return client


async def test_sender_is_told_when_a_private_message_cannot_be_delivered(make_server):
    srv = await make_server(limits={"flood_control": False, "sendq": 20000})
    modern = await srv.client("modern", caps=["standard-replies"])
    classic = await srv.client("classic")
    stalled = await _stalled_client(srv, "stalled")
    line = "PRIVMSG stalled :" + "z" * 400
    fail = None
    with trio.fail_after(30):
        while fail is None:
            await modern.send(*[line] * 100)
            for raw in await modern.quiet(0.01):
                if raw.startswith(":test.server FAIL"):
                    fail = raw
    assert " FAIL PRIVMSG NOT_DELIVERED stalled " in fail and "SendQ exceeded" in fail
    assert srv.state.find_user("stalled") is None
    # a client without standard-replies hears it as a NOTICE
    stalled2 = await _stalled_client(srv, "stalled2")
    notice = None
    with trio.fail_after(30):
        while notice is None:
            await classic.send(*[line.replace("stalled", "stalled2")] * 100)
            for raw in await classic.quiet(0.01):
                if " NOTICE classic :" in raw and "not delivered" in raw:
                    notice = raw
    assert "stalled2" in notice
    await stalled2.close()
