"""Operator commands: OPER, KILL, WALLOPS, REHASH, DIE/RESTART, CHGHOST, and the real
process reloading on SIGHUP and stopping cleanly on SIGTERM."""

import signal
import subprocess
import sys

import trio

from irctest import IRCClient, write_config
from ircd.commands import oper as oper_commands
from ircd.passwords import hash_password

PASSWORD = "correct horse"
HASH = hash_password(PASSWORD)
OPERS = f'''
[[oper]]
name = "admin"
password = "{HASH}"
hosts = ["*@127.0.0.1"]

[[oper]]
name = "faraway"
password = "{HASH}"
hosts = ["*@192.0.2.*", "*@*.example.org"]
'''


async def oper_server(make_server, **kwargs):
    return await make_server(extra=OPERS, **kwargs)


async def become_oper(client, name="admin"):
    await client.send(f"OPER {name} :{PASSWORD}")
    await client.expect("381")
    await client.expect("MODE", client.nick, "+o", skip=False)


async def test_oper_success(make_server):
    srv = await oper_server(make_server)
    c = await srv.client("boss")
    await c.send(f"OPER admin :{PASSWORD}")
    msgs = await c.ping_pong()
    assert [m.command for m in msgs] == ["381", "MODE"]
    assert msgs[0].params == ["boss", "You are now an IRC operator"]
    assert msgs[1].source == "boss!~boss@127.0.0.1" and msgs[1].params == ["boss", "+o"]
    user = srv.state.find_user("boss")
    assert user.is_oper and user.oper_name == "admin"
    await c.send("MODE boss")
    umode = await c.expect("221")
    assert "o" in umode.params[1]
    await c.send("LUSERS")
    assert (await c.expect("252")).params[1] == "1"
    await c.ping_pong()
    # OPER again: still one operator, no second MODE line
    await c.send(f"OPER admin :{PASSWORD}")
    assert [m.command for m in await c.ping_pong()] == ["381"]
    await c.send("LUSERS")
    assert (await c.expect("252")).params[1] == "1"
    await c.ping_pong()
    # -o gives it up
    await c.send("MODE boss -o")
    await c.expect("MODE")
    assert not user.is_oper and user.oper_name is None
    await c.send("LUSERS")
    assert (await c.expect("252")).params[1] == "0"
    await c.ping_pong()
    # an operator who quits is no longer counted
    await become_oper(c)
    await c.send("QUIT")
    await c.expect("ERROR")
    other = await srv.client("counter")
    await other.send("LUSERS")
    assert (await other.expect("252")).params[1] == "0"


async def test_oper_wrong_password_unknown_name_and_host_mismatch(make_server):
    srv = await oper_server(make_server)
    wrong = await srv.client("wrong")
    await wrong.send("OPER admin :not it")
    err = await wrong.expect("464", skip=False)
    assert err.params == ["wrong", "Password incorrect"]
    # a failed attempt makes the next one wait, whatever it is
    await wrong.send(f"OPER admin :{PASSWORD}")
    wait = await wrong.expect("263", skip=False)
    assert wait.params[1] == "OPER"

    unknown = await srv.client("unknown")
    await unknown.send(f"OPER nobody :{PASSWORD}")
    err = await unknown.expect("491", skip=False)
    assert err.params == ["unknown", "No O-lines for your host"]

    elsewhere = await srv.client("elsewhere")
    await elsewhere.send(f"OPER faraway :{PASSWORD}")
    err = await elsewhere.expect("491", skip=False)
    assert err.params == ["elsewhere", "No O-lines for your host"]

    missing = await srv.client("missing")
    await missing.send("OPER admin")
    await missing.expect("461", "missing", "OPER")

    for nick in ("wrong", "unknown", "elsewhere", "missing"):
        assert not srv.state.find_user(nick).is_oper


async def test_oper_without_any_oper_block_is_no_o_lines(make_server):
    srv = await make_server()            # no [[oper]] blocks at all
    c = await srv.client("hopeful")
    await c.send(f"OPER admin :{PASSWORD}")
    err = await c.expect("491", skip=False)
    assert err.params == ["hopeful", "No O-lines for your host"]
    assert not srv.state.find_user("hopeful").is_oper


async def test_oper_retry_after_backoff(make_server, monkeypatch):
    monkeypatch.setattr(oper_commands, "OPER_RETRY_SECONDS", 0.1)
    srv = await oper_server(make_server)
    c = await srv.client("retry")
    await c.send("OPER admin :typo")
    await c.expect("464")
    await trio.sleep(0.15)
    await become_oper(c)


async def test_mode_cannot_grant_o(server):
    c = await server.client("sneaky")
    await c.send("MODE sneaky +o")
    assert all(m.command != "MODE" for m in await c.ping_pong())
    assert not server.state.find_user("sneaky").is_oper


async def test_oper_commands_need_privileges(make_server):
    srv = await oper_server(make_server, server={"allow_die": True, "allow_restart": True})
    c = await srv.client("pleb")
    victim = await srv.client("victim")  # noqa: F841 (kept open)
    for line in ("KILL victim :bye", "REHASH", "WALLOPS :hi", "DIE", "RESTART",
                 "CHGHOST victim a b.c"):
        await c.send(line)
        err = await c.expect("481", skip=False)
        assert err.params[0] == "pleb"
    assert srv.state.find_user("victim") is not None
    assert not srv.app._stop.is_set()


async def test_kill(make_server):
    srv = await oper_server(make_server)
    boss = await srv.client("boss")
    await become_oper(boss)
    victim = await srv.client("victim")
    peer = await srv.client("peer")
    for c in (victim, peer):
        await c.send("JOIN #k")
        await c.expect("366")
    await peer.ping_pong()

    await boss.send("KILL victim :spamming")
    kill = await victim.expect("KILL")
    assert kill.source.startswith("boss!") and kill.params == ["victim", "spamming"]
    err = await victim.expect("ERROR")
    assert "Killed (boss (spamming))" in err.params[0]
    quit_ = await peer.expect("QUIT")
    assert quit_.source.startswith("victim!")
    assert quit_.params == ["Killed (boss (spamming))"]
    assert srv.state.find_user("victim") is None

    await boss.send("KILL nobody :x")
    await boss.expect("401", "boss", "nobody")
    await boss.send("KILL test.server :x")
    err = await boss.expect("483", skip=False)
    assert err.params[0] == "boss"
    await boss.send("KILL")
    await boss.expect("461", "boss", "KILL")
    await boss.send("KILL peer")                  # no reason: a default one
    err = await peer.expect("ERROR")
    assert "Killed (boss (" in err.params[0]


async def test_wallops_reach_plus_w_only(make_server):
    srv = await oper_server(make_server)
    boss = await srv.client("boss")
    await become_oper(boss)
    listener = await srv.client("listener")
    await listener.send("MODE listener +w")
    await listener.expect("MODE")
    deaf = await srv.client("deaf")
    await boss.send("WALLOPS :maintenance at noon")
    await boss.ping_pong()
    got = await listener.ping_pong()
    assert [(m.source, m.command, m.params) for m in got] == [
        ("boss!~boss@127.0.0.1", "WALLOPS", ["maintenance at noon"])]
    assert await deaf.ping_pong() == []
    assert await boss.ping_pong() == []           # the oper is not +w
    await boss.send("WALLOPS :")
    await boss.expect("461", "boss", "WALLOPS")


async def test_rehash_applies_new_config_and_keeps_old_on_error(make_server):
    srv = await oper_server(make_server)
    boss = await srv.client("boss")
    await become_oper(boss)
    bystander = await srv.client("bystander")
    original = srv.path.read_text()

    srv.path.write_text(original.replace("[server]\n", '[server]\nmotd = "Fresh MOTD line"\n')
                        .replace("[limits]\n", "[limits]\nawaylen = 5\n"))
    await boss.send("REHASH")
    reply = await boss.expect("382", skip=False)
    assert reply.params == ["boss", "ircd.toml", "Rehashing"]
    note = await boss.expect("NOTICE", skip=False)
    assert note.params[1].startswith("*** Rehash complete")
    assert srv.state.config.limits.awaylen == 5
    newcomer = await srv.client()
    welcome = await newcomer.register("newcomer")
    assert any(m.command == "372" and "Fresh MOTD line" in m.params[1] for m in welcome)
    await bystander.send("AWAY :much longer than five")
    await bystander.expect("306")
    assert srv.state.find_user("bystander").away == "much "
    await bystander.ping_pong()                   # still connected
    assert boss.lines == [] and srv.state.find_user("boss").is_oper

    srv.path.write_text(original.replace("[limits]\n", "[limits]\nawaylen = -3\n"))
    await boss.send("REHASH")
    await boss.expect("382")
    notes = await boss.ping_pong()
    text = " ".join(m.params[1] for m in notes if m.command == "NOTICE")
    assert "Rehash failed" in text and "awaylen" in text, text
    assert srv.state.config.limits.awaylen == 5   # the running config is kept
    await bystander.ping_pong()

    srv.path.write_text("[server\nthis is not toml")
    await boss.send("REHASH")
    await boss.expect("382")
    notes = await boss.ping_pong()
    text = " ".join(m.params[1] for m in notes if m.command == "NOTICE")
    assert "Rehash failed" in text and "TOML" in text, text
    assert srv.state.config.limits.awaylen == 5
    late = await srv.client("late")             # the server still serves new clients
    await late.ping_pong()


async def test_die_and_restart_refused_by_default(make_server):
    srv = await oper_server(make_server)
    boss = await srv.client("boss")
    await become_oper(boss)
    await boss.send("DIE")
    err = await boss.expect("481", skip=False)
    assert "DIE" in err.params[1] and "allow_die" in err.params[1]
    await boss.send("RESTART")
    err = await boss.expect("481", skip=False)
    assert "RESTART" in err.params[1] and "allow_restart" in err.params[1]
    await boss.ping_pong()
    assert not srv.app._stop.is_set()


async def test_die_allowed(make_server):
    srv = await oper_server(make_server, server={"allow_die": True})
    boss = await srv.client("boss")
    await become_oper(boss)
    other = await srv.client("other")
    await boss.send("RESTART")                    # only DIE is allowed
    await boss.expect("481")
    await boss.send("DIE")
    for c in (boss, other):
        err = await c.expect("ERROR")
        assert "DIE by boss" in err.params[0]
    assert srv.app.restart is False
    with trio.fail_after(5):
        while srv.state.connections:
            await trio.sleep(0.01)
    try:
        await IRCClient.connect(srv.port)
    except OSError:
        pass
    else:
        raise AssertionError("still listening after DIE")


async def test_restart_allowed(make_server):
    srv = await oper_server(make_server, server={"allow_restart": True})
    boss = await srv.client("boss")
    await become_oper(boss)
    await boss.send("RESTART")
    err = await boss.expect("ERROR")
    assert "RESTART by boss" in err.params[0]
    assert srv.app.restart is True


async def test_chghost(make_server):
    srv = await oper_server(make_server)
    boss = await srv.client("boss")
    await become_oper(boss)
    target = await srv.client("target", caps=["chghost"])
    peer = await srv.client("peer", caps=["chghost"])
    old = await srv.client("oldpeer")
    for c in (target, peer, old):
        await c.send("JOIN #h")
        await c.expect("366")
    for c in (target, peer, old):
        await c.ping_pong()

    await boss.send("CHGHOST target newid vhost.example")
    note = await boss.expect("NOTICE")
    assert "target" in note.params[1] and "newid@vhost.example" in note.params[1]
    own = await target.expect("CHGHOST")
    assert own.source == "target!~target@127.0.0.1" and own.params == ["newid", "vhost.example"]
    visible = await target.expect("396")
    assert visible.params[1] == "vhost.example"
    seen = await peer.expect("CHGHOST")
    assert seen.params == ["newid", "vhost.example"]
    # without the capability: the chghost fallback, QUIT and JOIN with the new mask, and
    # the channel status target had (it created #h) given back
    fallback = await old.ping_pong()
    assert [(m.command, m.source) for m in fallback] == [
        ("QUIT", "target!~target@127.0.0.1"), ("JOIN", "target!newid@vhost.example"),
        ("MODE", "test.server")]
    assert fallback[2].params == ["#h", "+o", "target"]
    assert srv.state.find_user("target").source == "target!newid@vhost.example"

    await boss.send("CHGHOST nobody a b.c")
    await boss.expect("401", "boss", "nobody")
    await boss.send("CHGHOST target bad!id b.c")
    fail = await boss.expect("FAIL", skip=False)
    assert fail.params[:2] == ["CHGHOST", "INVALID_USERNAME"]
    await boss.send("CHGHOST target id bad@host")
    fail = await boss.expect("FAIL", skip=False)
    assert fail.params[:2] == ["CHGHOST", "INVALID_HOSTNAME"]
    await boss.send("CHGHOST target id")
    await boss.expect("461", "boss", "CHGHOST")


# -- the real process -----------------------------------------------------------------------

async def _connect_when_up(port, proc, seconds=20.0):
    with trio.fail_after(seconds):
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                return await IRCClient.connect(port)
            except OSError:
                await trio.sleep(0.05)


async def test_cli_sighup_reloads_and_sigterm_stops_cleanly(tmp_path):
    path, port, _ = write_config(tmp_path, tls=False,
                                 server={"motd": "first motd"})
    log = open(tmp_path / "stderr.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "ircd", "run", "--config", str(path)],
                            stdout=subprocess.DEVNULL, stderr=log, cwd=tmp_path)
    try:
        client = await _connect_when_up(port, proc)
        welcome = await client.register("stayer")
        assert any("first motd" in m.params[-1] for m in welcome if m.command == "372")

        path.write_text(path.read_text().replace("first motd", "second motd"))
        proc.send_signal(signal.SIGHUP)
        with trio.fail_after(10):
            while True:
                probe = await IRCClient.connect(port)
                msgs = await probe.register("probe")
                await probe.send("QUIT")
                await probe.close()
                if any("second motd" in m.params[-1] for m in msgs if m.command == "372"):
                    break
                await trio.sleep(0.1)
        await client.ping_pong()                  # the old connection survived the reload

        proc.send_signal(signal.SIGTERM)
        err = await client.expect("ERROR", timeout=10)
        assert "SIGTERM" in err.params[0]
        code = await trio.to_thread.run_sync(proc.wait, 10)
        assert code == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    text = (tmp_path / "stderr.log").read_text()
    assert "reload" in text.lower(), text


async def test_cli_restart_reexecutes_the_process(tmp_path):
    path, port, _ = write_config(tmp_path, tls=False, server={"allow_restart": True},
                                 extra=OPERS)
    log = open(tmp_path / "stderr.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "ircd", "run", "--config", str(path)],
                            stdout=subprocess.DEVNULL, stderr=log, cwd=tmp_path)
    try:
        boss = await _connect_when_up(port, proc)
        await boss.register("boss")
        await become_oper(boss)
        await boss.send("RESTART")
        err = await boss.expect("ERROR", timeout=10)
        assert "RESTART by boss" in err.params[0]
        with trio.fail_after(20):     # the same process (execv) serves again
            while True:
                assert proc.poll() is None
                try:
                    again = await IRCClient.connect(port)
                    await again.register("again")
                    break
                except (OSError, trio.BrokenResourceError, EOFError):
                    await trio.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert await trio.to_thread.run_sync(proc.wait, 10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    assert "restarting" in (tmp_path / "stderr.log").read_text()


async def test_oper_password_hash_runs_off_the_event_loop(make_server):
    """OPER's scrypt check runs in a worker thread: the server keeps serving others
    meanwhile, the oper's own later commands still come after the reply, and under
    labeled-response the reply keeps its label while unrelated traffic does not."""
    srv = await oper_server(make_server)
    boss = await srv.client("boss", caps=["labeled-response", "batch", "message-tags"])
    friend = await srv.client("friend")
    seen_by_friend = []

    async def chatter():
        for i in range(20):
            await friend.send(f"PRIVMSG boss :ping {i}")
            seen_by_friend.append((await friend.ping_pong(f"t{i}")) == [])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(chatter)
        await boss.send(f"@label=op1 OPER admin :{PASSWORD}", "PING after")
        lines = await boss.collect_until("PONG")
    assert all(seen_by_friend)                       # friend was answered throughout
    batch_refs = {m.params[0][1:] for m in lines if m.command == "BATCH" and m.params[0][0] == "+"}
    labelled = [m for m in lines if m.tags.get("label") == "op1" or m.tags.get("batch") in batch_refs]
    commands = [m.command for m in labelled if m.command != "BATCH"]
    assert commands == ["381", "MODE"]
    assert all("batch" not in m.tags and "label" not in m.tags
               for m in lines if m.command == "PRIVMSG")     # chatter is never in the batch
    assert lines[-1].command == "PONG" and lines[-1].params[1] == "after"   # order kept
    assert srv.state.find_user("boss").is_oper


async def test_wrong_oper_password_checked_in_a_thread_too(make_server):
    srv = await oper_server(make_server)
    c = await srv.client("guesser", caps=["labeled-response", "batch", "message-tags"])
    await c.send("@label=g1 OPER admin :wrong", "PING next")
    fail = await c.expect("464")
    assert fail.tags.get("label") == "g1"
    assert (await c.expect("PONG")).params[1] == "next"
    assert not srv.state.find_user("guesser").is_oper
