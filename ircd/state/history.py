"""The recent-message log: what each server keeps so that nothing said during a netsplit
is lost, and nothing is delivered twice.

A message is known by (origin SID, origin epoch, sequence number). `record` logs a
message and remembers that it was seen; `seen` says whether one was. After a netsplit
heals, each side sends its log across the new link; the receiver delivers only what it
has not seen. Bounded by count and age (time comes in with the messages: pure).
"""

from __future__ import annotations

import collections


class MessageLog:
    __slots__ = ("max_messages", "max_ms", "log", "_seen", "_seen_order", "evicted")

    def __init__(self, max_messages: int, max_seconds: float):
        self.max_messages = max_messages
        self.max_ms = int(max_seconds * 1000)
        self.log: collections.deque = collections.deque()
        self._seen: set = set()
        # remembered longer than logged (3.5x to 4x): a peer with a longer log cannot
        # resend something this server delivered and has already forgotten
        self._seen_order: collections.deque = collections.deque()
        # conversation (channel name, or a private sender's UID) -> time of the newest
        # message the limits pushed out of the log: a replay after that is incomplete
        self.evicted: dict[str, int] = {}

    def seen(self, e) -> bool:
        return (e.origin, e.epoch, e.seq) in self._seen

    def record(self, e) -> bool:
        """Log a message and mark it seen; False (and nothing logged) if it was seen."""
        key = (e.origin, e.epoch, e.seq)
        seen = self._seen
        if key in seen:
            return False
        seen.add(key)
        order = self._seen_order
        now_ms = e.time_ms
        order.append((now_ms, key))
        log = self.log
        if self.max_messages:
            log.append(e)
            if len(log) > self.max_messages:
                self._evict(log.popleft())
        # (_expire's checks, inline: usually nothing is old enough to go)
        if ((log and log[0].time_ms < now_ms - self.max_ms) or len(order) > 4 * self.max_messages
                or order[0][0] < now_ms - 4 * self.max_ms):
            self._expire(now_ms)
        return True

    def _expire(self, now_ms: int) -> None:
        oldest = now_ms - self.max_ms
        log = self.log
        while log and log[0].time_ms < oldest:
            self._evict(log.popleft())
        order = self._seen_order
        seen = self._seen
        limit = 4 * max(self.max_messages, 1)
        if len(order) > limit:
            # down to 7/8 of the limit at once: at the limit, every message would pay
            # for this call
            for _ in range(len(order) - (limit - limit // 8)):
                seen.discard(order.popleft()[1])
        too_old = now_ms - 4 * self.max_ms
        while order and order[0][0] < too_old:
            seen.discard(order.popleft()[1])

    def _evict(self, e) -> None:
        key = e.target if e.target[:1] in "#&" else e.uid
        if e.time_ms > self.evicted.get(key, 0):
            self.evicted[key] = e.time_ms
        if len(self.evicted) > 4 * max(self.max_messages, 1000):
            self.evicted.clear()            # bounded; only lost notices, never messages

    def lost_since(self, since_ms: int) -> list[str]:
        """Conversations with messages from `since_ms` on that the log no longer has."""
        return [key for key, t in self.evicted.items() if t >= since_ms]

    def recent(self, now_ms: int) -> list:
        """The logged messages not older than the limit, oldest first."""
        self._expire(now_ms)
        return list(self.log)

    def resize(self, max_messages: int, max_seconds: float) -> None:
        self.max_messages = max_messages
        self.max_ms = int(max_seconds * 1000)
        while self.max_messages and len(self.log) > self.max_messages:
            self.log.popleft()
        if not self.max_messages:
            self.log.clear()
