"""Channel membership and metadata: JOIN, PART, TOPIC, NAMES, LIST, INVITE, KICK."""

from __future__ import annotations

import time

from linkproto import events as ev

from ..protocol import numerics as N
from ..protocol.casemap import CHANTYPES, fold, valid_channel
from ..protocol.message import build_line, truncate_utf8
from ..state.masks import mask_matches
from .bulk import send_bulk
from .checks import channel_for


def join(server, client, msg) -> None:
    user = client.user
    if msg.params[0] == "0":
        for chan in list(user.channels.values()):
            part_channel(server, user, chan, "Left all channels")
        return
    names = msg.params[0].split(",")
    if not any(names):
        client.numeric(N.ERR_NEEDMOREPARAMS, "JOIN", "Not enough parameters")
        return
    keys = msg.params[1].split(",") if len(msg.params) > 1 else []
    lim = server.config.limits
    for i, name in enumerate(names):
        if not name:
            continue
        key = keys[i] if i < len(keys) else None
        too_long = len(name.encode("utf-8", "surrogateescape")) > lim.channellen
        if name[0] not in CHANTYPES or too_long:   # past CHANNELLEN no such channel exists
            client.numeric(N.ERR_NOSUCHCHANNEL, name, "No such channel")
            continue
        if not valid_channel(name, lim.channellen):
            client.numeric(N.ERR_BADCHANMASK, name, "Invalid channel name")
            continue
        chan = server.find_channel(name)
        if chan is not None and user in chan.members:
            continue
        if len(user.channels) >= lim.max_channels:
            client.numeric(N.ERR_TOOMANYCHANNELS, name, "You have joined too many channels")
            continue
        if chan is None:
            # A truly new channel: its creator gets ops. A channel this server still
            # knows of (even empty, kept through a netsplit) grants nothing.
            created = server.stamp()
            server.emit(ev.ChannelCreate(created, name))
            add_member(server, client, name, "o", created)
        else:
            refusal = _join_refusal(chan, user, key)
            if refusal is not None:
                client.numeric(refusal[0], chan.name, refusal[1])
                continue
            add_member(server, client, name, "")


def _join_refusal(chan, user, key):
    invited = user.uid in chan.invited
    if chan.key is not None and key != chan.key:
        return N.ERR_BADCHANNELKEY, "Cannot join channel (+k) - bad key"
    if chan.limit is not None and len(chan.members) >= chan.limit and not invited:
        return N.ERR_CHANNELISFULL, "Cannot join channel (+l) - channel is full"
    if "i" in chan.modes and not invited and not chan.is_invex(user):
        return N.ERR_INVITEONLYCHAN, "Cannot join channel (+i) - you must be invited"
    if chan.is_banned(user) and not invited:
        return N.ERR_BANNEDFROMCHAN, "Cannot join channel (+b) - you are banned"
    return None


def add_member(server, client, name: str, status: str, created=None) -> None:
    user = client.user
    server.emit(ev.ChannelJoin(server.stamp(), name, user.uid, status, created), client)
    chan = server.find_channel(name)
    if chan.topic:
        send_topic(server, client, chan)
    if "draft/no-implicit-names" not in client.caps:
        send_names(server, client, chan)


def part_channel(server, user, chan, reason: str | None) -> None:
    server.emit(ev.ChannelPart(server.stamp(), chan.name, user.uid, reason), user.session)


def part(server, client, msg) -> None:
    user = client.user
    reason = msg.params[1] if len(msg.params) > 1 and msg.params[1] else None
    for name in msg.params[0].split(","):
        if not name:
            continue
        chan = channel_for(server, client, name, member=True)
        if chan is not None:
            part_channel(server, user, chan, reason)


def send_topic(server, client, chan) -> None:
    client.numeric(N.RPL_TOPIC, chan.name, chan.topic)
    client.numeric(N.RPL_TOPICWHOTIME, chan.name, chan.topic_setter, str(chan.topic_time))


def topic(server, client, msg) -> None:
    user = client.user
    chan = channel_for(server, client, msg.params[0])
    if chan is None:
        return
    member = user in chan.members
    if len(msg.params) == 1:
        if not member and "s" in chan.modes:
            client.numeric(N.ERR_NOTONCHANNEL, chan.name, "You're not on that channel")
        elif chan.topic:
            send_topic(server, client, chan)
        else:
            client.numeric(N.RPL_NOTOPIC, chan.name, "No topic is set")
        return
    if not member:
        client.numeric(N.ERR_NOTONCHANNEL, chan.name, "You're not on that channel")
        return
    if "t" in chan.modes and not chan.is_op(user):
        client.numeric(N.ERR_CHANOPRIVSNEEDED, chan.name, "You're not a channel operator")
        return
    text = truncate_utf8(msg.params[1], server.config.limits.topiclen)
    server.emit(ev.TopicChange(server.stamp(), chan.name, user.uid, user.source, text), client)


def names_entry(chan, member, client) -> str:
    prefix = chan.prefixes(member, "multi-prefix" in client.caps)
    if "userhost-in-names" in client.caps:
        return prefix + member.source
    return prefix + member.nick


def send_names(server, client, chan) -> None:
    user = client.user
    visible = user in chan.members or "s" not in chan.modes
    if visible:
        symbol = "@" if "s" in chan.modes else "="
        head = f":{server.name} 353 {user.nick} {symbol} {chan.name} :"
        room = 510 - len(head.encode())
        line: list[str] = []
        size = 0
        for member in chan.members:
            if "i" in member.modes and user not in chan.members:
                continue
            entry = names_entry(chan, member, client)
            if line and size + len(entry) + 1 > room:
                client.numeric(N.RPL_NAMREPLY, symbol, chan.name, " ".join(line))
                line, size = [], 0
            line.append(entry)
            size += len(entry) + 1
        if line:
            client.numeric(N.RPL_NAMREPLY, symbol, chan.name, " ".join(line))
    client.numeric(N.RPL_ENDOFNAMES, chan.name, "End of /NAMES list.")


def names(server, client, msg) -> None:
    if not msg.params or not msg.params[0]:
        client.numeric(N.RPL_ENDOFNAMES, "*", "End of /NAMES list.")
        return
    for name in msg.params[0].split(",")[:1]:
        chan = server.find_channel(name)
        if chan is None:
            client.numeric(N.RPL_ENDOFNAMES, name, "End of /NAMES list.")
        else:
            send_names(server, client, chan)


def _list_filter(token: str):
    """One ELIST condition as a predicate over a channel (C, M, N, T, U)."""
    now = time.time()
    if token[:1] in "<>" and token[1:].isdigit():
        n = int(token[1:])
        return (lambda c: len(c.members) > n) if token[0] == ">" else (lambda c: len(c.members) < n)
    if token[:1] in "CT" and token[1:2] in "<>" and token[2:].isdigit():
        minutes = int(token[2:])

        def stamp(c, field=token[0]):
            return c.created_ts if field == "C" else c.topic_time
        if token[1] == "<":   # set less than N minutes ago
            return lambda c: stamp(c) > 0 and now - stamp(c) < minutes * 60
        return lambda c: stamp(c) > 0 and now - stamp(c) > minutes * 60
    if token.startswith("!"):
        return lambda c: not mask_matches(token[1:], c.name)
    if "*" in token or "?" in token:
        return lambda c: mask_matches(token, c.name)
    folded = fold(token)
    return lambda c: c.folded == folded


def list_(server, client, msg) -> None:
    user = client.user
    filters = []
    if msg.params and msg.params[0]:
        alternatives = [_list_filter(t) for t in msg.params[0].split(",") if t]
        filters.append(lambda c: any(f(c) for f in alternatives))
    client.numeric(N.RPL_LISTSTART, "Channel", "Users  Name")
    snapshot = list(server.channels.values())

    def entries():
        for chan in snapshot:
            if chan.folded not in server.channels:
                continue       # gone while the reply was being sent
            if "s" in chan.modes and user not in chan.members:
                continue
            if all(f(chan) for f in filters):
                modes, args = chan.mode_string(reveal_key=user in chan.members)
                yield build_line(server.name, N.RPL_LIST, (
                    user.nick, chan.name, str(len(chan.members)),
                    f"[{' '.join([modes, *args])}] {chan.topic}"), trailing=True)

    send_bulk(server, client, entries(), lambda: client.numeric(N.RPL_LISTEND, "End of /LIST"))


def invite(server, client, msg) -> None:
    user = client.user
    if len(msg.params) < 2:
        client.numeric(N.ERR_NEEDMOREPARAMS, "INVITE", "Not enough parameters")
        return
    target = server.find_user(msg.params[0])
    if target is None:
        client.numeric(N.ERR_NOSUCHNICK, msg.params[0], "No such nick/channel")
        return
    chan = channel_for(server, client, msg.params[1], member=True)
    if chan is None:
        return
    if target in chan.members:
        client.numeric(N.ERR_USERONCHANNEL, target.nick, chan.name, "is already on channel")
        return
    if "i" in chan.modes and not chan.is_op(user):
        client.numeric(N.ERR_CHANOPRIVSNEEDED, chan.name, "You're not a channel operator")
        return
    client.numeric(N.RPL_INVITING, target.nick, chan.name)
    if target.away is not None:
        client.numeric(N.RPL_AWAY, target.nick, target.away)
    server.emit(ev.ChannelInvite(server.stamp(), chan.name, user.uid, target.uid), client)


def kick(server, client, msg) -> None:
    """KICK <channel>{,<channel>} <nick>{,<nick>} [:reason] (RFC 2812 3.2.8): one channel
    and several nicks, or channels and nicks in pairs. Each kick goes out on its own."""
    user = client.user
    channels = msg.params[0].split(",")
    nicks = msg.params[1].split(",")
    if len(channels) == 1:
        pairs = [(channels[0], nick) for nick in nicks]
    elif len(channels) == len(nicks):
        pairs = list(zip(channels, nicks))
    else:
        client.numeric(N.ERR_NEEDMOREPARAMS, "KICK", "Not enough parameters")
        return
    limit = server.config.limits
    reason = msg.params[2] if len(msg.params) > 2 and msg.params[2] else user.nick
    reason = truncate_utf8(reason, limit.kicklen)
    checked: dict = {}     # folded channel name -> Channel, or None once refused
    if len(pairs) > limit.max_targets:
        rest = ",".join(nick for _, nick in pairs[limit.max_targets:])
        client.numeric(N.ERR_TOOMANYTARGETS, rest,
                       f"Too many targets: at most {limit.max_targets} per KICK, these were not kicked")
    for name, nick in pairs[:limit.max_targets]:
        if fold(name) not in checked:
            checked[fold(name)] = channel_for(server, client, name, op=True)
        chan = checked[fold(name)]
        if chan is None:
            continue
        target = server.find_user(nick)
        if target is None:
            client.numeric(N.ERR_NOSUCHNICK, nick, "No such nick/channel")
            continue
        if target not in chan.members:
            client.numeric(N.ERR_USERNOTINCHANNEL, target.nick, chan.name, "They aren't on that channel")
            continue
        server.emit(ev.ChannelKick(server.stamp(), chan.name, user.uid, target.uid, reason), client)
