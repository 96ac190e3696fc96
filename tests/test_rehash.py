"""Rehash changes listeners and limits without dropping anyone."""

import signal

import trio

from irctest import IRCClient, free_port


async def test_rehash_moves_listeners_and_keeps_connections(make_server):
    srv = await make_server()
    old_plain = await srv.client("plainold")
    old_tls = await srv.client("tlsold", tls=True)
    new_port = free_port()
    text = srv.path.read_text()
    # drop the TLS listener, add a second plain one, change a limit
    tls_block = f'\n[[listen]]\nhost = "127.0.0.1"\nport = {srv.tls_port}\ntls = true\n'
    assert tls_block in text
    text = text.replace(tls_block, f'\n[[listen]]\nhost = "127.0.0.1"\nport = {new_port}\n')
    text = text.replace("[limits]\n", "[limits]\nnicklen = 12\n")
    srv.path.write_text(text)
    ok, message = srv.app.rehash()
    assert ok, message
    await trio.sleep(0.3)

    newcomer = await IRCClient.connect(new_port)
    welcome = await newcomer.register("newport")
    assert any("NICKLEN=12" in m.params for m in welcome if m.command == "005")
    try:
        await IRCClient.connect(srv.tls_port, tls=True)
        raise AssertionError("the removed TLS listener still accepts connections")
    except OSError:
        pass
    # both old clients are still connected and can talk
    await old_tls.send("PRIVMSG plainold :still here")
    assert (await old_plain.expect("PRIVMSG")).params == ["plainold", "still here"]


async def test_sighup_reloads_like_rehash(make_server):
    srv = await make_server()
    c = await srv.client("hupper")
    srv.path.write_text(srv.path.read_text().replace("[limits]\n", "[limits]\ntopiclen = 7\n"))
    signal.raise_signal(signal.SIGHUP)
    for _ in range(100):
        if srv.state.config.limits.topiclen == 7:
            break
        await trio.sleep(0.02)
    assert srv.state.config.limits.topiclen == 7
    await c.ping_pong()


async def test_rehash_refuses_an_invalid_file_and_keeps_running(make_server):
    srv = await make_server()
    c = await srv.client("keeper")
    srv.path.write_text(srv.path.read_text().replace("[limits]\n", "[limits]\nsendq = -1\n"))
    ok, message = srv.app.rehash()
    assert not ok and "sendq" in message and "ircd.toml" in message
    assert srv.state.config.limits.sendq > 0
    await c.ping_pong()


async def test_monitor_zero_is_not_advertised(make_server):
    srv = await make_server(limits={"monitor": 0})
    c = await srv.client()
    welcome = await c.register("nomon")
    tokens = [t for m in welcome if m.command == "005" for t in m.params[1:-1]]
    assert not any(t.startswith("MONITOR") for t in tokens)


async def test_rehash_removing_an_oper_block_removes_its_operators(make_server):
    from ircd.passwords import hash_password
    block = f'[[oper]]\nname = "admin"\npassword = "{hash_password("pw")}"\n'
    srv = await make_server(extra=block)
    boss = await srv.client("boss")
    await boss.send("OPER admin pw")
    await boss.expect("381")
    await boss.expect("MODE")
    srv.path.write_text(srv.path.read_text().replace(block, ""))
    ok, message = srv.app.rehash()
    assert ok, message
    mode = await boss.expect("MODE")
    assert mode.params == ["boss", "-o"]
    note = await boss.expect("NOTICE")
    assert "no longer an IRC operator" in note.params[1]
    assert not srv.state.find_user("boss").is_oper
    await boss.send("LUSERS")
    assert (await boss.expect("252")).params[1] == "0"
