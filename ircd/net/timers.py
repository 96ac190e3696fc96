"""One task running every delayed callback (fake lag, deferred work) from a heap.

Per-connection timer tasks would cost memory on every idle client; a single heap costs
nothing until used.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math

import trio

log = logging.getLogger(__name__)


class Timers:
    def __init__(self) -> None:
        self._heap: list = []
        self._counter = itertools.count()
        self._scope: trio.CancelScope | None = None

    def call_later(self, delay: float, fn) -> None:
        when = trio.current_time() + delay
        heapq.heappush(self._heap, (when, next(self._counter), fn))
        if self._scope is not None and when < self._scope.deadline:
            self._scope.deadline = when

    async def run(self) -> None:
        heap = self._heap
        while True:
            now = trio.current_time()
            while heap and heap[0][0] <= now:
                _, _, fn = heapq.heappop(heap)
                try:
                    fn()
                except Exception:
                    log.exception("timer callback %r failed", fn)
            with trio.CancelScope(deadline=heap[0][0] if heap else math.inf) as self._scope:
                await trio.sleep_forever()
            self._scope = None
