"""PRIVMSG, NOTICE and TAGMSG: the fan-out hot path.

A handler checks the command and emits one Message event per target; the router
(ircd/routing.py) serialises it once per tag form in use and appends it to each
recipient's buffer, nothing else per recipient.
"""

from __future__ import annotations

import time

from ..protocol import numerics as N
from ..protocol.casemap import CHANTYPES, fold
from .checks import channel_for


def privmsg(server, client, msg) -> None:
    _send(server, client, msg, "PRIVMSG")


def notice(server, client, msg) -> None:
    _send(server, client, msg, "NOTICE")


def tagmsg(server, client, msg) -> None:
    _send(server, client, msg, "TAGMSG")


def _client_tags(msg) -> dict | None:
    """The client-only tags to relay (their size was checked as the line was read)."""
    tags = {k: v for k, v in msg.tags.items() if k.startswith("+")}
    return tags or None


def _send(server, client, msg, command) -> None:
    user = client.user
    params = msg.params
    if not params or not params[0]:
        client.numeric(N.ERR_NORECIPIENT, f"No recipient given ({command})")
        return
    if command == "TAGMSG":
        text = None
        tags = _client_tags(msg)
        if not tags:
            return  # nothing to deliver; not an error
    else:
        if len(params) < 2 or params[1] == "":
            client.numeric(N.ERR_NOTEXTTOSEND, "No text to send")
            return
        text = params[1]
        tags = _client_tags(msg) if msg.tags else None
        user.last_active = time.monotonic()
    first = params[0]
    if "," not in first:
        targets = (first,)
        seen = None
    else:
        targets = first.split(",")
        limit = server.config.limits.max_targets
        if len(targets) > limit:
            client.numeric(N.ERR_TOOMANYTARGETS, first,
                           f"Too many recipients, at most {limit} per message")
            return
        seen = set()
    # RFC 1459 4.4.2 forbids error replies to NOTICE; our delivery contract (DESIGN.md)
    # says nothing is dropped without a word, so NOTICE failures are reported as for
    # PRIVMSG, as InspIRCd and Solanum do. Numerics cannot start a reply loop between bots.
    for target in targets:
        if not target:
            continue
        if seen is not None:
            folded = fold(target)
            if folded in seen:
                continue      # the same recipient twice in one line gets it once
            seen.add(folded)
        if target[0] in CHANTYPES:
            _to_channel(server, client, user, command, target, "", text, tags)
            continue
        name = target.lstrip("@+")
        if name is target:
            _to_user(server, client, user, command, target, text, tags)
        elif name and name[0] in CHANTYPES:
            _to_channel(server, client, user, command, name, target[:len(target) - len(name)],
                        text, tags)
        else:
            client.numeric(N.ERR_NOSUCHNICK, target, "No such nick/channel")


def _to_channel(server, client, user, command, name, status, text, tags) -> None:
    chan = channel_for(server, client, name)
    if chan is None:
        return
    if not chan.can_speak(user):
        if user not in chan.members and "n" in chan.modes:
            why = "Cannot send to channel (no external messages, +n)"
        elif "m" in chan.modes and not chan.members.get(user):
            why = "Cannot send to channel (moderated, +m)"
        else:
            why = "Cannot send to channel (you are banned)"
        client.numeric(N.ERR_CANNOTSENDTOCHAN, chan.name, why)
        return
    server.emit(server.new_message(command, user, chan.name, status, text, tags), client)


def _hold(server, client, user, command, away, text, tags) -> None:
    """The recipient left in a netsplit: keep the message for when it comes back."""
    uid, nick = away
    event = server.new_message(command, user, uid, "", text, tags)
    if not server.holds.hold(client, nick, uid, event):
        client.report("FAIL", command, "NOT_DELIVERED", nick, event.msgid,
                      f"Your message to {nick} was not delivered: too many messages are "
                      "already waiting for them")
        return
    client.report("WARN", command, "QUEUED", nick, event.msgid,
                  f"queued: {nick}'s server is unreachable; the message waits up to "
                  f"{server.config.limits.hold_seconds:.0f} seconds for it to come back")


def _to_user(server, client, user, command, target, text, tags) -> None:
    dest = server.find_user(target)
    if dest is None:
        away = server.registry.split_away.get(fold(target))
        if away is not None and command != "TAGMSG" and server.config.limits.hold_seconds > 0:
            _hold(server, client, user, command, away, text, tags)
        else:
            client.numeric(N.ERR_NOSUCHNICK, target, "No such nick/channel")
        return
    event = server.new_message(command, user, dest.uid, "", text, tags)
    delivered, line = server.emit(event, client)
    if not delivered:
        why = ("their connection is not reading and is being closed (SendQ exceeded)"
               if dest.session is not None else "their server cannot be reached")
        client.report("FAIL", command, "NOT_DELIVERED", dest.nick, event.msgid,
                      f"Your message to {dest.nick} was not delivered: {why}")
    if command == "PRIVMSG" and dest.away is not None:
        client.numeric(N.RPL_AWAY, dest.nick, dest.away)
