"""One task that writes every connection with queued output once per scheduling round."""

from __future__ import annotations

from trio.lowlevel import Abort, current_task, reschedule, wait_task_rescheduled


class Flusher:
    """Handlers append bytes to connections; this writes each dirty one with one
    non-blocking write() after the current batch of work, with no task switch per
    connection."""

    def __init__(self) -> None:
        self.dirty: list = []
        self._task = None
        self.in_pass = False     # the reactor is mid-pass and flushes when it ends
        self.writes = 0          # bumped by every write and flush (Connection.broadcast)

    def mark(self, conn) -> None:
        self.dirty.append(conn)
        task = self._task
        if task is not None and not self.in_pass:
            self._task = None
            reschedule(task)

    def flush(self) -> None:
        self.writes += 1
        dirty, self.dirty = self.dirty, []
        for conn in dirty:
            conn.flush()

    def _park(self, _raise_cancel) -> Abort:
        self._task = None
        return Abort.SUCCEEDED

    async def run(self) -> None:
        while True:
            self.flush()
            self._task = current_task()
            await wait_task_rescheduled(self._park)
