"""The hybrid logical clock every network state change is stamped with.

A stamp is (microsecond ticks, origin SID): it orders any two events totally and the
same way on every server. Locally each new stamp is max(wall clock, last + 1 tick), so
it stays close to real time ("last writer" after a split means latest in real time);
a stamp received from a peer pushes the clock forward, so causality holds as for a
Lamport clock. Ticks are microseconds although the wall clock is read in
milliseconds: a server may stamp a thousand events within one millisecond (a busy
network carries 100,000 messages a second) before its clock runs ahead of real time.
The wall clock is injected, so tests control time.
"""

from __future__ import annotations

from typing import Callable

import attrs


@attrs.frozen(order=True, slots=True)
class Stamp:
    """When (hybrid-logical milliseconds) and where (origin SID) a change was made."""
    t: int                  # ticks: microseconds since the epoch, or just after
    sid: str

    @property
    def ms(self) -> int:
        return self.t // TICKS_PER_MS

    @property
    def seconds(self) -> int:
        return self.t // (TICKS_PER_MS * 1000)

    def __str__(self) -> str:
        return f"{self.t}@{self.sid}"


TICKS_PER_MS = 1000
ZERO = Stamp(0, "")


class HybridClock:
    """Issues strictly increasing stamps for one server."""

    __slots__ = ("sid", "_wall_ms", "last")

    def __init__(self, sid: str, wall_ms: Callable[[], int]):
        self.sid = sid
        self._wall_ms = wall_ms
        self.last = 0

    def tick(self) -> Stamp:
        now = self._wall_ms() * TICKS_PER_MS
        t = now if now > self.last else self.last + 1
        self.last = t
        return Stamp(t, self.sid)

    def observe(self, stamp: Stamp) -> int:
        """Take a received stamp into account; return how far (ms) it runs ahead of the
        local wall clock (positive: the sender's clock is ahead), for skew warnings."""
        if stamp.t > self.last:
            self.last = stamp.t
        return stamp.ms - self._wall_ms()
