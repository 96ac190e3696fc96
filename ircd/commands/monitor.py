"""MONITOR (IRCv3 monitor): a server-side list of nicks a client wants presence for.

    MONITOR + nick[,nick]*   add; answers 730 (online, as nick!user@host) / 731 (offline)
    MONITOR - nick[,nick]*   remove; no answer
    MONITOR C                clear; no answer
    MONITOR L                list: 732 ... then 733
    MONITOR S                status of every entry: 730 / 731

The list holds at most `[limits] monitor` entries (ISUPPORT MONITOR=<n>); targets that
do not fit are refused with 734 ERR_MONLISTFULL. Entries are folded nicks, kept both on
the client (`client.monitoring`) and in the server's reverse index (`server.monitors`),
which the server uses for the 730/731 it sends on connect, nick change and quit.
Targets that are not valid nicks (masks, channels) are ignored: MONITOR never watches
hostmasks.
"""

from __future__ import annotations

from ..protocol import numerics as N
from ..protocol.casemap import fold, valid_nick
from ..protocol.message import MAX_LINE_BODY

# A nick from elsewhere on the network may be longer than our own NICKLEN allows.
MAX_TARGET_LEN = 200


def monitor(server, client, msg) -> None:
    sub = msg.params[0]
    op = sub.upper()
    if op in ("+", "-"):
        if len(msg.params) < 2 or not msg.params[1].strip(","):
            client.numeric(N.ERR_NEEDMOREPARAMS, "MONITOR", "Not enough parameters")
            return
        targets = [t for t in msg.params[1].split(",") if t]
        if op == "+":
            add(server, client, targets)
        else:
            remove(server, client, targets)
    elif op == "C":
        clear(server, client)
    elif op == "L":
        send_list(server, client)
    elif op == "S":
        send_status(server, client)
    else:
        client.numeric(N.ERR_UNKNOWNERROR, "MONITOR", sub,
                       "Unknown MONITOR subcommand: use +, -, C, L or S")


def add(server, client, targets: list[str]) -> None:
    limit = server.config.limits.monitor
    watching = client.monitoring if client.monitoring is not None else set()
    online: list[str] = []
    offline: list[str] = []
    for i, target in enumerate(targets):
        if not valid_nick(target, MAX_TARGET_LEN):
            continue
        folded = fold(target)
        if folded not in watching:
            if len(watching) >= limit:
                client.numeric(N.ERR_MONLISTFULL, str(limit), ",".join(targets[i:]),
                               "Monitor list is full.")
                break
            watching.add(folded)
            server.monitors.setdefault(folded, set()).add(client)
        user = server.users.get(folded)
        if user is not None:
            online.append(user.source)
        else:
            offline.append(target)
    client.monitoring = watching or None
    send_chunked(server, client, N.RPL_MONONLINE, online)
    send_chunked(server, client, N.RPL_MONOFFLINE, offline)


def remove(server, client, targets: list[str]) -> None:
    if not client.monitoring:
        return
    for target in targets:
        folded = fold(target)
        if folded in client.monitoring:
            client.monitoring.discard(folded)
            _unwatch(server, client, folded)
    if not client.monitoring:
        client.monitoring = None


def clear(server, client) -> None:
    for folded in client.monitoring or ():
        _unwatch(server, client, folded)
    client.monitoring = None


def _unwatch(server, client, folded: str) -> None:
    watchers = server.monitors.get(folded)
    if watchers is not None:
        watchers.discard(client)
        if not watchers:
            del server.monitors[folded]


def send_list(server, client) -> None:
    send_chunked(server, client, N.RPL_MONLIST, sorted(client.monitoring or ()))
    client.numeric(N.RPL_ENDOFMONLIST, "End of MONITOR list")


def send_status(server, client) -> None:
    online: list[str] = []
    offline: list[str] = []
    for folded in sorted(client.monitoring or ()):
        user = server.users.get(folded)
        if user is not None:
            online.append(user.source)
        else:
            offline.append(folded)
    send_chunked(server, client, N.RPL_MONONLINE, online)
    send_chunked(server, client, N.RPL_MONOFFLINE, offline)


def send_chunked(server, client, code: str, items: list[str]) -> None:
    """One numeric per batch of comma-joined items, each line within 512 bytes."""
    if not items:
        return
    # ":server CODE nick :" + items + CRLF
    room = MAX_LINE_BODY - 2 - len(f":{server.name} {code} {client.display_nick} :".encode())
    chunk: list[str] = []
    size = 0
    for item in items:
        n = len(item.encode("utf-8", "surrogateescape"))
        if chunk and size + 1 + n > room:
            client.numeric(code, ",".join(chunk))
            chunk, size = [], 0
        size += n + (1 if chunk else 0)
        chunk.append(item)
    client.numeric(code, ",".join(chunk))
