"""The server's side of its links: who may link, what a new link is told, what arrives.

Synchronous, like the rest of the server: the I/O layer (ircd/net/linker.py) makes the
connections, ircd/link.py drives each one's protocol, and this module decides. A new
link is refused (with the reason logged on both sides) if the peer is not configured,
fails the certificate pin, or is already on the network (a loop). A frame that claims
to come from a server or user not behind the link it arrived on drops that link.
"""

from __future__ import annotations

import gc
import logging
import os
import time

import attrs

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from linkproto import events as ev, frames as fr
from linkproto.handshake import Handshake, State

from . import tlsutil
from .link import Link
from .session import idle_seconds
from .state.burst import burst
from .state.registry import StateError, Vanished

log = logging.getLogger(__name__)

SKEW_WARN_MS = 60_000

# Events that only the server of the user they name may send: (class, field with the UID).
_OWNED = {
    ev.UserIntroduced: "uid", ev.NickChange: "uid", ev.UserModeChange: "uid",
    ev.AwayChange: "uid", ev.AccountChange: "uid", ev.RealnameChange: "uid",
    ev.ChannelJoin: "uid", ev.ChannelPart: "uid", ev.Message: "uid",
}


def misattributed(m: ev.Message) -> str | None:
    """A message enters the network at its sender's server, which names it: a message
    whose origin, sender and msgid disagree was made up by the server that sent it
    (checked for replays too, which may come from any server's log)."""
    if m.uid[:3] != m.origin or not m.msgid.startswith(m.origin):
        return (f"message {m.msgid} from {m.uid} claims to have entered the network at "
                f"{m.origin}")
    return None


class Linking:
    def __init__(self, server):
        self.server = server
        self.links: set[Link] = set()     # every link connection, in handshake or linked
        self.open: set[Link] = set()      # links whose connection has not finished closing
        self._identity = None
        self.connect_requested = None      # set by the I/O layer: callable(link config)
        self._last_skew_warning = 0.0
        self._whois_waiting: dict = {}     # (asker UID, target UID) -> resume(reply)
        # One link forms at a time: it has been sent Ready and its burst is not complete.
        # Others wait their turn, so two links formed at once cannot both bring the same
        # server (a loop neither side could see yet).
        self.forming: Link | None = None
        self.waiting: list[Link] = []
        self.suspended: dict[str, Link] = {}   # peer SID -> link waiting to be resumed
        self._receiving: set[Link] = set()     # links whose peer's burst is arriving
        self.split_at: dict[str, int] = {}     # server name -> when we lost it (ms)
        self._gc_was_enabled = True

    # -- configuration -----------------------------------------------------------------

    def pin(self, name: str) -> str | None:
        for link in self.server.config.links:
            if link.name.lower() == name.lower():
                return link.fingerprint
        return None

    def link_config(self, name: str):
        return next((b for b in self.server.config.links if b.name.lower() == name.lower()), None)

    def linked_to(self, name: str) -> Link | None:
        for link in self.links:
            peer = link.handshake.peer
            if (peer is not None and peer.name.lower() == name.lower()) or (
                    link.outgoing and link.outgoing.lower() == name.lower()):
                return link
        return None

    def _key_and_cert(self):
        if self._identity is None:
            cert_path, key_path = tlsutil.server_cert_pair(self.server.config)
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            self._identity = key, cert.public_bytes(serialization.Encoding.DER)
        return self._identity

    # -- new links -----------------------------------------------------------------------

    def new_link(self, conn, outgoing: str | None = None, tls_peer_cert: bytes | None = None) -> Link:
        cfg = self.server.config.server
        key, cert = self._key_and_cert()
        hello = fr.Hello(fr.PROTOCOL_VERSION, cfg.name, cfg.sid, cfg.description, (),
                         os.urandom(16))
        link = Link(self.server, conn, Handshake(hello, key, cert, self.pin, tls_peer_cert),
                    outgoing, time.monotonic())
        self.links.add(link)
        self.open.add(link)
        return link

    def proof_accepted(self, link: Link) -> None:
        """The peer's Proof is good: tell it Ready now, or when the forming link is done."""
        if self.forming is None or self.forming.closed:
            self._ready(link)
        else:
            self.waiting.append(link)

    def _ready(self, link: Link) -> None:
        problem = self._loop(link)
        if problem is not None:
            link.close(problem)
            return
        self.forming = link
        link.send(fr.Ready())
        link.ready_sent = True
        if link.handshake.state is State.RESUME:    # the peer's Ready came first
            self.offer_resume(link)

    def offer_resume(self, link: Link) -> None:
        """Say which earlier link with this peer we could continue (if one is held)."""
        held = self.suspended.get(link.handshake.peer.sid)
        if held is not None and held.handshake.peer.name == link.handshake.peer.name:
            link.send(fr.Resume(held.token, held.handled))
        else:
            link.send(fr.Resume(b"", 0))
        link.counting = True

    def resume_or_burst(self, link: Link) -> None:
        """Both Resumes are known: continue the held link, or start afresh."""
        peer = link.handshake.peer
        theirs = link.handshake.peer_resume
        held = self.suspended.get(peer.sid)
        if held is not None and theirs.token and theirs.token == held.token:
            self._resume(held, link, theirs.handled)
            return
        if held is not None:
            del self.suspended[peer.sid]
            self._declare_split(held, "the link came back but could not be resumed")
        self.authenticated(link)

    def _resume(self, held: Link, link: Link, peer_handled: int) -> None:
        del self.suspended[held.peer_sid]
        link.token, link.name = held.token, held.name
        link.handled, link.acked = held.handled, held.acked
        link.out_seq, link.unacked = held.out_seq, held.unacked
        link.established = link.burst_done = True
        self.server.router.links[link.peer_sid] = link
        resent = link.resend_after(peer_handled)
        self._next_forming(link)
        log.info("link to %s (%s) resumed after %.1f s: %d frames resent, nothing lost",
                 link.name, link.peer_sid, time.monotonic() - held.last_recv, resent)

    def overflowed(self, link: Link) -> None:
        """Too much waits for a peer to acknowledge: give up resuming it."""
        link.unacked.clear()
        link.counting = False
        if link.suspended:
            self.suspended.pop(link.peer_sid, None)
            self._declare_split(link, f"more than {self.server.config.limits.link_resume_frames} "
                                      "frames waited for it to resume")
        else:
            link.close("too many frames unacknowledged: the peer is not keeping up")

    def _next_forming(self, done: Link) -> None:
        if self.forming is done:
            self.forming = None
        while self.forming is None and self.waiting:
            link = self.waiting.pop(0)
            if not link.closed:
                self._ready(link)

    def _loop(self, link: Link) -> str | None:
        """Why linking this peer would close a loop (it is already on the network), or None."""
        reg = self.server.registry
        peer = link.handshake.peer
        held = self.suspended.get(peer.sid)
        if held is not None and held.handshake.peer.name == peer.name:
            return None                    # the same server coming back: a resume, maybe
        known = reg.servers.get(peer.sid)
        by_name = next((s for s in reg.servers.values() if s.name.lower() == peer.name.lower()), None)
        entry = known or by_name
        if entry is None:
            return None
        via = reg.servers.get(entry.direction) if entry.direction else None
        through = f" through {via.name}" if via is not None else ""
        return (f"{peer.name} ({peer.sid}) is already on the network (as {entry.name} "
                f"({entry.sid}){through}): linking it here would close a loop")

    def authenticated(self, link: Link) -> None:
        """The peer proved who it is: introduce it, send it our burst."""
        server = self.server
        reg = server.registry
        peer = link.handshake.peer
        if link.outgoing and peer.name.lower() != link.outgoing.lower():
            link.close(f"connected to {link.outgoing}, but the server there says it is {peer.name}")
            return
        problem = self._loop(link)
        if problem is not None:
            link.close(problem)
            return
        link.name = peer.name
        link.token = link.handshake.token()
        link.established = True
        server.router.links[peer.sid] = link
        started = time.monotonic()
        # Thousands of new objects at once: a full garbage collection in the middle would
        # cost more than the burst itself, and there are no cycles to find in it.
        collecting = gc.isenabled()
        gc.disable()
        try:
            events = burst(reg, server.sid)      # before the peer is in the registry
            server.emit(ev.ServerIntroduced(server.stamp(), peer.sid, peer.name,
                                            peer.description, server.sid), from_link=peer.sid)
            for event in events:
                link.send_event(event)
            link.send(fr.BurstEnd(len(reg.servers) - 1, len(reg.users), len(reg.channels)))
        finally:
            if collecting:
                gc.enable()
        self._pause_gc(link)               # until the peer's burst is in, too
        log.info("linked with %s (%s) at %s:%s; sent our burst of %d events in %.1f ms",
                 peer.name, peer.sid, link.conn.ip, link.conn.port, len(events),
                 (time.monotonic() - started) * 1000)

    def _pause_gc(self, link: Link) -> None:
        """No garbage collection while a burst arrives: thousands of new long-lived
        objects would make a full collection cost more than the burst."""
        if not self._receiving:
            self._gc_was_enabled = gc.isenabled()
            gc.disable()
        self._receiving.add(link)

    def _resume_gc(self, link: Link) -> None:
        if link in self._receiving:
            self._receiving.discard(link)
            if not self._receiving and self._gc_was_enabled:
                gc.enable()

    def burst_received(self, link: Link, end: fr.BurstEnd) -> None:
        self._resume_gc(link)
        server = self.server
        server.emit(ev.BurstComplete(server.stamp(), link.peer_sid), from_link=link.peer_sid)
        self._next_forming(link)
        log.info("burst from %s complete: %d servers, %d users, %d channels (%.0f ms after "
                 "connecting)", link.name, end.servers, end.users, end.channels,
                 (time.monotonic() - link.connected_at) * 1000)
        # what we heard while the peer's side could not: it delivers what it lacks; and
        # the servers behind us replay theirs towards it too (what they said may never
        # have come this way, if nobody here was in the conversation)
        incomplete = self._tell_what_was_not_kept(link)
        self._send_log(link, incomplete)
        for other in list(server.router.links.values()):
            if other is not link:
                other.send(fr.ReplayRequest())

    def _tell_what_was_not_kept(self, link: Link) -> tuple:
        """A split longer than the log: the local people whose words cannot all reach
        the other side are told so (the log is bounded; nothing else is). Returns the
        channels concerned, for the other side's people to be told too."""
        server = self.server
        back = [server.registry.servers[sid].name for sid in server.registry.behind(link.peer_sid)
                if sid in server.registry.servers]
        since = min((self.split_at.pop(name) for name in back if name in self.split_at),
                    default=None)
        if since is None:
            return ()
        lost = server.history.lost_since(since)
        for key in lost:
            if key[:1] in "#&":
                chan = server.registry.find_channel(key)
                people = [u for u in chan.members if u.session] if chan is not None else []
                what = f"some messages said in {key}"
            else:
                sender = server.registry.users.get(key)
                people = [sender] if sender is not None and sender.session else []
                what = "some of your private messages"
            for user in people:
                user.session.report(
                    "WARN", "PRIVMSG", "HISTORY_LIMIT", key,
                    f"The netsplit with {link.name} outlasted this server's message history "
                    f"([limits] history_messages, history_seconds): {what} during it were not "
                    "kept and do not reach the other side")
        return tuple(key for key in lost if key[:1] in "#&")

    def _send_log(self, link: Link, incomplete: tuple = ()) -> None:
        server = self.server
        recent = server.history.recent(server.now_ms())
        if recent or incomplete:
            link.send_replay([attrs.evolve(m, replay=True) for m in recent], incomplete)

    def _tell_what_did_not_come(self, link: Link, incomplete: tuple) -> None:
        """The other side's log lost part of what its people said in these channels
        during the split: our members there hear that the replay is not whole."""
        for name in incomplete:
            chan = self.server.registry.find_channel(name)
            if chan is None:
                continue
            for user in chan.members:
                if user.session is not None:
                    user.session.report(
                        "WARN", "PRIVMSG", "HISTORY_LIMIT", chan.name,
                        f"The netsplit outlasted the message history of the servers beyond "
                        f"{link.name}: some messages said in {chan.name} over there during it "
                        "were not kept, and what was replayed here is not all of it")

    def replay_requested(self, link: Link) -> None:
        self._send_log(link)
        for other in list(self.server.router.links.values()):
            if other is not link:
                other.send(fr.ReplayRequest())

    # -- what arrives ---------------------------------------------------------------------

    def _wrong_direction(self, link: Link, e) -> str | None:
        kind = type(e)
        owner = _OWNED.get(kind)           # (a Message, most of what a link carries)
        if owner is not None:
            sid = getattr(e, owner)[:3]
        elif kind is ev.BurstComplete or kind is ev.ServerQuit:
            sid = e.sid
        elif kind is ev.ServerIntroduced:
            sid = e.uplink
        else:
            return None
        entry = self.server.registry.servers.get(sid) if sid else None
        if entry is None or entry.direction != link.peer_sid:
            if kind is ev.BurstComplete:
                return f"burst end of {e.sid}, which is not behind this link"
            if kind is ev.ServerIntroduced:
                return f"{e.name} ({e.sid}) introduced behind {e.uplink}, which is not behind this link"
            if kind is ev.ServerQuit:
                return f"SQUIT of {e.sid}, which is not behind this link"
            return f"{kind.__name__} for {getattr(e, owner)}, whose server is not behind this link"
        return misattributed(e) if kind is ev.Message else None

    def event(self, link: Link, e) -> None:
        server = self.server
        if not link.established:
            link.close(f"protocol error: {type(e).__name__} before the handshake completed")
            return
        skew = server.clock.observe(e.stamp)
        if skew > SKEW_WARN_MS and time.monotonic() - self._last_skew_warning > 60:
            self._last_skew_warning = time.monotonic()
            log.warning("clock skew: %s sent a stamp %.1f s ahead of our clock; check NTP on "
                        "both servers", link.name, skew / 1000)
        problem = self._wrong_direction(link, e)
        if problem is not None:
            link.close(f"protocol error: {problem}")
            return
        if type(e) is ev.Message and not server.history.record(e):
            return                         # already delivered here (it came round twice)
        if type(e) is ev.UserQuit:
            target = server.registry.users.get(e.uid)
            if target is not None and target.session is not None:
                server.quit_client(target.session, e.reason, event=e, from_link=link.peer_sid)
                return
        try:
            server.emit(e, from_link=link.peer_sid)
        except Vanished as exc:
            log.debug("ignored %s from %s: %s", type(e).__name__, link.name, exc)
        except StateError as exc:
            link.close(f"protocol error: {exc}")

    def replay(self, link: Link, run: list, incomplete: tuple = ()) -> None:
        """A run of replayed messages: deliver and pass on those not seen here."""
        server = self.server
        fresh = []
        for m in run:
            # A replay comes from whoever logged it, so no direction check; but nobody
            # may replay this server's own messages of this run to it.
            problem = misattributed(m)
            if problem is not None:
                link.close(f"protocol error: replayed {problem}")
                return
            if (m.origin, m.epoch) == (server.sid, server.epoch):
                continue
            if server.history.record(m):
                fresh.append(m)
        if fresh or incomplete:
            server.router.deliver_replay(fresh, link.peer_sid, incomplete)
        if fresh:
            log.info("replay from %s: %d of %d messages were new here", link.name, len(fresh), len(run))
        if incomplete:
            log.info("replay from %s is not whole for %s (the history limits of its side)",
                     link.name, ", ".join(incomplete))
            self._tell_what_did_not_come(link, incomplete)

    def lost(self, link: Link, reason: str, resumable: bool = False) -> None:
        self.links.discard(link)
        self._resume_gc(link)
        if link in self.waiting:
            self.waiting.remove(link)
        self._next_forming(link)
        server = self.server
        if not link.established:
            peer = link.handshake.peer
            who = link.name if peer is None else f"{peer.name} at {link.conn.ip}:{link.conn.port}"
            log.warning("link with %s refused: %s", who, reason)
            return
        grace = server.config.limits.link_resume_seconds
        if resumable and grace > 0 and link.burst_done and not link.suspended:
            # the connection broke: hold the link (what is sent waits) for it to resume
            link.suspended = True
            self.suspended[link.peer_sid] = link
            log.warning("link to %s (%s) interrupted: %s; waiting up to %.0f s for it to "
                        "resume", link.name, link.peer_sid, reason, grace)
            server.timers.call_later(grace, lambda: self._grace_over(link))
            return
        self._declare_split(link, reason)

    def _grace_over(self, link: Link) -> None:
        if self.suspended.get(link.peer_sid) is link:
            del self.suspended[link.peer_sid]
            grace = self.server.config.limits.link_resume_seconds
            self._declare_split(link, f"{link.name} did not come back within {grace:.0f} s")

    def _declare_split(self, link: Link, reason: str) -> None:
        server = self.server
        sid = link.peer_sid
        link.suspended = False
        link.unacked.clear()
        if server.router.links.get(sid) is link:
            del server.router.links[sid]
        log.warning("link to %s (%s) lost: %s", link.name, sid, reason)
        now = server.now_ms()
        for gone in server.registry.behind(sid):
            entry = server.registry.servers.get(gone)
            if entry is not None:
                self.split_at.setdefault(entry.name, now)
        server.emit(ev.ServerQuit(server.stamp(), sid, reason))

    def keepalive(self, now: float) -> None:
        """Ping quiet links (their lag shows in STATS l); drop the silent ones."""
        lim = self.server.config.limits
        for link in list(self.links):
            link.acknowledge(force=True)
            idle = now - link.last_recv
            if idle > lim.link_ping_interval + lim.link_ping_timeout:
                link.close(f"Ping timeout: nothing received for {int(idle)} seconds",
                           tell_peer=False, resumable=True)
            elif link.established and idle > lim.link_ping_interval and link.ping_sent is None:
                link.ping_sent = now
                link.send(fr.Ping(int(now * 1000)))
            elif not link.established and now - link.connected_at > 30:
                link.close("handshake timed out after 30 seconds")

    def pong(self, link: Link, pong: fr.Pong) -> None:
        link.lag_ms = max(0, int(time.monotonic() * 1000) - pong.token)
        link.ping_sent = None

    # -- remote WHOIS: the target's server answers with what only it knows ---------------

    def _toward(self, uid: str) -> Link | None:
        entry = self.server.registry.servers.get(uid[:3])
        return self.server.router.links.get(entry.direction) if entry is not None else None

    def ask_whois(self, asker, target, resume) -> None:
        self._whois_waiting[(asker.uid, target.uid)] = resume
        link = self._toward(target.uid)
        if link is None:
            resume(None)
        else:
            link.send(fr.WhoisRequest(asker.uid, target.uid))

    def whois_done(self, asker_uid: str, target_uid: str) -> None:
        self._whois_waiting.pop((asker_uid, target_uid), None)

    def whois_frame(self, link: Link, frame) -> None:
        reg = self.server.registry
        if type(frame) is fr.WhoisRequest:
            target = reg.users.get(frame.target)
            if target is not None and target.session is not None:
                reply = fr.WhoisReply(frame.asker, frame.target, idle_seconds(target), target.signon)
                back = self._toward(frame.asker)
                if back is not None:
                    back.send(reply)
            elif target is not None:
                onward = self._toward(frame.target)
                if onward is not None and onward is not link:
                    onward.send(frame)
            return
        asker = reg.users.get(frame.asker)
        if asker is not None and asker.sid == reg.sid:
            resume = self._whois_waiting.pop((frame.asker, frame.target), None)
            if resume is not None:
                resume(frame)
        elif asker is not None:
            onward = self._toward(frame.asker)
            if onward is not None and onward is not link:
                onward.send(frame)
