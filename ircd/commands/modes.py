"""MODE for users (i, o, w, B) and channels (b e I k l i m n s t o v)."""

from __future__ import annotations

import time

from ..protocol import numerics as N
from ..protocol.casemap import CHANTYPES, fold
from ..routing import Outgoing
from ..state.channel import LIST_MODES, ListEntry
from ..state.masks import normalise_mask
from ..state.modes import format_mode_changes, parse_channel_modes
from .checks import channel_for

SETTABLE_USER_MODES = "iwB"
MAX_PARAM_MODES = 4
LIST_REPLIES = {
    "b": (N.RPL_BANLIST, N.RPL_ENDOFBANLIST, "End of channel ban list"),
    "e": (N.RPL_EXCEPTLIST, N.RPL_ENDOFEXCEPTLIST, "End of channel exception list"),
    "I": (N.RPL_INVITELIST, N.RPL_ENDOFINVITELIST, "End of channel invite list"),
}


def mode(server, client, msg) -> None:
    target = msg.params[0]
    if target[:1] in CHANTYPES:
        channel_mode(server, client, msg)
    else:
        user_mode(server, client, msg)


def user_mode(server, client, msg) -> None:
    user = client.user
    target = server.find_user(msg.params[0])
    if target is None:
        client.numeric(N.ERR_NOSUCHNICK, msg.params[0], "No such nick/channel")
        return
    if target is not user:
        client.numeric(N.ERR_USERSDONTMATCH, "Can't change mode for other users")
        return
    if len(msg.params) == 1:
        client.numeric(N.RPL_UMODEIS, user.mode_string())
        return
    adding = True
    applied = []
    unknown = False
    for letter in msg.params[1]:
        if letter in "+-":
            adding = letter == "+"
        elif letter in SETTABLE_USER_MODES or (letter == "o" and not adding):
            if server.set_user_mode(user, letter, adding):
                applied.append((adding, letter, None))
        elif letter != "o":
            unknown = True
    if unknown:
        client.numeric(N.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag")
    if applied:
        text, _ = format_mode_changes(applied)
        client.send(user.source, "MODE", user.nick, text)


def channel_mode(server, client, msg) -> None:
    user = client.user
    chan = channel_for(server, client, msg.params[0])
    if chan is None:
        return
    if len(msg.params) == 1:
        modes, args = chan.mode_string(reveal_key=user in chan.members)
        client.numeric(N.RPL_CHANNELMODEIS, chan.name, modes, *args)
        client.numeric(N.RPL_CREATIONTIME, chan.name, str(chan.created))
        return
    changes, unknown = parse_channel_modes(msg.params[1], msg.params[2:])
    for letter in unknown:
        client.numeric(N.ERR_UNKNOWNMODE, letter, "is an unknown mode char to me")
    is_op = chan.is_op(user)
    applied = []
    param_count = 0
    denied = False
    for adding, letter, arg in changes:
        if letter in LIST_MODES and arg is None:
            _send_list(client, chan, letter)
            continue
        if not is_op:
            denied = True
            continue
        if arg is not None:
            param_count += 1
            if param_count > MAX_PARAM_MODES:
                continue
        change = _apply(server, client, chan, user, adding, letter, arg)
        if change is not None:
            applied.append(change)
    if denied:
        client.numeric(N.ERR_CHANOPRIVSNEEDED, chan.name, "You're not a channel operator")
    if applied:
        text, args = format_mode_changes(applied)
        event = Outgoing(user.source, "MODE", (chan.name, text, *args), trailing=False)
        server.send_to_clients([m.client for m in chan.members if m.client is not None], event)


def _send_list(client, chan, letter) -> None:
    item, end, text = LIST_REPLIES[letter]
    for entry in chan.lists[letter]:
        client.numeric(item, chan.name, entry.mask, entry.setter, str(entry.set_at))
    client.numeric(end, chan.name, text)


def _apply(server, client, chan, user, adding, letter, arg):
    """Apply one change; return it as it should be announced, or None if it changed nothing."""
    if letter in "ov":
        if arg is None:
            return None
        target = server.find_user(arg)
        if target is None:
            client.numeric(N.ERR_NOSUCHNICK, arg, "No such nick/channel")
            return None
        status = chan.members.get(target)
        if status is None:
            client.numeric(N.ERR_USERNOTINCHANNEL, target.nick, chan.name, "They aren't on that channel")
            return None
        if adding == (letter in status):
            return None
        chan.members[target] = (status + letter) if adding else status.replace(letter, "")
        return adding, letter, target.nick
    if letter in LIST_MODES:
        mask = normalise_mask(arg)
        entries = chan.lists[letter]
        existing = next((e for e in entries if fold(e.mask) == fold(mask)), None)
        if adding:
            if existing is not None:
                return None
            if len(entries) >= server.config.limits.max_list:
                client.numeric("478", chan.name, mask, "Channel list is full")
                return None
            entries.append(ListEntry(mask, user.source, int(time.time())))
        else:
            if existing is None:
                return None
            entries.remove(existing)
            mask = existing.mask
        return adding, letter, mask
    if letter == "k":
        if adding:
            if not arg or " " in arg or "," in arg or len(arg) > 23:
                client.numeric(N.ERR_INVALIDKEY, chan.name, "Key is not well-formed")
                return None
            chan.key = arg
            return True, "k", arg
        if chan.key is None:
            return None
        chan.key = None
        return False, "k", "*"
    if letter == "l":
        if adding:
            if arg is None:
                return None
            if not arg.isdigit() or int(arg) <= 0:
                client.numeric(N.ERR_INVALIDMODEPARAM, chan.name, "l", arg or "*",
                               "Invalid limit mode parameter, it must be a positive number")
                return None
            chan.limit = int(arg)
            return True, "l", str(chan.limit)
        if chan.limit is None:
            return None
        chan.limit = None
        return False, "l", None
    if adding == (letter in chan.modes):
        return None
    if adding:
        chan.modes.add(letter)
    else:
        chan.modes.discard(letter)
    return adding, letter, None
