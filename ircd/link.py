"""A server link: the protocol object on a link connection, as Session is on a client's.

It decodes frames, drives the handshake (linkproto.handshake), and hands network events
to the server's linking logic (ircd/linking.py). It sends events with `send_event`,
which the router calls once per link direction.
"""

from __future__ import annotations

import collections
import logging
import time

from linkproto import codec, events as ev, frames as fr
from linkproto.handshake import Handshake, HandshakeError, State

log = logging.getLogger(__name__)


class Link:
    __slots__ = ("server", "conn", "handshake", "decoder", "name", "outgoing", "closed",
                 "established", "frames_in", "frames_out", "lag_ms", "ping_sent",
                 "connected_at", "burst_done", "last_recv", "ready_sent", "replayed", "token",
                 "counting", "out_seq", "unacked", "handled", "acked", "suspended",
                 "__weakref__")

    def __init__(self, server, conn, handshake: Handshake, outgoing: str | None, now: float):
        self.server = server
        self.conn = conn
        conn.in_channels = False          # (frames never share a channel's Pieces)
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
        # resuming (XEP-0198's model): frames after the Resume frames are counted both
        # ways; what the peer has not acknowledged is kept, to resend after a drop
        self.token = b""
        self.counting = False             # our Resume is sent: count and keep what we send
        self.out_seq = 0
        self.unacked: collections.deque = collections.deque()   # (seq, bytes)
        self.handled = 0                  # frames of the peer's handled since its Resume
        self.acked = 0                    # the last count we acknowledged
        self.suspended = False            # the connection dropped: frames wait for a resume

    @property
    def peer_sid(self) -> str | None:
        peer = self.handshake.peer
        return peer.sid if peer is not None else None

    # -- sending -----------------------------------------------------------------------

    def send(self, frame) -> None:
        if self.closed and not self.suspended:
            return
        data = codec.encode(frame)
        self.frames_out += 1
        if self.counting and type(frame) is not fr.Ack:
            self.out_seq += 1
            self.unacked.append((self.out_seq, data))
            if len(self.unacked) > self.server.config.limits.link_resume_frames:
                self.server.linking.overflowed(self)
                return
        if not self.suspended:
            self.conn.write(data)

    def acknowledge(self, force: bool = False) -> None:
        """Tell the peer how much of its stream we handled (every 64 frames, and when quiet)."""
        if self.counting and not self.suspended and (force and self.handled > self.acked
                                                     or self.handled - self.acked >= 64):
            self.acked = self.handled
            self.send(fr.Ack(self.handled))

    def acknowledged(self, count: int) -> None:
        unacked = self.unacked
        while unacked and unacked[0][0] <= count:
            unacked.popleft()

    def resend_after(self, handled: int) -> int:
        """After a resume: resend what the peer had not handled; returns how many."""
        self.acknowledged(handled)
        for _, data in self.unacked:
            self.conn.write(data)
        return len(self.unacked)

    send_event = send

    def send_replay(self, messages, incomplete: tuple = ()) -> None:
        """Messages said while the peer could not hear them, as one run; `incomplete`:
        the channels where the log no longer holds all of them."""
        for m in messages:
            self.send(m)
        self.send(fr.ReplayEnd(incomplete))

    def start(self) -> None:
        self.send(self.handshake.hello())

    def close(self, reason: str, tell_peer: bool = True, resumable: bool = False) -> None:
        """Drop the link: the server removes what was behind it (a netsplit), or, when
        the connection just broke (`resumable`), waits a while for it to resume."""
        if self.closed:
            return
        if tell_peer:
            self.send(fr.Error(reason))
        self.closed = True
        self.server.linking.lost(self, reason, resumable)
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
        counting = self.handshake.accepts_events
        for frame in frames:
            if self.closed:
                return
            self.frames_in += 1
            if counting and type(frame) is not fr.Ack:
                self.handled += 1
            self._frame(frame)
            counting = self.handshake.accepts_events
        self.acknowledge()
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
            if before is State.READY and hs.state is State.RESUME and self.ready_sent:
                self.server.linking.offer_resume(self)     # (else: when our Ready goes out)
            elif before is State.RESUME and hs.state is State.BURST:
                self.server.linking.resume_or_burst(self)
            elif kind is fr.BurstEnd:
                self.burst_done = True
                self.server.linking.burst_received(self, frame)
            elif kind is fr.ReplayRequest:
                self.server.linking.replay_requested(self)
            elif kind is fr.ReplayEnd:
                run, self.replayed = self.replayed, []
                self.server.linking.replay(self, run, frame.incomplete)
            elif kind is fr.Ack:
                self.acknowledged(frame.count)
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
        self.close(reason, tell_peer=False, resumable=True)

    def connection_closed(self) -> None:
        self.close("Connection closed", tell_peer=False, resumable=True)
        self.server.linking.open.discard(self)
