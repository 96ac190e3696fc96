"""Operator commands: OPER, KILL, WALLOPS, REHASH, DIE/RESTART, CHGHOST, and the real
process reloading on SIGHUP and stopping cleanly on SIGTERM."""

import signal
import subprocess
import sys

import trio

from irctest import IRCClient, server_env, show, shown, write_config
from ircd.commands import oper as oper_commands
from ircd.passwords import hash_password

S = ":test.server"
NOT_OPER = f"{S} 481 %s :Permission Denied- You're not an IRC operator"
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
    nick = client.nick
    assert show(await client.expect("381")) == f"{S} 381 {nick} :You are now an IRC operator"
    mode = await client.expect("MODE", client.nick, "+o", skip=False)
    assert show(mode) == f":{nick}!~{nick[:8]}@127.0.0.1 MODE {nick} +o"


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
    assert shown(await c.ping_pong()) == [f"{S} 221 boss +o"]

    async def opers_counted(client):
        await client.send("LUSERS")
        counted = [m for m in await client.ping_pong() if m.command == "252"]
        assert len(counted) == 1 and counted[0].params[2] == "operator(s) online"
        return counted[0].params[1]

    assert await opers_counted(c) == "1"
    # OPER again: still one operator, no second MODE line
    await c.send(f"OPER admin :{PASSWORD}")
    assert shown(await c.ping_pong()) == [f"{S} 381 boss :You are now an IRC operator"]
    assert await opers_counted(c) == "1"
    # -o gives it up
    await c.send("MODE boss -o")
    assert shown(await c.ping_pong()) == [":boss!~boss@127.0.0.1 MODE boss -o"]
    assert not user.is_oper and user.oper_name is None
    assert await opers_counted(c) == "0"
    # an operator who quits is no longer counted
    await become_oper(c)
    await c.send("QUIT")
    assert show(await c.expect("ERROR")) == "ERROR :Closing Link: 127.0.0.1 (Client Quit)"
    other = await srv.client("counter")
    assert await opers_counted(other) == "0"


async def test_oper_wrong_password_unknown_name_and_host_mismatch(make_server):
    srv = await oper_server(make_server)
    wrong = await srv.client("wrong")
    await wrong.send("OPER admin :not it")
    err = await wrong.expect("464", skip=False)
    assert err.params == ["wrong", "Password incorrect"]
    # a failed attempt makes the next one wait, whatever it is
    await wrong.send(f"OPER admin :{PASSWORD}")
    wait = await wrong.expect("263", skip=False)
    assert show(wait) == f"{S} 263 wrong OPER :Please wait a while and try again."

    unknown = await srv.client("unknown")
    await unknown.send(f"OPER nobody :{PASSWORD}")
    assert show(await unknown.expect("491", skip=False)) == f"{S} 491 unknown :No O-lines for your host"

    elsewhere = await srv.client("elsewhere")
    await elsewhere.send(f"OPER faraway :{PASSWORD}")
    err = await elsewhere.expect("491", skip=False)
    assert err.params == ["elsewhere", "No O-lines for your host"]

    missing = await srv.client("missing")
    await missing.send("OPER admin")
    assert shown(await missing.ping_pong()) == [f"{S} 461 missing OPER :Not enough parameters"]

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
    assert show(await c.expect("464")) == f"{S} 464 retry :Password incorrect"
    await trio.sleep(0.15)
    await become_oper(c)


async def test_mode_cannot_grant_o(server):
    c = await server.client("sneaky")
    await c.send("MODE sneaky +o")
    assert await c.ping_pong() == []             # silently ignored
    assert not server.state.find_user("sneaky").is_oper


async def test_oper_commands_need_privileges(make_server):
    srv = await oper_server(make_server, server={"allow_die": True, "allow_restart": True})
    c = await srv.client("pleb")
    victim = await srv.client("victim")  # noqa: F841 (kept open)
    for line in ("KILL victim :bye", "REHASH", "WALLOPS :hi", "DIE", "RESTART",
                 "CHGHOST victim a b.c"):
        await c.send(line)
        assert shown(await c.ping_pong()) == [NOT_OPER % "pleb"], line
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
    await victim.ping_pong()

    await boss.send("KILL victim :spamming")
    assert show(await victim.next_message()) == ":boss!~boss@127.0.0.1 KILL victim spamming"
    assert show(await victim.next_message()) == \
        "ERROR :Closing Link: 127.0.0.1 (Killed (boss (spamming)))"
    assert shown(await peer.ping_pong()) == [":victim!~victim@127.0.0.1 QUIT :Killed (boss (spamming))"]
    assert srv.state.find_user("victim") is None
    assert await boss.ping_pong() == []

    await boss.send("KILL nobody :x", "KILL test.server :x", "KILL")
    assert shown(await boss.ping_pong()) == [f"{S} 401 boss nobody :No such nick/channel",
                                             f"{S} 483 boss :You can't kill a server!",
                                             f"{S} 461 boss KILL :Not enough parameters"]
    await boss.send("KILL peer")                  # no reason: a default one
    assert show(await peer.next_message()) == ":boss!~boss@127.0.0.1 KILL peer :No reason given"
    assert show(await peer.next_message()) == \
        "ERROR :Closing Link: 127.0.0.1 (Killed (boss (No reason given)))"


async def test_wallops_reach_plus_w_only(make_server):
    srv = await oper_server(make_server)
    boss = await srv.client("boss")
    await become_oper(boss)
    listener = await srv.client("listener")
    await listener.send("MODE listener +w")
    assert show(await listener.expect("MODE")) == ":listener!~listener@127.0.0.1 MODE listener +w"
    deaf = await srv.client("deaf")
    await boss.send("WALLOPS :maintenance at noon")
    await boss.ping_pong()
    got = await listener.ping_pong()
    assert [(m.source, m.command, m.params) for m in got] == [
        ("boss!~boss@127.0.0.1", "WALLOPS", ["maintenance at noon"])]
    assert await deaf.ping_pong() == []
    assert await boss.ping_pong() == []           # the oper is not +w
    await boss.send("WALLOPS :")
    assert shown(await boss.ping_pong()) == [f"{S} 461 boss WALLOPS :Not enough parameters"]
    assert await listener.ping_pong() == []


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
    assert show(reply) == f"{S} 382 boss ircd.toml Rehashing"
    note = await boss.expect("NOTICE", skip=False)
    assert show(note) == f"{S} NOTICE boss :*** Rehash complete: reloaded {srv.path}"
    assert srv.state.config.limits.awaylen == 5
    newcomer = await srv.client()
    welcome = await newcomer.register("newcomer")
    assert shown(m for m in welcome if m.command in ("375", "372", "376")) == [
        f"{S} 375 newcomer :- test.server Message of the day - ",
        f"{S} 372 newcomer :- Fresh MOTD line",
        f"{S} 376 newcomer :End of /MOTD command."]
    await bystander.send("AWAY :much longer than five")
    assert show(await bystander.expect("306")) == f"{S} 306 bystander :You have been marked as being away"
    assert srv.state.find_user("bystander").away == "much "
    await bystander.ping_pong()                   # still connected
    assert boss.lines == [] and srv.state.find_user("boss").is_oper

    srv.path.write_text(original.replace("[limits]\n", "[limits]\nawaylen = -3\n"))
    await boss.send("REHASH")
    assert shown(await boss.ping_pong()) == [
        f"{S} 382 boss ircd.toml Rehashing",
        f"{S} NOTICE boss :*** Rehash failed, the running configuration is unchanged: "
        f"{srv.path}: [limits] awaylen: must be an integer 1-480, got integer -3"]
    assert srv.state.config.limits.awaylen == 5   # the running config is kept
    await bystander.ping_pong()

    srv.path.write_text("[server\nthis is not toml")
    await boss.send("REHASH")
    reply, note = await boss.ping_pong()
    assert show(reply) == f"{S} 382 boss ircd.toml Rehashing"
    assert (note.source, note.command, note.params[0]) == ("test.server", "NOTICE", "boss")
    assert note.params[1].startswith("*** Rehash failed, the running configuration is unchanged: "
                                     f"{srv.path}: line 1: TOML syntax error: ")
    assert srv.state.config.limits.awaylen == 5
    late = await srv.client("late")             # the server still serves new clients
    await late.ping_pong()


async def test_die_and_restart_refused_by_default(make_server):
    srv = await oper_server(make_server)
    boss = await srv.client("boss")
    await become_oper(boss)
    await boss.send("DIE", "RESTART")
    assert shown(await boss.ping_pong()) == [
        f"{S} 481 boss :Permission Denied- DIE is disabled on this server ([server] allow_die = false)",
        f"{S} 481 boss :Permission Denied- RESTART is disabled on this server "
        "([server] allow_restart = false)"]
    assert not srv.app._stop.is_set()


async def test_die_allowed(make_server):
    srv = await oper_server(make_server, server={"allow_die": True})
    boss = await srv.client("boss")
    await become_oper(boss)
    other = await srv.client("other")
    await boss.send("RESTART")                    # only DIE is allowed
    assert shown(await boss.ping_pong()) == [
        f"{S} 481 boss :Permission Denied- RESTART is disabled on this server "
        "([server] allow_restart = false)"]
    await boss.send("DIE")
    for c in (boss, other):
        assert show(await c.next_message()) == \
            "ERROR :Closing Link: 127.0.0.1 (Server shutting down (DIE by boss))"
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
    err = await boss.next_message()
    assert show(err) == "ERROR :Closing Link: 127.0.0.1 (Server restarting (RESTART by boss))"
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
    assert shown(await boss.ping_pong()) == [
        f"{S} NOTICE boss :*** Changed the host of target to newid@vhost.example"]
    change = ":target!~target@127.0.0.1 CHGHOST newid vhost.example"
    assert shown(await target.ping_pong()) == [
        change, f"{S} 396 target vhost.example :is now your displayed host"]
    assert shown(await peer.ping_pong()) == [change]
    # without the capability: the chghost fallback, QUIT and JOIN with the new mask, and
    # the channel status target had (it created #h) given back
    assert shown(await old.ping_pong()) == [":target!~target@127.0.0.1 QUIT :Changing host",
                                            ":target!newid@vhost.example JOIN #h",
                                            f"{S} MODE #h +o target"]
    assert srv.state.find_user("target").source == "target!newid@vhost.example"

    await boss.send("CHGHOST nobody a b.c", "CHGHOST target bad!id b.c",
                    "CHGHOST target id bad@host", "CHGHOST target id")
    assert shown(await boss.ping_pong()) == [
        f"{S} 401 boss nobody :No such nick/channel",
        f"{S} FAIL CHGHOST INVALID_USERNAME bad!id :Invalid username: 1 to 10 letters, digits or "
        "-._[]{}\\|^`~",
        f"{S} FAIL CHGHOST INVALID_HOSTNAME bad@host :Invalid hostname: 1 to 63 letters, digits or -._:/",
        f"{S} 461 boss CHGHOST :Not enough parameters"]
    assert srv.state.find_user("target").source == "target!newid@vhost.example"
    assert await target.ping_pong() == [] and await old.ping_pong() == []


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
                            stdout=subprocess.DEVNULL, stderr=log, cwd=tmp_path, env=server_env())
    try:
        client = await _connect_when_up(port, proc)
        welcome = await client.register("stayer")
        assert shown(m for m in welcome if m.command == "372") == [f"{S} 372 stayer :- first motd"]

        path.write_text(path.read_text().replace("first motd", "second motd"))
        proc.send_signal(signal.SIGHUP)
        with trio.fail_after(10):
            while True:
                probe = await IRCClient.connect(port)
                msgs = await probe.register("probe")
                await probe.send("QUIT")
                await probe.close()
                motd = shown(m for m in msgs if m.command == "372")
                if motd == [f"{S} 372 probe :- second motd"]:
                    break
                assert motd == [f"{S} 372 probe :- first motd"], motd
                await trio.sleep(0.1)
        await client.ping_pong()                  # the old connection survived the reload

        proc.send_signal(signal.SIGTERM)
        err = await client.expect("ERROR", timeout=10)
        assert show(err) == "ERROR :Closing Link: 127.0.0.1 (Server shutting down (SIGTERM))"
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
                            stdout=subprocess.DEVNULL, stderr=log, cwd=tmp_path, env=server_env())
    try:
        boss = await _connect_when_up(port, proc)
        await boss.register("boss")
        await become_oper(boss)
        await boss.send("RESTART")
        err = await boss.expect("ERROR", timeout=10)
        assert show(err) == "ERROR :Closing Link: 127.0.0.1 (Server restarting (RESTART by boss))"
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
    assert len(batch_refs) == 1
    ref, = batch_refs
    labelled = [m for m in lines if m.command == "BATCH" or m.tags.get("label") == "op1"
                or m.tags.get("batch") in batch_refs]
    assert shown(labelled) == [f"@label=op1 {S} BATCH +{ref} labeled-response",
                               f"@batch={ref} {S} 381 boss :You are now an IRC operator",
                               f"@batch={ref} :boss!~boss@127.0.0.1 MODE boss +o",
                               f"{S} BATCH -{ref}"]
    assert all(m.command in ("PRIVMSG", "PONG") for m in lines if m not in labelled)
    assert all("batch" not in m.tags and "label" not in m.tags
               for m in lines if m.command == "PRIVMSG")     # chatter is never in the batch
    assert lines[-1].command == "PONG" and lines[-1].params[1] == "after"   # order kept
    assert srv.state.find_user("boss").is_oper


async def test_wrong_oper_password_checked_in_a_thread_too(make_server):
    srv = await oper_server(make_server)
    c = await srv.client("guesser", caps=["labeled-response", "batch", "message-tags"])
    await c.send("@label=g1 OPER admin :wrong", "PING next")
    assert show(await c.next_message()) == f"@label=g1 {S} 464 guesser :Password incorrect"
    assert show(await c.next_message()) == f"{S} PONG test.server next"
    assert not srv.state.find_user("guesser").is_oper
