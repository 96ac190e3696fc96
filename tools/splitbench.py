#!/usr/bin/env python3
"""How fast a healed netsplit delivers what each side said: the replay benchmark.

    python3 tools/splitbench.py --split 60 --channels 10 --rate 10

Starts two linked servers (tools/ircnet.py), puts one sender and one listener per
channel on each side, drops the link (an operator's SQUIT: a clean netsplit, so no
resume), lets each sender say --rate messages per second in its channel for --split
seconds, then links again (CONNECT) and measures, on each side, how long after the link
came back the last replayed message arrived, and whether every message arrived exactly
once. Loopback only; the servers are stopped at the end. Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

TOOLS = Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("ircnet", TOOLS / "ircnet.py")
ircnet = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ircnet)

PASSWORD = "bench-oper"


class Client:
    def __init__(self, stream, nick):
        self.stream, self.nick, self.buf = stream, nick, b""

    @classmethod
    async def connect(cls, port, nick, caps="batch server-time message-tags"):
        c = cls(await trio.open_tcp_stream("127.0.0.1", port), nick)
        await c.send(f"CAP REQ :{caps}", f"NICK {nick}", f"USER {nick} 0 * :{nick}", "CAP END")
        await c.until(lambda cmd, line: cmd in ("376", "422"))
        return c

    async def send(self, *lines):
        await self.stream.send_all("".join(l + "\r\n" for l in lines).encode())

    async def lines(self):
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                yield line.decode(errors="replace").rstrip("\r")
            data = await self.stream.receive_some(65536)
            if not data:
                return
            self.buf += data

    async def until(self, pred):
        async for line in self.lines():
            words = line.split(" ")
            i = 1 if words[0].startswith("@") else 0
            cmd = words[i + 1] if words[i].startswith(":") and len(words) > i + 1 else words[i]
            if cmd == "PING":
                await self.send("PONG :x")
            if pred(cmd, line):
                return line


async def main(args) -> dict:
    base = Path(tempfile.mkdtemp(prefix="splitbench-"))
    servers = ircnet.plan(2, "chain", base)
    hashed = subprocess.run([sys.executable, "-m", "ircd", "mkpasswd"], input=PASSWORD,
                            capture_output=True, text=True, cwd=TOOLS.parent).stdout.split()[-1]
    oper = f'\n[[oper]]\nname = "bench"\npassword = "{hashed}"\nhosts = ["*@127.0.0.1"]\n'
    ircnet.write(servers, extra=oper, limits={"history_messages": 100000}, autoconnect=False)
    a, b = servers
    for s in servers:
        ircnet.start(s)
    try:
        for s in servers:
            ircnet.wait_listening(s)
        channels = [f"#bench{i}" for i in range(args.channels)]
        op = await Client.connect(b.port, "operator")
        await op.send(f"OPER bench {PASSWORD}")
        await op.until(lambda cmd, line: cmd == "381")
        await op.send(f"CONNECT {a.name}")
        await op.send("LUSERS")
        while "on 2 servers" not in await op.until(lambda cmd, line: cmd == "251"):
            await trio.sleep(0.2)
            await op.send("LUSERS")
        sides = {}
        for s, tag in ((a, "a"), (b, "b")):
            senders = [await Client.connect(s.port, f"{tag}s{i}") for i in range(args.channels)]
            listeners = [await Client.connect(s.port, f"{tag}l{i}") for i in range(args.channels)]
            for c, ch in zip(senders + listeners, channels + channels):
                await c.send(f"JOIN {ch}")
                await c.until(lambda cmd, line: cmd == "366")
            sides[tag] = (senders, listeners)
        await trio.sleep(1.0)                     # both sides see all members
        await op.send(f"SQUIT {a.name} :splitbench")
        await trio.sleep(1.0)
        per_sender = int(args.split * args.rate)
        results = {}

        async def speak(c, ch):
            for n in range(per_sender):
                await c.send(f"PRIVMSG {ch} :{c.nick} {n}")
                await trio.sleep(1 / args.rate)

        async with trio.open_nursery() as nursery:
            for tag in "ab":
                for c, ch in zip(sides[tag][0], channels):
                    nursery.start_soon(speak, c, ch)
        said_done = time.monotonic()
        counts: dict = {}
        last_arrival: dict = {}

        async def listen(tag, c, ch, expect_from):
            seen = counts.setdefault((tag, ch), {})

            def pred(cmd, line):
                if cmd == "PRIVMSG" and f"{expect_from} " in line:
                    text = line.rsplit(" :", 1)[-1]
                    seen[text] = seen.get(text, 0) + 1
                    last_arrival[tag] = time.monotonic()
                return len(seen) >= per_sender
            await c.until(pred)

        healed_at = time.monotonic()
        await op.send(f"CONNECT {a.name}")
        with trio.move_on_after(args.timeout):
            async with trio.open_nursery() as nursery:
                for tag, other in (("a", "b"), ("b", "a")):
                    for i, (c, ch) in enumerate(zip(sides[tag][1], channels)):
                        nursery.start_soon(listen, tag, c, ch, f"{other}s{i}")
        total = per_sender * args.channels
        for tag in "ab":
            got = sum(len(v) for (t, _), v in counts.items() if t == tag)
            doubled = sum(1 for (t, _), v in counts.items() if t == tag for n in v.values() if n > 1)
            results[tag] = {"expected": total, "received": got, "doubled": doubled,
                            "last_after_connect_s": round(last_arrival.get(tag, healed_at) - healed_at, 3)}
        return {"split_s": args.split, "channels": args.channels, "rate_per_channel": args.rate,
                "sides": results, "speaking_took_s": round(said_done - healed_at + args.split, 1)}
    finally:
        for s in servers:
            ircnet.stop(s)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--split", type=float, default=60.0, help="seconds the link is down")
    p.add_argument("--channels", type=int, default=10)
    p.add_argument("--rate", type=float, default=10.0, help="messages/s per channel per side")
    p.add_argument("--timeout", type=float, default=30.0)
    result = trio.run(main, p.parse_args())
    print(json.dumps(result))
