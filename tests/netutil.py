"""Test support for linked servers: several real servers on 127.0.0.1, linked by TLS."""

from __future__ import annotations

from pathlib import Path

import trio

from ircd.app import App
from ircd.config import load_config
from ircd.tlsutil import certificate_fingerprint, ensure_certificate

from irctest import RunningServer, free_port, wait_listening, write_config


class Node:
    """One planned server: its name, directory, ports and certificate fingerprint."""

    def __init__(self, base: Path, index: int):
        self.index = index
        self.name = f"s{index}.test"
        self.sid = f"{index}AA"
        self.dir = base / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.link_port = free_port()
        cert, _ = ensure_certificate(self.dir / "data", self.name, ("127.0.0.1",))
        self.fingerprint = certificate_fingerprint(cert)


def link_blocks(node: Node, peers, connect_to, autoconnect: bool = True) -> str:
    text = f'[[listen]]\nhost = "127.0.0.1"\nport = {node.link_port}\nlink = true\n'
    for peer in peers:
        text += (f'\n[[link]]\nname = "{peer.name}"\nhost = "127.0.0.1"\nport = {peer.link_port}\n'
                 f'fingerprint = "{peer.fingerprint}"\n'
                 f'autoconnect = {str(autoconnect and peer in connect_to).lower()}\n')
    return text


async def start_network(nursery, base: Path, edges, count: int, limits=None,
                        extra: str = "", autoconnect: bool = True) -> list[RunningServer]:
    """Start `count` servers linked along `edges` ((i, j): server i connects to j). With
    autoconnect False the links are made once (CONNECT) and not remade when cut."""
    nodes = [Node(base, i + 1) for i in range(count)]
    servers = []
    for node in nodes:
        peers = [nodes[j] for i, j in edges if i == node.index - 1] + \
                [nodes[i] for i, j in edges if j == node.index - 1]
        connect_to = [nodes[j] for i, j in edges if i == node.index - 1]
        lim = {"flood_control": False, "link_ping_interval": 30.0}
        lim.update(limits or {})
        path, port, tls_port = write_config(
            node.dir, server={"name": node.name, "sid": node.sid}, limits=lim,
            extra=link_blocks(node, peers, connect_to, autoconnect) + extra)
        app = App(load_config(path))
        nursery.start_soon(app.main)
        with trio.fail_after(10):
            await app.ready.wait()
        await wait_listening(port)
        servers.append(RunningServer(app, path, port, tls_port))
    if not autoconnect:
        for i, j in edges:
            servers[i].app.linker.connect_soon(nodes[j].name)
            await wait_linked(servers[: max(i, j) + 1], max(i, j) + 1)
    await wait_linked(servers, count)
    return servers


async def wait_linked(servers, count: int, timeout: float = 10.0) -> None:
    """Until every server sees `count` servers and every burst is complete."""
    with trio.fail_after(timeout):
        while not all(len(s.state.registry.servers) == count
                      and all(l.burst_done for l in s.state.linking.links)
                      for s in servers):
            await trio.sleep(0.02)


async def until(condition, timeout: float = 5.0, what: str = "the network to settle") -> None:
    """Wait for something to have crossed the links (a condition on servers' state)."""
    try:
        with trio.fail_after(timeout):
            while not condition():
                await trio.sleep(0.01)
    except trio.TooSlowError:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}") from None
