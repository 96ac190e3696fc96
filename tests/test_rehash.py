"""Rehash changes listeners and limits without dropping anyone."""

import signal

import trio

from irctest import IRCClient, free_port, show, shown

S = ":test.server"


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
    # both old clients are still connected, were told nothing, and can talk
    assert await old_tls.ping_pong() == []
    await old_tls.send("PRIVMSG plainold :still here")
    assert shown(await old_plain.ping_pong()) == [":tlsold!~tlsold@127.0.0.1 PRIVMSG plainold :still here"]
    assert srv.state.find_user("tlsold").secure


async def test_sighup_reloads_like_rehash(make_server):
    srv = await make_server()
    c = await srv.client("hupper")
    await c.send("JOIN #h")
    await c.expect("366")
    srv.path.write_text(srv.path.read_text().replace("[limits]\n", "[limits]\ntopiclen = 7\n"))
    signal.raise_signal(signal.SIGHUP)
    for _ in range(100):
        if srv.state.config.limits.topiclen == 7:
            break
        await trio.sleep(0.02)
    assert srv.state.config.limits.topiclen == 7
    # the connected client is told nothing, and the new limit applies to it at once
    await c.send("TOPIC #h :much longer than seven")
    assert shown(await c.ping_pong()) == [":hupper!~hupper@127.0.0.1 TOPIC #h :much lo"]
    welcome = await (await srv.client()).register("later")
    assert "TOPICLEN=7" in [t for m in welcome if m.command == "005" for t in m.params]


async def test_rehash_refuses_an_invalid_file_and_keeps_running(make_server):
    srv = await make_server()
    c = await srv.client("keeper")
    srv.path.write_text(srv.path.read_text().replace("[limits]\n", "[limits]\nsendq = -1\n"))
    ok, message = srv.app.rehash()
    assert not ok
    assert message == f"{srv.path}: [limits] sendq: must be an integer >= 4096, got integer -1"
    assert srv.state.config.limits.sendq > 0
    assert await c.ping_pong() == []


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
    assert shown(await boss.ping_pong()) == [f"{S} 381 boss :You are now an IRC operator",
                                             ":boss!~boss@127.0.0.1 MODE boss +o"]
    srv.path.write_text(srv.path.read_text().replace(block, ""))
    ok, message = srv.app.rehash()
    assert ok, message
    assert shown(await boss.ping_pong()) == [
        ":boss!~boss@127.0.0.1 MODE boss -o",
        f"{S} NOTICE boss :*** Your operator block 'admin' was removed from the configuration; "
        "you are no longer an IRC operator"]
    assert not srv.state.find_user("boss").is_oper
    await boss.send("LUSERS")
    assert show(await boss.expect("252")) == f"{S} 252 boss 0 :operator(s) online"
