"""A server link: the protocol object on a link connection, as Session is on a client's.

It decodes frames, drives the handshake (linkproto.handshake), and hands network events
to the server's linking logic (ircd/linking.py). It sends events with `send_event`,
which the router calls once per link direction.
"""

from __future__ import annotations

import logging
import time

from linkproto import codec, events as ev, frames as fr
from linkproto.handshake import Handshake, HandshakeError, State

log = logging.getLogger(__name__)


class Link:
    __slots__ = ("server", "conn", "handshake", "decoder", "name", "outgoing", "closed",
                 "established", "frames_in", "frames_out", "lag_ms", "ping_sent",
                 "connected_at", "burst_done", "last_recv", "ready_sent", "replayed", "__weakref__")

    def __init__(self, server, conn, handshake: Handshake, outgoing: str | None, now: float):
        self.server = server
        self.conn = conn
        self.handshake = handshake
        self.decoder = codec.Decoder()
        self.outgoing = outgoing          # the [[link]] name we connected to, or None
        self.name = outgoing or f"{conn.ip}:{conn.port}"
        self.closed = False
        self.established = False          # the peer is introduced in the registry
        self.burst_done = False
        self.ready_sent = False           # we accepted the peer and told it so
        self.replayed: list = []          # replayed messages, until ReplayEnd
        self.frames_in = self.frames_out = 0
        self.lag_ms: int | None = None
        self.ping_sent: float | None = None
        self.connected_at = now
        self.last_recv = now

    @property
    def peer_sid(self) -> str | None:
        peer = self.handshake.peer
        return peer.sid if peer is not None else None

    # -- sending -----------------------------------------------------------------------

    def send(self, frame) -> None:
        if not self.closed:
            self.frames_out += 1
            self.conn.write(codec.encode(frame))

    send_event = send

    def send_replay(self, messages) -> None:
        """Messages said while the peer could not hear them, as one run."""
        for m in messages:
            self.send(m)
        self.send(fr.ReplayEnd())

    def start(self) -> None:
        self.send(self.handshake.hello())

    def close(self, reason: str, tell_peer: bool = True) -> None:
        """Drop the link; the server removes what was behind it (a netsplit)."""
        if self.closed:
            return
        if tell_peer:
            self.send(fr.Error(reason))
        self.closed = True
        self.server.linking.lost(self, reason)
        self.conn.close()

    # -- the connection's protocol callbacks ------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        self.last_recv = time.monotonic()
        try:
            frames = self.decoder.feed(data)
        except codec.FrameError as exc:
            self.close(f"protocol error: {exc}")
            return
        for frame in frames:
            if self.closed:
                return
            self.frames_in += 1
            self._frame(frame)
        self.server.reap()

    def _frame(self, frame) -> None:
        hs = self.handshake
        kind = type(frame)
        if kind in fr.CONTROL_FRAMES or not hs.accepts_events:
            before = hs.state
            try:
                replies = hs.receive(frame)
            except HandshakeError as exc:
                self.close(str(exc), tell_peer=kind is not fr.Error)
                return
            for reply in replies:
                if type(reply) is fr.Ready:
                    self.server.linking.proof_accepted(self)   # sends Ready when its turn comes
                else:
                    self.send(reply)
            if before is State.READY and hs.state is State.BURST and self.ready_sent:
                self.server.linking.authenticated(self)   # (else: when our Ready goes out)
            elif kind is fr.BurstEnd:
                self.burst_done = True
                self.server.linking.burst_received(self, frame)
            elif kind is fr.ReplayRequest:
                self.server.linking.replay_requested(self)
            elif kind is fr.ReplayEnd:
                run, self.replayed = self.replayed, []
                self.server.linking.replay(self, run)
            elif kind is fr.Ping:
                self.send(fr.Pong(frame.token))
            elif kind is fr.Pong:
                self.server.linking.pong(self, frame)
            elif kind in (fr.WhoisRequest, fr.WhoisReply):
                self.server.linking.whois_frame(self, frame)
            return
        if kind is ev.Message and frame.replay:
            self.replayed.append(frame)
            return
        self.server.linking.event(self, frame)

    def send_queue_exceeded(self) -> None:
        self.conn.discard_output()
        self.close("SendQ exceeded: the peer is not reading", tell_peer=False)

    def connection_lost(self, reason: str) -> None:
        self.close(reason, tell_peer=False)

    def connection_closed(self) -> None:
        self.close("Connection closed", tell_peer=False)
        self.server.linking.open.discard(self)
