"""A linked server that misbehaves is cut off with a logged reason; the server survives.

The peer here is this test, speaking the link protocol with linkproto over a real TLS
connection, with a certificate the server pins."""

from __future__ import annotations

import logging
import os
import ssl

import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from linkproto import codec, events as ev, frames as fr
from linkproto.clock import Stamp
from linkproto.handshake import Handshake
from ircd.tlsutil import certificate_fingerprint, create_certificate, ensure_certificate
from netutil import until


class Peer:
    """A hand-driven linked server named evil.test (SID 9EV)."""

    def __init__(self, stream, handshake):
        self.stream = stream
        self.hs = handshake
        self.decoder = codec.Decoder()
        self.received: list = []

    async def send(self, *frames) -> None:
        await self.stream.send_all(b"".join(codec.encode(f) for f in frames))

    async def read_until(self, kind, timeout: float = 5.0):
        with trio.fail_after(timeout):
            while True:
                for f in self.received:
                    if type(f) is kind:
                        return f
                data = await self.stream.receive_some(65536)
                if not data:
                    raise EOFError(f"closed before {kind.__name__}; got {self.received}")
                self.received.extend(self.decoder.feed(data))


@pytest.fixture
async def linked_peer(make_server, tmp_path):
    cert_path, key_path = create_certificate(tmp_path / "evil", "evil.test")
    link_port = __import__("irctest").free_port()
    srv = await make_server(server={"sid": "1AA"}, extra=f'''
        [[listen]]
        host = "127.0.0.1"
        port = {link_port}
        link = true

        [[link]]
        name = "evil.test"
        host = "127.0.0.1"
        port = 1
        fingerprint = "{certificate_fingerprint(cert_path)}"
    ''')
    server_cert, _ = ensure_certificate(srv.path.parent / "data", "test.server")
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    der = x509.load_pem_x509_certificate(cert_path.read_bytes()).public_bytes(serialization.Encoding.DER)
    pins = {"test.server": certificate_fingerprint(server_cert)}.get
    hs = Handshake(fr.Hello(1, "evil.test", "9EV", "", (), os.urandom(16)), key, der, pins)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(cert_path, key_path)
    stream = trio.SSLStream(await trio.open_tcp_stream("127.0.0.1", link_port), ctx,
                            server_hostname="test.server")
    await stream.do_handshake()
    peer = Peer(stream, hs)
    await peer.send(hs.hello())
    hello = await peer.read_until(fr.Hello)
    await peer.send(*hs.receive(hello))               # our Proof
    proof = await peer.read_until(fr.Proof)
    assert hs.receive(proof) == [fr.Ready()]
    await peer.send(fr.Ready(), fr.Resume(b"", 0))
    await peer.read_until(fr.Ready)
    await peer.read_until(fr.Resume)
    await peer.read_until(fr.BurstEnd)
    await until(lambda: "9EV" in srv.state.registry.servers, what="the peer to be linked")
    return srv, peer


async def assert_dropped(srv, peer, caplog, reason: str) -> None:
    error = await peer.read_until(fr.Error)
    assert reason in error.reason
    await until(lambda: "9EV" not in srv.state.registry.servers, what="the netsplit")
    assert any(reason in r.getMessage() and "lost" in r.getMessage() for r in caplog.records)
    c = await srv.client("survivor")                 # the server carries on
    await c.send("LUSERS")
    assert (await c.expect("251")).params[-1] == "There are 1 users and 0 invisible on 1 servers"


async def test_a_user_from_the_wrong_direction_drops_the_link(linked_peer, caplog):
    caplog.set_level(logging.INFO)
    srv, peer = linked_peer
    s = Stamp(10**13, "9EV")
    await peer.send(ev.UserIntroduced(s, "1AA999999", "fake", s, "~f", "h", "", "r", 0))
    await assert_dropped(srv, peer, caplog, "UserIntroduced for 1AA999999, whose server is not "
                                            "behind this link")


async def test_reusing_a_sid_drops_the_link(linked_peer, caplog):
    caplog.set_level(logging.INFO)
    srv, peer = linked_peer
    await peer.send(ev.ServerIntroduced(Stamp(10**13, "9EV"), "1AA", "clone.test", "", "9EV"))
    await assert_dropped(srv, peer, caplog, "server 1AA (clone.test) is already on the network")


async def test_reusing_a_uid_drops_the_link(linked_peer, caplog):
    caplog.set_level(logging.INFO)
    srv, peer = linked_peer
    s = Stamp(10**13, "9EV")
    intro = ev.UserIntroduced(s, "9EV000001", "one", s, "~f", "h", "", "r", 0)
    await peer.send(intro, ev.UserIntroduced(s, "9EV000001", "two", s, "~f", "h", "", "r", 0))
    await assert_dropped(srv, peer, caplog, "UID 9EV000001 is already in use")


async def test_garbage_drops_the_link_and_crashes_nothing(linked_peer, caplog):
    caplog.set_level(logging.INFO)
    srv, peer = linked_peer
    await peer.stream.send_all(b"\x93\xff\x00garbage")
    await assert_dropped(srv, peer, caplog, "protocol error: unknown frame type")


@pytest.mark.parametrize("replay", [False, True])
async def test_a_message_misattributed_to_another_server_drops_the_link(linked_peer, caplog,
                                                                         replay):
    """evil.test may speak for its own users only: a message it says entered the
    network elsewhere (live, or in a replay) is refused and nobody sees it."""
    caplog.set_level(logging.INFO)
    srv, peer = linked_peer
    watcher = await srv.client("watcher")
    await watcher.send("JOIN #w")
    await watcher.expect("366")
    s = Stamp(10**13, "9EV")
    await peer.send(ev.UserIntroduced(s, "9EV000001", "evil", s, "~e", "h", "", "r", 0),
                    ev.ChannelJoin(s, "#w", "9EV000001"))
    forged = ev.Message(s, "PRIVMSG", "9EV000001", "#w", "forged", "2XX0001", "2XX", 1, 1,
                        10**13, replay=replay)
    await peer.send(forged, *([fr.ReplayEnd()] if replay else []))
    reason = "message 2XX0001 from 9EV000001 claims to have entered the network at 2XX"
    assert reason in (await peer.read_until(fr.Error)).reason
    await until(lambda: "9EV" not in srv.state.registry.servers, what="the netsplit")
    assert any(reason in r.getMessage() and "lost" in r.getMessage() for r in caplog.records)
    got = [m.command for m in await watcher.ping_pong()]
    assert "PRIVMSG" not in got and got.count("QUIT") == 1   # evil left in the netsplit
