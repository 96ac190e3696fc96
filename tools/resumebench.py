#!/usr/bin/env python3
"""A link cut under load resumes with nothing lost: the resume benchmark.

    python3 tools/resumebench.py --messages 200000 --cuts 2

Two linked servers (tools/ircnet.py) whose link runs through a TCP proxy in this
process. A sender on s2 floods #load as fast as the servers take it; a receiver on s1
counts every message. While the flood runs the proxy drops the link's TCP connections
without a word (--cuts times); s2 reconnects by itself and the link resumes. At the end
the receiver must have every message exactly once and in order; the JSON line printed
last gives the rate carried, the lost, the doubled and what the servers logged.
Loopback only; everything started is stopped at the end.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import tempfile
import time
from pathlib import Path

import trio

TOOLS = Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("ircnet", TOOLS / "ircnet.py")
ircnet = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ircnet)


class Proxy:
    """Forwards TCP connections to `target`; cut() drops them all at once."""

    def __init__(self, target_port: int):
        self.target = target_port
        self.scopes: list[trio.CancelScope] = []
        self.port = None

    async def serve(self, task_status=trio.TASK_STATUS_IGNORED):
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, down):
        try:
            up = await trio.open_tcp_stream("127.0.0.1", self.target)
        except OSError:
            await down.aclose()
            return
        with trio.CancelScope() as scope:
            self.scopes.append(scope)
            async with trio.open_nursery() as n:
                n.start_soon(self._pump, down, up)
                n.start_soon(self._pump, up, down)
        for s in (down, up):
            s.socket.setsockopt(__import__("socket").SOL_SOCKET, __import__("socket").SO_LINGER,
                                b"\x01\x00\x00\x00\x00\x00\x00\x00")   # close with RST
            await trio.aclose_forcefully(s)

    async def _pump(self, src, dst):
        try:
            while data := await src.receive_some(65536):
                await dst.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    def cut(self) -> int:
        n = len(self.scopes)
        for scope in self.scopes:
            scope.cancel()
        self.scopes = []
        return n


async def client(port, nick):
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\nJOIN #load\r\n".encode())
    buf = b""
    while b" 366 " not in buf:
        buf += await stream.receive_some(65536)
    return stream


async def main(args) -> dict:
    base = Path(tempfile.mkdtemp(prefix="resumebench-"))
    s1, s2 = servers = ircnet.plan(2, "chain", base)
    ircnet.write(servers, limits={"link_resume_seconds": 60, "link_retry_max": 1.5})
    proxy = Proxy(s1.link_port)
    result: dict = {}
    async with trio.open_nursery() as nursery:
        await nursery.start(proxy.serve)
        text = s2.config.read_text().replace(f"port = {s1.link_port}\n", f"port = {proxy.port}\n")
        s2.config.write_text(text)
        for s in servers:
            ircnet.start(s)
        try:
            for s in servers:
                await trio.to_thread.run_sync(ircnet.wait_listening, s)
            receiver = await client(s1.port, "receiver")
            await trio.sleep(1.0)
            sender = await client(s2.port, "sender")
            await trio.sleep(1.0)
            got: list[int] = []
            done = trio.Event()

            async def receive():
                buf = b""
                pattern = re.compile(rb"PRIVMSG #load :m(\d+)\r\n")
                while len(got) < args.messages:
                    data = await receiver.receive_some(1 << 20)
                    if not data:
                        break
                    buf += data
                    cut = buf.rfind(b"\n") + 1
                    got.extend(int(m) for m in pattern.findall(buf[:cut]))
                    buf = buf[cut:]
                done.set()

            async def send():
                chunk = 500
                for start in range(0, args.messages, chunk):
                    await sender.send_all(b"".join(
                        b"PRIVMSG #load :m%d\r\n" % i
                        for i in range(start, min(start + chunk, args.messages))))

            cuts = []
            t0 = time.monotonic()
            nursery.start_soon(receive)
            nursery.start_soon(send)
            for _ in range(args.cuts):
                await trio.sleep(args.cut_every)
                cuts.append({"at_s": round(time.monotonic() - t0, 2), "received": len(got),
                             "connections_dropped": proxy.cut()})
            with trio.move_on_after(args.timeout):
                await done.wait()
            elapsed = time.monotonic() - t0
            seen = set(got)
            result = {
                "messages": args.messages, "received": len(got), "distinct": len(seen),
                "lost": args.messages - len(seen), "doubled": len(got) - len(seen),
                "in_order": got == sorted(got), "seconds": round(elapsed, 2),
                "carried_per_s": round(len(seen) / elapsed), "cuts": cuts,
                "resumed": sum((s.dir / "ircd.log").read_text().count("resumed after")
                               for s in servers),
                "netsplits_seen": sum((s.dir / "ircd.log").read_text().count(" lost: ")
                                      for s in servers),
            }
        finally:
            for s in servers:
                ircnet.stop(s)
            nursery.cancel_scope.cancel()
    return result


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=200_000)
    p.add_argument("--cuts", type=int, default=2)
    p.add_argument("--cut-every", type=float, default=1.0, help="seconds between cuts")
    p.add_argument("--timeout", type=float, default=120.0)
    print(json.dumps(trio.run(main, p.parse_args())))
