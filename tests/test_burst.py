"""Two servers that exchange bursts end with the same state, whatever each did alone:
the netjoin merge, checked on the pure registry."""

from __future__ import annotations

from hypothesis import given, strategies as st

from linkproto import events as ev
from linkproto.clock import Stamp
from ircd.state.burst import burst
from ircd.state.registry import Network

SERVERS = {"1AA": "a.test", "2BB": "b.test"}


def state_digest(net: Network) -> str:
    """The digest without the server list (each side lists itself differently)."""
    import hashlib
    h = hashlib.sha256()
    for uid in sorted(net.users):
        u = net.users[uid]
        h.update(repr((uid, u.nick, u.ident, u.host, u.realname, sorted(u.modes), u.away)).encode())
    for folded in sorted(net.channels):
        h.update(repr(net.channels[folded].digest_items()).encode())
    return h.hexdigest()


def side(sid: str, actions) -> Network:
    """One server alone: its two users, the shared channel #c and what they did to it."""
    net = Network(sid, SERVERS[sid])
    uids = [f"{sid}00000{i}" for i in (1, 2)]
    for i, uid in enumerate(uids):
        s = Stamp(10 + i, sid)
        net.apply(ev.UserIntroduced(s, uid, f"u{uid}", s, "~u", "h", "", "r", 0))
    created = Stamp(100 if sid == "1AA" else 90, sid)
    net.apply(ev.ChannelCreate(created, "#c"))
    net.apply(ev.ChannelJoin(Stamp(created.t + 1, sid), "#c", uids[0], "o", created))
    net.apply(ev.ChannelJoin(Stamp(created.t + 2, sid), "#c", uids[1]))
    for t, kind, arg in actions:
        stamp = Stamp(200 + t, sid)
        if kind == "topic":
            net.apply(ev.TopicChange(stamp, "#c", uids[0], "x", arg))
        elif kind == "flag":
            net.apply(ev.ChannelModeChange(stamp, "#c", uids[0], (ev.FlagMode(arg[0], arg[1]),)))
        elif kind == "key":
            net.apply(ev.ChannelModeChange(stamp, "#c", uids[0], (ev.KeyMode(arg),)))
        elif kind == "ban":
            net.apply(ev.ChannelModeChange(stamp, "#c", uids[0], (ev.ListAdd("b", arg, "x", 0),)))
        elif kind == "unban":
            chan = net.find_channel("#c")
            net.apply(ev.ChannelModeChange(stamp, "#c", uids[0], (
                ev.ListRemove("b", arg, chan.list_tags("b", arg)),)))
        elif kind == "voice":
            net.apply(ev.ChannelModeChange(stamp, "#c", uids[0], (ev.StatusMode("v", uids[1], arg),)))
    return net


actions = st.lists(st.tuples(
    st.integers(0, 50),
    st.sampled_from(["topic", "flag", "key", "ban", "unban", "voice"]),
    st.sampled_from(["a", "b"])), max_size=8, unique_by=lambda a: a[0]).map(
    lambda xs: [(t, k, {"topic": arg, "key": arg, "ban": f"{arg}!*@*", "unban": f"{arg}!*@*",
                        "flag": ("m" if arg == "a" else "i", t % 2 == 0),
                        "voice": arg == "a"}[k]) for t, k, arg in xs])


def link(a: Network, b: Network) -> None:
    """What the link layer does: each introduces the other, then applies its burst."""
    burst_a, burst_b = burst(a, a.sid), burst(b, b.sid)
    a.apply(ev.ServerIntroduced(Stamp(1000, b.sid), b.sid, b.name, "", a.sid))
    b.apply(ev.ServerIntroduced(Stamp(1000, a.sid), a.sid, a.name, "", b.sid))
    for e in burst_b:
        a.apply(e)
    for e in burst_a:
        b.apply(e)


@given(actions, actions)
def test_bursts_merge_both_sides_to_the_same_state(acts_a, acts_b):
    a, b = side("1AA", acts_a), side("2BB", acts_b)
    link(a, b)
    assert state_digest(a) == state_digest(b)
    chan = a.find_channel("#c")
    assert len(chan.members) == 4
    assert chan.created == Stamp(90, "2BB")          # the older channel is the real one
    ops = sorted(u.uid for u, s in chan.members.items() if "o" in s)
    assert ops == ["2BB000001"]                       # 1AA's creator ops yielded


def test_a_burst_rebuilds_the_senders_state_on_an_empty_server():
    a = side("1AA", [(1, "topic", "hello"), (2, "ban", "x!*@*"), (3, "flag", ("m", True)),
                     (4, "ban", "y!*@*"), (5, "unban", "x!*@*"), (6, "key", "k")])
    empty = Network("2BB", "b.test")
    empty.apply(ev.ServerIntroduced(Stamp(1000, "1AA"), "1AA", "a.test", "", "2BB"))
    for e in burst(a, "1AA"):
        empty.apply(e)
    assert state_digest(empty) == state_digest(a)
    chan = empty.find_channel("#c")
    assert chan.topic == "hello" and chan.key == "k" and "m" in chan.modes
    assert [e.mask for e in chan.lists["b"]] == ["y!*@*"]
