"""AWAY and SETNAME: a user's own state that others see.

AWAY (RFC 2812 4.1, IRCv3 away-notify): `AWAY :text` marks the user away (306),
`AWAY` or `AWAY :` marks them back (305). Clients with `away-notify` that share a
channel hear `:nick!user@host AWAY :text` / `:nick!user@host AWAY`; so do MONITOR
watchers with both `extended-monitor` and `away-notify`.

SETNAME (IRCv3 setname): `SETNAME :new realname`. Clients with `setname` that share a
channel, and the sender itself, hear `:nick!user@host SETNAME :new realname` (plus
extended-monitor watchers with `setname`). A client without the capability may still
change its realname; it just is not told (the spec's "handle it silently").
"""

from __future__ import annotations

from linkproto import events as ev

from ..protocol import numerics as N
from ..protocol.message import build_line, truncate_utf8

# The longest realname accepted (USER truncates to the same length).
REALNAME_LIMIT = 100


def away(server, client, msg) -> None:
    user = client.user
    text = msg.params[0] if msg.params else ""
    if text:
        text = truncate_utf8(text, server.config.limits.awaylen)
    if text:
        client.numeric(N.RPL_NOWAWAY, "You have been marked as being away")
    else:
        client.numeric(N.RPL_UNAWAY, "You are no longer marked as being away")
    if (text or None) != user.away:
        server.emit(ev.AwayChange(server.stamp(), user.uid, text or None), client)


def setname(server, client, msg) -> None:
    user = client.user
    new = msg.params[0]
    if (not new.strip() or len(new) > REALNAME_LIMIT
            or any(ord(ch) < 32 and ch not in "\x02\x03\x0f\x16\x1d\x1e\x1f" for ch in new)):
        client.standard_reply(
            "FAIL", "SETNAME", "INVALID_REALNAME",
            f"Realname is not valid: it must be 1 to {REALNAME_LIMIT} characters "
            "without control characters")
        return
    if new == user.realname:
        # Nothing changes, but a client with the capability waits for the confirmation.
        if "setname" in client.caps:
            client.write(build_line(user.source, "SETNAME", (new,), trailing=True))
        return
    client.realname = new
    server.emit(ev.RealnameChange(server.stamp(), user.uid, new), client)
