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
