"""Private messages held for someone whose server is split away.

A PRIVMSG/NOTICE to a nick that left in a netsplit is kept (up to [limits]
hold_seconds) and its sender told plainly that it waits; when the user comes back with
the heal it is delivered, and when the time is up the sender is told it was not.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

MAX_HELD_PER_USER = 100


class Holds:
    def __init__(self, server):
        self.server = server
        self.held: dict[str, list] = {}      # UID -> [(event, sender UID, nick, expires)]

    def hold(self, session, nick: str, uid: str, event) -> bool:
        """Keep `event` for `uid`; False if that user's queue is full."""
        queue = self.held.setdefault(uid, [])
        if len(queue) >= MAX_HELD_PER_USER:
            return False
        seconds = self.server.config.limits.hold_seconds
        queue.append((event, session.user.uid, nick, self.server.now_ms() + int(seconds * 1000)))
        self.server.timers.call_later(seconds, self.expire)
        return True

    def arrived(self, user) -> None:
        """A user is back (a netjoin): deliver what was held for it, in order."""
        queue = self.held.pop(user.uid, None)
        if not queue:
            return
        server = self.server
        for event, sender_uid, nick, _ in queue:
            server.history.record(event)
            delivered, _ = server.emit(event)
            sender = server.registry.users.get(sender_uid)
            if sender is not None and sender.session is not None:
                if delivered:
                    sender.session.report("NOTE", event.command, "DELIVERED", nick, event.msgid,
                                          f"Your message to {nick} was delivered: the netsplit healed")
        log.info("delivered %d held message(s) to %s", len(queue), user.nick)

    def expire(self) -> None:
        now = self.server.now_ms()
        for uid in list(self.held):
            keep = []
            for item in self.held[uid]:
                event, sender_uid, nick, expires = item
                if expires > now:
                    keep.append(item)
                    continue
                sender = self.server.registry.users.get(sender_uid)
                if sender is not None and sender.session is not None:
                    sender.session.report(
                        "FAIL", event.command, "NOT_DELIVERED", nick, event.msgid,
                        f"Your message to {nick} was not delivered: their server did not "
                        f"come back within {self.server.config.limits.hold_seconds:.0f} seconds")
            if keep:
                self.held[uid] = keep
            else:
                del self.held[uid]
