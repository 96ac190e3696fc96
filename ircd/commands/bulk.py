"""Replies too long to queue at once (LIST, WHO *): sent as the client reads them.

ISUPPORT SAFELIST promises that a LIST never overflows a client's send queue; so a
long reply is written while the client's unsent bytes stay under half its sendq and
continued from the timer task once it has read some.
"""

from __future__ import annotations

RETRY_SECONDS = 0.05


def send_bulk(server, client, lines, finish) -> None:
    """Write the bytes `lines` yields, then call `finish()` (which sends the end numeric).

    Under labeled-response the whole reply must sit inside the label's batch, so it is
    written at once there (the label capture is not bounded by sendq)."""
    if client.capture is not None:
        for line in lines:
            client.write(line)
        finish()
        return
    _continue(server, client, iter(lines), finish)


def _continue(server, client, lines, finish) -> None:
    if client.closing or client.conn.dead:
        return
    budget = client.conn.sendq // 2
    for line in lines:
        client.write(line)
        if client.conn.queued >= budget:
            server.timers.call_later(RETRY_SECONDS, lambda: _continue(server, client, lines, finish))
            return
    finish()
