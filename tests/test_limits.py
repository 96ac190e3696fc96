"""Protection from day one: fake lag, Excess Flood, SendQ, per-IP limits, bad input, TLS."""

import re
import socket

import trio

from irctest import IRCClient, show, shown
from ircd.protocol.message import parse_line

S = ":test.server"


async def test_fake_lag_delays_but_answers_everything(make_server):
    srv = await make_server(limits={"flood_burst": 3, "flood_rate": 10.0})
    c = await srv.client("lagged")
    await trio.sleep(0.5)                        # let the budget refill after registration
    start = trio.current_time()
    await c.send(*[f"PING {i}" for i in range(10)])
    pongs = [await c.next_message() for _ in range(10)]
    assert shown(pongs) == [f"{S} PONG test.server {i}" for i in range(10)]   # nothing lost, in order
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
    assert show(err) == "ERROR :Closing Link: 127.0.0.1 (Excess Flood)"
    quit_ = await watcher.expect("QUIT", timeout=10)
    assert show(quit_) == ":flooder!~flooder@127.0.0.1 QUIT :Excess Flood"
    # the flood was cut off, not relayed: at most the budget's worth reached the channel
    relayed = [m for m in watcher.history if " PRIVMSG #f " in m]
    assert len(relayed) <= 6


async def test_flood_control_off_lifts_rate_limits(make_server):
    srv = await make_server(limits={"flood_control": False, "flood_burst": 2, "flood_rate": 1.0,
                                    "recvq": 1024})
    c = await srv.client("bench")
    await c.send(*[f"PING {i}" for i in range(300)])
    for i in range(300):
        assert show(await c.next_message()) == f"{S} PONG test.server {i}"


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
    assert show(await talker.expect("JOIN")) == ":sleeper!~sleeper@127.0.0.1 JOIN #q"
    line = "PRIVMSG #q :" + "z" * 400
    quit_ = None
    with trio.fail_after(30):
        while quit_ is None:
            await talker.send(*[line] * 200)
            for raw in await talker.quiet(0.01):
                if " QUIT " in raw:
                    quit_ = raw
    assert show(parse_line(quit_)) == ":sleeper!~sleeper@127.0.0.1 QUIT :SendQ exceeded"
    assert srv.state.find_user("sleeper") is None


async def test_max_connections_per_ip(make_server):
    srv = await make_server(limits={"max_connections_per_ip": 2})
    first = await srv.client("one")
    second = await srv.client()
    third = await srv.client()
    assert shown(await until_closed(third)) == [
        "ERROR :Closing Link: 127.0.0.1 (Too many connections from your IP address)"]
    await first.send("QUIT")
    assert show(await first.expect("ERROR")) == "ERROR :Closing Link: 127.0.0.1 (Client Quit)"
    await trio.sleep(0.2)
    fourth = await srv.client("four")             # room again after one left
    assert fourth.nick == "four"
    await second.close()


async def test_server_full(make_server):
    srv = await make_server(limits={"max_clients": 1})
    first = await srv.client("only")
    second = await srv.client()
    assert shown(await until_closed(second)) == [
        "ERROR :Closing Link: 127.0.0.1 (Server is full, try again later)"]
    assert first.nick == "only" and await first.ping_pong() == []


async def test_invalid_utf8_gets_standard_reply(server):
    a = await server.client("utf")
    b = await server.client("dest")
    await a.send_raw(b"PRIVMSG dest :caf\xe9\r\n")
    assert shown(await a.ping_pong()) == [
        f"{S} FAIL PRIVMSG INVALID_UTF8 :Message rejected, it contained invalid UTF-8"]
    assert [m.command for m in await b.ping_pong()] == []
    await a.send("PRIVMSG dest :café")                    # valid UTF-8 passes
    assert show(await b.expect("PRIVMSG")) == ":utf!~utf@127.0.0.1 PRIVMSG dest café"


async def test_over_long_lines_are_refused_and_connection_survives(server):
    a = await server.client("longline")
    too_long = f"{S} 417 longline :Input line was too long"
    await a.send("PRIVMSG longline :" + "x" * 600)
    assert show(await a.next_message()) == too_long
    await a.send("@" + "a=" + "b" * 9000 + " PING x")
    assert show(await a.next_message()) == too_long
    await a.send_raw(b"PING " + b"y" * 20000)        # no newline yet: discarded as it arrives
    assert show(await a.next_message()) == too_long
    await a.send_raw(b"\r\nPING ok\r\n")
    assert show(await a.next_message()) == f"{S} PONG test.server ok"   # and nothing else


async def test_tags_up_to_the_limit_are_accepted(server):
    a = await server.client("tagged", caps=["message-tags"])
    await a.send("@+x=" + "t" * 4000 + " PING fine")
    assert show(await a.next_message()) == f"{S} PONG test.server fine"


async def test_tls_listener_registers_and_relays(server):
    secure = await server.client("secure", tls=True)
    plain = await server.client("plain")
    assert server.state.find_user("secure").secure
    await secure.send("PRIVMSG plain :over tls")
    assert show(await plain.expect("PRIVMSG")) == ":secure!~secure@127.0.0.1 PRIVMSG plain :over tls"
    assert not server.state.find_user("plain").secure


async def test_crlf_and_lf_line_endings_and_blank_lines(server):
    c = await server.client()
    await c.send_raw(b"NICK lf\nUSER lf 0 * :x\n\r\n\nPING a\r\n")
    assert show(await c.next_message()) == f"{S} 001 lf :Welcome to the TestNet IRC Network lf!~lf@127.0.0.1"
    burst = await c.collect_until("PONG")
    assert burst[-2].command == "376"          # the blank lines got no answer
    assert show(burst[-1]) == f"{S} PONG test.server a"


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
    # ~20 KB through an 8 KB sendq, every channel once
    assert [m.command for m in msgs] == ["321"] + ["322"] * 200 + ["323"]
    assert sorted(m.params[1] for m in msgs[1:-1]) == [
        f"#channel-with-a-long-name-{i:04d}" for i in range(200)]
    assert all(m.params[2:] == ["1", "[+nt] "] for m in msgs[1:-1])
    assert show(msgs[-1]) == f"{S} 323 lister :End of /LIST"
    nicks = sorted(["maker", "lister"] + [f"who{i}" for i in range(60)])
    await lister.send("WHO *")
    msgs = await lister.collect_until("315", timeout=20)
    assert [m.command for m in msgs] == ["352"] * 62 + ["315"]
    assert sorted(m.params[5] for m in msgs[:-1]) == nicks
    assert show(msgs[-1]) == f"{S} 315 lister * :End of /WHO list."
    await lister.send("WHO * %nuhr")
    msgs = await lister.collect_until("315", timeout=20)
    assert [m.command for m in msgs] == ["354"] * 62 + ["315"]
    assert sorted(shown(msgs[:-1])) == sorted(
        f"{S} 354 lister ~{n[:8]} 127.0.0.1 {n} :Test User" for n in nicks)
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
    assert re.fullmatch(r":test\.server FAIL PRIVMSG NOT_DELIVERED stalled \w+ :Your message to "
                        r"stalled was not delivered: their connection is not reading and is being "
                        r"closed \(SendQ exceeded\)", fail)
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
    assert notice == (f"{S} NOTICE classic :*** PRIVMSG not delivered: Your message to stalled2 "
                      "was not delivered: their connection is not reading and is being closed "
                      "(SendQ exceeded)")
    await stalled2.close()


async def until_closed(client):
    msgs = []
    try:
        while True:
            msgs.append(await client.next_message())
    except EOFError:
        return msgs


async def test_a_tls_reader_that_falls_behind_gets_everything_in_order(make_server):
    """More than the kernel's socket buffers hold waits in the server while a TLS
    client does not read, and arrives whole and in order once it does."""
    srv = await make_server(limits={"flood_control": False, "sendq": 16_000_000})
    slow = await srv.client("slowtls", tls=True)
    fast = await srv.client("fasttls")
    conn = srv.state.find_user("slowtls").session.conn
    text = "y" * 400
    count = 0
    while not conn.blocked and count < 40_000:     # until the kernel takes no more
        await fast.send(*(f"PRIVMSG slowtls :{i} {text}" for i in range(count, count + 500)))
        count += 500
        await fast.ping_pong()
    assert conn.blocked and conn.queued > 0        # the server holds the rest
    got = []
    with trio.fail_after(30):
        while len(got) < count:
            msg = await slow.expect("PRIVMSG")
            got.append(int(msg.params[1].split(" ", 1)[0]))
    assert got == list(range(count))
    assert not conn.dead
