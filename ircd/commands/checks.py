"""Checks several commands share, each answering with the numeric a client expects."""

from __future__ import annotations

from ..protocol import numerics as N


def channel_for(server, client, name: str, *, member: bool = False, op: bool = False):
    """The channel `name`, or None after telling the client why it can't act on it
    (403 no such channel, 442 not on it, 482 not an operator there)."""
    chan = server.find_channel(name)
    if chan is None:
        client.numeric(N.ERR_NOSUCHCHANNEL, name, "No such channel")
        return None
    user = client.user
    if (member or op) and user not in chan.members:
        client.numeric(N.ERR_NOTONCHANNEL, chan.name, "You're not on that channel")
        return None
    if op and not chan.is_op(user):
        client.numeric(N.ERR_CHANOPRIVSNEEDED, chan.name, "You're not a channel operator")
        return None
    return chan
