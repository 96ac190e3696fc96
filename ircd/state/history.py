"""The recent-message log: what each server keeps so that nothing said during a netsplit
is lost, and nothing is delivered twice.

A message is known by (origin SID, origin epoch, sequence number). `record` logs a
message and remembers that it was seen; `seen` says whether one was. After a netsplit
heals, each side sends its log across the new link; the receiver delivers only what it
has not seen. Bounded by count and age (time comes in with the messages: pure).

The log holds each message as a plain tuple of its fields, not the event: a tuple of
strings and numbers is one the garbage collector stops tracking, where an event (and
its stamp) stays tracked for as long as it is logged. With 10,000 events logged, every
message moved two more objects into the collector's oldest generation, and a full
collection (25 ms here) ran every few thousand messages: 10% of a busy server's time.
"""

from __future__ import annotations

import collections
import operator

import attrs

from linkproto import events as ev
from linkproto.clock import Stamp

_FIELDS = [f.name for f in attrs.fields(ev.Message)][1:]      # all but the stamp
_entry = operator.attrgetter("stamp.t", "stamp.sid", *_FIELDS)   # an event's entry
_TIME = 2 + _FIELDS.index("time_ms")
_TARGET = 2 + _FIELDS.index("target")
_UID = 2 + _FIELDS.index("uid")


def _event(entry: tuple) -> ev.Message:
    return ev.Message(Stamp(entry[0], entry[1]), *entry[2:])


class MessageLog:
    __slots__ = ("max_messages", "max_ms", "log", "_seen", "_seen_before", "_seen_since",
                 "evicted", "recorded")

    def __init__(self, max_messages: int, max_seconds: float):
        self.max_messages = max_messages
        self.max_ms = int(max_seconds * 1000)
        self.log: collections.deque = collections.deque()      # entries, oldest first
        self.recorded = 0                 # messages logged since the start
        # remembered longer than logged (4x to 8x, by count and by age): a peer with a
        # longer log cannot resend something this server delivered and has already
        # forgotten. Two generations of keys: when the newer is full (or old enough) it
        # becomes the older and the older is dropped whole, not key by key.
        self._seen: set = set()
        self._seen_before: set = set()
        self._seen_since: int | None = None    # time of the newer generation's first key
        # conversation (channel name, or a private sender's UID) -> time of the newest
        # message the limits pushed out of the log: a replay after that is incomplete
        self.evicted: dict[str, int] = {}

    def seen(self, e) -> bool:
        key = (e.origin, e.epoch, e.seq)
        return key in self._seen or key in self._seen_before

    def record(self, e) -> bool:
        """Log a message and mark it seen; False (and nothing logged) if it was seen."""
        key = (e.origin, e.epoch, e.seq)
        seen = self._seen
        if key in seen or key in self._seen_before:
            return False
        now_ms = e.time_ms
        if self._seen_since is None:
            self._seen_since = now_ms
        elif (len(seen) >= 4 * max(self.max_messages, 1)
              or self._seen_since < now_ms - 4 * self.max_ms):
            self._seen_before = seen
            seen = self._seen = set()
            self._seen_since = now_ms
        seen.add(key)
        self.recorded += 1
        log = self.log
        if self.max_messages:
            log.append(_entry(e))
            if len(log) > self.max_messages:
                self._evict(log.popleft())
            if log[0][_TIME] < now_ms - self.max_ms:
                self._expire(now_ms)
        return True

    def _expire(self, now_ms: int) -> None:
        oldest = now_ms - self.max_ms
        log = self.log
        while log and log[0][_TIME] < oldest:
            self._evict(log.popleft())

    def _evict(self, entry: tuple) -> None:
        target = entry[_TARGET]
        key = target if target[:1] in "#&" else entry[_UID]
        when = entry[_TIME]
        if when > self.evicted.get(key, 0):
            self.evicted[key] = when
        if len(self.evicted) > 4 * max(self.max_messages, 1000):
            self.evicted.clear()            # bounded; only lost notices, never messages

    def lost_since(self, since_ms: int) -> list[str]:
        """Conversations with messages from `since_ms` on that the log no longer has."""
        return [key for key, t in self.evicted.items() if t >= since_ms]

    def recent(self, now_ms: int) -> list:
        """The logged messages not older than the limit, oldest first."""
        self._expire(now_ms)
        return [_event(entry) for entry in self.log]

    def newest(self) -> ev.Message | None:
        """The message logged last (if the log keeps any)."""
        return _event(self.log[-1]) if self.log else None

    def resize(self, max_messages: int, max_seconds: float) -> None:
        self.max_messages = max_messages
        self.max_ms = int(max_seconds * 1000)
        while self.max_messages and len(self.log) > self.max_messages:
            self._evict(self.log.popleft())     # (a replay will say what is missing)
        if not self.max_messages:
            self.log.clear()
