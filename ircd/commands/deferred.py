"""How a handler finishes later: after slow work (Deferred), or another server's reply
(Awaiting)."""

from __future__ import annotations

import attrs


@attrs.frozen
class Deferred:
    """What a handler returns when part of its work must not run on the event loop.

    `work()` runs in a worker thread (a password hash, say) and must not touch server
    state; `then(result)` runs back on the event loop as if it were the rest of the
    handler, inside the same labeled response. The client's further input waits, so
    its commands are still answered in order.
    """
    work: object
    then: object


@attrs.frozen
class Awaiting:
    """What a handler returns when the rest of its answer needs another server's reply.

    `ask(resume)` sends the question and arranges for `resume(reply)` to be called with
    the answer; `then(reply)` runs as the rest of the handler, inside the same labeled
    response, with `reply` None if none came within `timeout` seconds."""
    ask: object
    then: object
    timeout: float = 5.0
