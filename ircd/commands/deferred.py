"""Deferred: how a command handler hands slow work to a worker thread."""

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
