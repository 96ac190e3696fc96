"""PRIVMSG, NOTICE and TAGMSG: the fan-out hot path.

A message is serialised once per tag form in use (see Outgoing) and appended to each
recipient's buffer; nothing else happens per recipient.
"""

from __future__ import annotations

import time

from ..protocol import numerics as N
from ..protocol.casemap import CHANTYPES
from ..routing import Outgoing
from ..state.channel import PREFIX_TO_MODE, STATUS_MODES
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


def _write_uncaptured(client, data: bytes) -> None:
    """Deliver a message to a client as a message in its own right, outside the labeled
    response being collected for the command it is running (a message to oneself)."""
    saved, client.capture = client.capture, None
    try:
        client.write(data)
    finally:
        client.capture = saved


def _send(server, client, msg, command) -> None:
    user = client.user
    is_tagmsg = command == "TAGMSG"
    if not msg.params or not msg.params[0]:
        client.numeric(N.ERR_NORECIPIENT, f"No recipient given ({command})")
        return
    if not is_tagmsg and (len(msg.params) < 2 or msg.params[1] == ""):
        client.numeric(N.ERR_NOTEXTTOSEND, "No text to send")
        return
    tags = _client_tags(msg)
    if is_tagmsg and not tags:
        return  # nothing to deliver; not an error
    targets = msg.params[0].split(",")
    limit = server.config.limits.max_targets
    if len(targets) > limit:
        client.numeric(N.ERR_TOOMANYTARGETS, msg.params[0],
                       f"Too many recipients, at most {limit} per message")
        return
    text = None if is_tagmsg else msg.params[1]
    if not is_tagmsg:
        user.last_active = time.monotonic()
    # RFC 1459 4.4.2 forbids error replies to NOTICE; our delivery contract (DESIGN.md)
    # says nothing is dropped without a word, so NOTICE failures are reported as for
    # PRIVMSG, as InspIRCd and Solanum do. Numerics cannot start a reply loop between bots.
    for target in targets:
        if not target:
            continue
        name = target.lstrip("@+")
        status = target[:len(target) - len(name)]
        if status and not (name and name[0] in CHANTYPES):
            client.numeric(N.ERR_NOSUCHNICK, target, "No such nick/channel")
            continue
        if name[0] in CHANTYPES:
            _to_channel(server, client, user, command, target, name, status, text, tags)
        else:
            _to_user(server, client, user, command, target, text, tags)


def _to_channel(server, client, user, command, target, name, status, text, tags) -> None:
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
    params = (target,) if text is None else (target if status else chan.name, text)
    event = Outgoing(user.source, command, params, trailing=text is not None,
                     msgid=server.new_msgid(), client_tags=tags, account=user.account,
                     bot="B" in user.modes)
    forms = event.forms
    build = event.build
    if status:
        lowest = max(STATUS_MODES.index(PREFIX_TO_MODE[p]) for p in status)
        needed = STATUS_MODES[:lowest + 1]
        members = [m for m, st in chan.members.items() if any(s in st for s in needed)]
    else:
        members = chan.members
    if text is None:
        for member in members:
            c = member.client
            if c is not None and c is not client and "message-tags" in c.caps:
                m = c.tagmask
                c.write(forms[m] or build(m))
    else:
        for member in members:
            c = member.client
            if c is not None and c is not client:
                m = c.tagmask
                c.write(forms[m] or build(m))
    if _echo_wanted(client, text):
        client.write(event.for_client(client))


def _echo_wanted(client, text) -> bool:
    """echo-message, except that TAGMSG (text None) only goes to message-tags clients."""
    return "echo-message" in client.caps and (text is not None or "message-tags" in client.caps)


def _to_user(server, client, user, command, target, text, tags) -> None:
    dest = server.find_user(target)
    if dest is None:
        client.numeric(N.ERR_NOSUCHNICK, target, "No such nick/channel")
        return
    params = (dest.nick,) if text is None else (dest.nick, text)
    event = Outgoing(user.source, command, params, trailing=text is not None,
                     msgid=server.new_msgid(), client_tags=tags, account=user.account,
                     bot="B" in user.modes)
    c = dest.client
    if c is not None and (text is not None or "message-tags" in c.caps):
        if c is client:
            _write_uncaptured(c, event.for_client(c))
        else:
            c.write(event.for_client(c))
        if c.dead:     # the write overflowed the recipient's send queue: it never arrives
            client.report("FAIL", command, "NOT_DELIVERED", dest.nick, event.msgid,
                          f"Your message to {dest.nick} was not delivered: their connection "
                          "is not reading and is being closed (SendQ exceeded)")
    if _echo_wanted(client, text):
        client.write(event.for_client(client))
    if command == "PRIVMSG" and dest.away is not None:
        client.numeric(N.RPL_AWAY, dest.nick, dest.away)
