"""Linked server processes, as an operator runs them: three `ircd run` processes in a
chain started by tools/ircnet.py, clients on both ends, and the middle one killed with
SIGKILL and started again."""

from __future__ import annotations

import importlib.util
import signal
from pathlib import Path

import trio

from irctest import IRCClient, assert_log_clean

TOOLS = Path(__file__).resolve().parent.parent / "tools"
spec = importlib.util.spec_from_file_location("ircnet", TOOLS / "ircnet.py")
ircnet = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ircnet)


async def connect(server, nick: str) -> IRCClient:
    c = await IRCClient.connect(server.port)
    await c.register(nick, caps=["batch"])
    return c


async def until_heard(sender, receiver, target: str, text: str, timeout: float = 20) -> None:
    """Say `text` to `target` every half second until `receiver` hears it (a link may
    still be forming); every attempt carries its own number."""
    with trio.fail_after(timeout):
        n = 0
        while True:
            n += 1
            await sender.send(f"PRIVMSG {target} :{text} #{n}")
            with trio.move_on_after(0.5):
                while True:
                    msg = await receiver.next_message()
                    if msg.command == "PRIVMSG" and msg.params[-1].startswith(text):
                        return


async def test_three_processes_survive_a_killed_middle_and_re_form(tmp_path):
    servers = ircnet.plan(3, "chain", tmp_path)
    ircnet.write(servers)
    s1, s2, s3 = servers
    try:
        for s in servers:
            ircnet.start(s)
        for s in servers:
            await trio.to_thread.run_sync(ircnet.wait_listening, s)
        left, left2 = await connect(s1, "left"), await connect(s1, "left2")
        right, right2 = await connect(s3, "right"), await connect(s3, "right2")
        for c in (left, left2, right, right2):
            await c.send("JOIN #proc")
            await c.expect("366")
        await until_heard(left, right, "#proc", "end to end")
        await until_heard(right, left, "#proc", "and back")

        s2.proc.kill()                               # SIGKILL: no goodbye on its links
        s2.proc.wait()
        quit = await left.expect("QUIT", timeout=120)
        assert quit.params == [f"{s1.name} {s2.name}"]
        assert (await right.expect("QUIT", timeout=120)).params == [f"{s3.name} {s2.name}"]
        # both sides keep chatting among themselves
        await until_heard(left, left2, "#proc", "left side alone")
        await until_heard(right, right2, "#proc", "right side alone")

        ircnet.start(s2)                             # empty, as after a crash
        await trio.to_thread.run_sync(ircnet.wait_listening, s2)
        await until_heard(left, right, "#proc", "healed", timeout=60)
        await until_heard(right, left, "#proc", "healed back", timeout=30)
        await left.send("LUSERS")
        assert (await left.expect("251")).params[-1] == \
            "There are 4 users and 0 invisible on 3 servers"
    finally:
        for s in servers:
            ircnet.stop(s)
    for s in servers:
        assert_log_clean(s.dir / "ircd.log")


async def test_the_example_network_in_conf_runs_as_it_is(tmp_path):
    """conf/network/{a,b,c}.toml: three processes that link into a chain by themselves."""
    import shutil
    import subprocess
    import sys
    from irctest import server_env
    example = tmp_path / "network"
    shutil.copytree(Path(__file__).resolve().parent.parent / "conf" / "network", example)
    procs = []
    try:
        for n in "abc":
            log = open(tmp_path / f"{n}.log", "wb")
            procs.append(subprocess.Popen([sys.executable, "-m", "ircd", "run", "--config",
                                           str(example / f"{n}.toml")], stdout=log,
                                          stderr=subprocess.STDOUT, env=server_env()))
        for port in (6671, 6672, 6673):
            with trio.fail_after(20):
                while True:
                    try:
                        c = await IRCClient.connect(port)
                        break
                    except OSError:
                        await trio.sleep(0.1)
            await c.close()
        watcher = await IRCClient.connect(6671)
        await watcher.register("watcher")
        with trio.fail_after(30):
            while True:
                await watcher.send("LINKS")
                links = [m for m in await watcher.collect_until("365") if m.command == "364"]
                if len(links) == 3:
                    break
                await trio.sleep(0.2)
        assert sorted(m.params[1] for m in links) == ["a.example.net", "b.example.net",
                                                      "c.example.net"]
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            assert p.wait(10) == 0
    for n in "abc":
        assert_log_clean(tmp_path / f"{n}.log")


async def test_five_servers_with_middle_ones_killed_at_random_lose_nothing(tmp_path):
    """A chain of five processes; two clients at each end chat without pause while
    middle servers are killed with SIGKILL and restarted empty, three times. After the
    last heal every client has every other client's messages, each exactly once."""
    import random
    rnd = random.Random(5)
    servers = ircnet.plan(5, "chain", tmp_path)
    ircnet.write(servers, limits={"link_retry_max": 1.5})
    try:
        for s in servers:
            ircnet.start(s)
        for s in servers:
            await trio.to_thread.run_sync(ircnet.wait_listening, s)
        ends = [(servers[0], "l1"), (servers[0], "l2"), (servers[4], "r1"), (servers[4], "r2")]
        clients = {}
        for s, nick in ends:
            clients[nick] = await connect(s, nick)
            await clients[nick].send("JOIN #chaos")
            await clients[nick].expect("366")
        # the network is whole when an end sees the other end's users join
        await until_heard(clients["l1"], clients["r1"], "#chaos", "warm up")
        await until_heard(clients["r1"], clients["l1"], "#chaos", "warm up back")
        got: dict = {nick: [] for nick in clients}
        sent: dict = {nick: 0 for nick in clients}
        stop = trio.Event()

        async def talk(nick):
            c = clients[nick]
            while not stop.is_set():
                sent[nick] += 1
                await c.send(f"PRIVMSG #chaos :{nick} says {sent[nick]}")
                await trio.sleep(0.05)

        async def listen(nick):
            c = clients[nick]
            while True:
                msg = await c.next_message(timeout=600)
                if msg.command == "PRIVMSG" and " says " in msg.params[-1]:
                    got[nick].append(msg.params[-1])

        async with trio.open_nursery() as nursery:
            for nick in clients:
                nursery.start_soon(listen, nick)
                nursery.start_soon(talk, nick)
            for _ in range(3):
                await trio.sleep(rnd.uniform(0.5, 1.5))
                victim = servers[rnd.randrange(1, 4)]
                victim.proc.kill()
                victim.proc.wait()
                await trio.sleep(rnd.uniform(0.5, 1.5))
                ircnet.start(victim)
                await trio.to_thread.run_sync(ircnet.wait_listening, victim)
            await trio.sleep(1.0)
            stop.set()
            # wait for the last heal to deliver everything: until every count is complete
            expected = {nick: {f"{other} says {n}" for other in clients if other != nick
                               for n in range(1, sent[other] + 1)} for nick in clients}
            with trio.move_on_after(60):
                while any(set(got[n]) != expected[n] for n in clients):
                    await trio.sleep(0.2)
            await trio.sleep(0.5)                 # anything doubled would have arrived by now
            nursery.cancel_scope.cancel()
        for nick in clients:
            missing = sorted(expected[nick] - set(got[nick]))
            doubled = sorted({m for m in got[nick] if got[nick].count(m) > 1})
            assert not missing, f"{nick} never got {len(missing)} messages, e.g. {missing[:5]}"
            assert not doubled, f"{nick} got {len(doubled)} messages twice, e.g. {doubled[:5]}"
        assert all(sent[n] > 20 for n in clients), sent
    finally:
        for s in servers:
            ircnet.stop(s)
    for s in servers:
        assert_log_clean(s.dir / "ircd.log")
