"""MODE for users (i, o, w, B) and channels (b e I k l i m n s t o v)."""

from __future__ import annotations

from linkproto import events as ev

from ..protocol import numerics as N
from ..protocol.casemap import CHANTYPES, fold
from ..state.channel import LIST_MODES
from ..state.masks import normalise_mask
from ..state.modes import parse_channel_modes
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
    changes = []
    unknown = False
    state = set(user.modes)
    for letter in msg.params[1]:
        if letter in "+-":
            adding = letter == "+"
        elif letter in SETTABLE_USER_MODES or (letter == "o" and not adding):
            if adding != (letter in state):
                changes.append((adding, letter))
                (state.add if adding else state.discard)(letter)
        elif letter != "o":
            unknown = True
    if unknown:
        client.numeric(N.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag")
    if changes:
        server.emit(ev.UserModeChange(server.stamp(), user.uid, tuple(changes)), client)


def channel_mode(server, client, msg) -> None:
    user = client.user
    chan = channel_for(server, client, msg.params[0])
    if chan is None:
        return
    if len(msg.params) == 1:
        modes, args = chan.mode_string(reveal_key=user in chan.members)
        client.numeric(N.RPL_CHANNELMODEIS, chan.name, modes, *args)
        client.numeric(N.RPL_CREATIONTIME, chan.name, str(chan.created_ts))
        return
    changes, unknown = parse_channel_modes(msg.params[1], msg.params[2:])
    for letter in unknown:
        client.numeric(N.ERR_UNKNOWNMODE, letter, "is an unknown mode char to me")
    is_op = chan.is_op(user)
    stamp = server.stamp()
    planned = []
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
        change = _plan(server, client, chan, user, adding, letter, arg, planned, stamp)
        if change is not None:
            planned.append(change)
    if denied:
        client.numeric(N.ERR_CHANOPRIVSNEEDED, chan.name, "You're not a channel operator")
    if planned:
        # the registry applies the changes in order and the router announces only those
        # that changed something
        server.emit(ev.ChannelModeChange(stamp, chan.name, user.uid, tuple(planned)), client)


def _send_list(client, chan, letter) -> None:
    item, end, text = LIST_REPLIES[letter]
    for entry in chan.lists[letter]:
        client.numeric(item, chan.name, entry.mask, entry.setter, str(entry.set_at))
    client.numeric(end, chan.name, text)


def _plan(server, client, chan, user, adding, letter, arg, planned, stamp):
    """One change as an event part, or None after telling the client why not."""
    if letter in "ov":
        if arg is None:
            return None
        target = server.find_user(arg)
        if target is None:
            client.numeric(N.ERR_NOSUCHNICK, arg, "No such nick/channel")
            return None
        if target not in chan.members:
            client.numeric(N.ERR_USERNOTINCHANNEL, target.nick, chan.name, "They aren't on that channel")
            return None
        return ev.StatusMode(letter, target.uid, adding)
    if letter in LIST_MODES:
        mask = normalise_mask(arg)
        folded = fold(mask)
        if adding:
            if folded not in chan.adds[letter]:
                pending = sum(1 for c in planned if type(c) is ev.ListAdd and c.letter == letter)
                if len(chan.lists[letter]) + pending >= server.config.limits.max_list:
                    client.numeric("478", chan.name, mask, "Channel list is full")
                    return None
            return ev.ListAdd(letter, mask, user.source, stamp.seconds)
        observed = chan.list_tags(letter, mask)
        if any(type(c) is ev.ListAdd and c.letter == letter and fold(c.mask) == folded
               for c in planned):
            observed += (stamp,)     # added earlier in this same MODE
        existing = chan.adds[letter].get(folded)
        shown = existing[0].mask if existing else mask
        return ev.ListRemove(letter, shown, observed)
    if letter == "k":
        if adding:
            if not arg or " " in arg or "," in arg or len(arg) > 23:
                client.numeric(N.ERR_INVALIDKEY, chan.name, "Key is not well-formed")
                return None
            return ev.KeyMode(arg)
        return ev.KeyMode(None)
    if letter == "l":
        if adding:
            if arg is None:
                return None
            if not arg.isdigit() or int(arg) <= 0:
                client.numeric(N.ERR_INVALIDMODEPARAM, chan.name, "l", arg or "*",
                               "Invalid limit mode parameter, it must be a positive number")
                return None
            return ev.LimitMode(int(arg))
        return ev.LimitMode(None)
    return ev.FlagMode(letter, adding)
