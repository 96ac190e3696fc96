"""A server's whole view of the network as events: what it sends a newly linked peer.

Each register goes with the stamp of its last write and each list addition (and each
removal it has seen) with its tag, so the peer merges the burst by the same rules as
live changes and both end with the same state. Pure: reads the registry, changes nothing.
"""

from __future__ import annotations

from linkproto import events as ev
from linkproto.clock import Stamp

from .channel import FLAG_MODES, LIST_MODES, STATUS_MODES


def burst(net, sid: str) -> list:
    """The events that tell a new peer everything this server knows. `sid` (this
    server) stamps the parts that have no stamp of their own."""
    out: list = []
    # servers, each after its uplink
    order = [net.sid]
    for s in order:
        order.extend(x.sid for x in net.servers.values() if x.uplink == s)
    for s in order[1:]:
        entry = net.servers[s]
        out.append(ev.ServerIntroduced(entry.stamp, s, entry.name, entry.description,
                                       entry.uplink))
    for user in net.users.values():
        out.append(ev.UserIntroduced(
            user.nick_stamp, user.uid, user.wanted, user.nick_stamp, user.ident, user.host,
            user.ip, user.realname, user.signon, "".join(sorted(user.modes)), user.away,
            user.account, user.secure))
    for chan in net.channels.values():
        out.extend(_channel(chan, sid))
    return out


def _channel(chan, sid: str) -> list:
    name = chan.name
    out: list = [ev.ChannelCreate(chan.created, name)]
    stamps = chan.stamps
    for letter in FLAG_MODES:
        if letter in stamps:
            out.append(ev.ChannelModeChange(stamps[letter], name, None,
                                            (ev.FlagMode(letter, letter in chan.modes),)))
    if "k" in stamps:
        out.append(ev.ChannelModeChange(stamps["k"], name, None, (ev.KeyMode(chan.key),)))
    if "l" in stamps:
        out.append(ev.ChannelModeChange(stamps["l"], name, None, (ev.LimitMode(chan.limit),)))
    if "topic" in stamps:
        out.append(ev.TopicChange(stamps["topic"], name, None, chan.topic_setter, chan.topic))
    for letter in LIST_MODES:
        for entries in chan.adds[letter].values():
            for e in entries:
                out.append(ev.ChannelModeChange(e.tag, name, None, (
                    ev.ListAdd(letter, e.mask, e.setter, e.set_at),)))
    removed: dict = {}
    for letter, folded, tag in chan.removed:
        removed.setdefault((letter, folded), []).append(tag)
    for (letter, folded), tags in sorted(removed.items()):
        out.append(ev.ChannelModeChange(Stamp(0, sid), name, None, (
            ev.ListRemove(letter, folded, tuple(sorted(tags))),)))
    for user, status in chan.members.items():
        created = chan.creator_ops.get(user)
        out.append(ev.ChannelJoin(chan.joined[user], name, user.uid, status, created))
        for letter in STATUS_MODES:       # status set by MODE after the join, with its stamp
            stamp = chan.status_stamps.get((user.uid, letter))
            if stamp is not None:
                out.append(ev.ChannelModeChange(stamp, name, None, (
                    ev.StatusMode(letter, user.uid, letter in status),)))
    return out
