"""The network registry on its own: pure state, no sockets, time passed in as stamps."""

from __future__ import annotations

import pytest

from linkproto import events as ev
from linkproto.clock import HybridClock, Stamp
from ircd.state.registry import Network, StateError


class Clock:
    def __init__(self):
        self.now = 1_000_000
        self.clock = HybridClock("1AA", lambda: self.now)

    def __call__(self):
        return self.clock.tick()


def user(stamp, uid, nick):
    return ev.UserIntroduced(stamp, uid, nick, stamp, "~u", "host", "127.0.0.1", "Real", 0)


@pytest.fixture
def net():
    """a.test (us, 1AA) with b.test (2BB) linked to it and c.test (3CC) behind b."""
    n = Network("1AA", "a.test")
    n.apply(ev.ServerIntroduced(Stamp(1, "1AA"), "2BB", "b.test", "", "1AA"))
    n.apply(ev.ServerIntroduced(Stamp(2, "2BB"), "3CC", "c.test", "", "2BB"))
    return n


def test_hybrid_clock_follows_wall_time_and_never_goes_back():
    c = Clock()                                     # the wall clock reads 1,000,000 ms
    a = c()
    assert a == Stamp(1_000_000_000, "1AA") and a.ms == 1_000_000 and a.seconds == 1000
    assert c() == Stamp(1_000_000_001, "1AA")        # same millisecond: still later
    c.now -= 5000                                   # the wall clock steps back
    assert c() == Stamp(1_000_000_002, "1AA")
    ahead = Stamp(2_000_000_000, "2BB")
    assert c.clock.observe(ahead) == 2_000_000 - c.now   # skew reported, in ms
    assert c() == Stamp(2_000_000_001, "1AA")       # causality: after what we received


def test_a_busy_clock_stays_with_real_time():
    """A thousand events in one millisecond (100,000 messages a second is a busy
    network) do not push the clock past the next millisecond."""
    c = Clock()
    stamps = [c() for _ in range(1000)]
    assert len(set(stamps)) == 1000 and stamps == sorted(stamps)
    assert all(s.ms == 1_000_000 for s in stamps)
    c.now += 1
    assert c().ms == 1_000_001


def test_servers_have_directions_and_ids_are_not_reused(net):
    assert net.servers["3CC"].direction == "2BB"
    assert net.peers == {"2BB"}
    with pytest.raises(StateError, match="already on the network"):
        net.apply(ev.ServerIntroduced(Stamp(3, "2BB"), "3CC", "x.test", "", "2BB"))
    with pytest.raises(StateError, match="unknown server"):
        net.apply(ev.ServerIntroduced(Stamp(3, "2BB"), "4DD", "d.test", "", "9ZZ"))
    net.apply(user(Stamp(5, "3CC"), "3CC000001", "carol"))
    with pytest.raises(StateError, match="already in use"):
        net.apply(user(Stamp(6, "3CC"), "3CC000001", "other"))
    with pytest.raises(StateError, match="unknown server"):
        net.apply(user(Stamp(6, "5EE"), "5EE000001", "eve"))


def test_users_are_found_by_uid_and_nick(net):
    net.apply(user(Stamp(5, "1AA"), "1AA000001", "Alice"))
    assert net.find_nick("ALICE").uid == "1AA000001"
    assert net.users["1AA000001"].nick == "Alice"
    out = net.apply(ev.NickChange(Stamp(6, "1AA"), "1AA000001", "alicia"))
    assert [(u.nick, old) for u, old in out.renames] == [("alicia", "Alice!~u@host")]
    assert net.find_nick("alice") is None and net.find_nick("alicia").uid == "1AA000001"
    # an older claim arriving late changes nothing (the register keeps the newer)
    assert not net.apply(ev.NickChange(Stamp(5, "1AA"), "1AA000001", "old")).changed
    assert net.users["1AA000001"].nick == "alicia"


def test_channel_messages_go_only_to_directions_with_members(net):
    for i, (uid, s) in enumerate((("1AA000001", "1AA"), ("3CC000001", "3CC"))):
        net.apply(user(Stamp(10 + i, s), uid, f"u{i}"))
    net.apply(ev.ChannelCreate(Stamp(20, "1AA"), "#here"))
    net.apply(ev.ChannelJoin(Stamp(21, "1AA"), "#here", "1AA000001", "o"))
    msg = ev.Message(Stamp(30, "1AA"), "PRIVMSG", "1AA000001", "#here", "hi", "m1", "1AA", 0, 1, 30)
    out = net.apply(msg)
    assert list(out.links) == [] and [u.uid for u in out.local] == ["1AA000001"]
    net.apply(ev.ChannelJoin(Stamp(31, "3CC"), "#here", "3CC000001"))
    out = net.apply(msg)
    assert list(out.links) == ["2BB"]                 # c.test is reached through b.test
    # state changes go to every direction
    assert net.apply(ev.TopicChange(Stamp(32, "1AA"), "#here", None, "s", "t")).links == {"2BB"}
    # a private message to a remote user goes to its direction
    dm = ev.Message(Stamp(33, "1AA"), "PRIVMSG", "1AA000001", "3CC000001", "yo", "m2", "1AA", 0, 2, 33)
    out = net.apply(dm)
    assert list(out.links) == ["2BB"] and not out.undeliverable
    gone = ev.Message(Stamp(34, "1AA"), "PRIVMSG", "1AA000001", "3CC000099", "?", "m3", "1AA", 0, 3, 34)
    assert net.apply(gone).undeliverable


def test_netsplit_removes_the_users_behind_and_keeps_the_channel(net):
    net.apply(user(Stamp(10, "1AA"), "1AA000001", "local"))
    net.apply(user(Stamp(11, "3CC"), "3CC000001", "remote"))
    net.apply(ev.ChannelCreate(Stamp(12, "3CC"), "#old"))
    net.apply(ev.ChannelJoin(Stamp(13, "3CC"), "#old", "3CC000001", "o"))
    net.apply(ev.TopicChange(Stamp(14, "3CC"), "#old", "3CC000001", "remote!~u@host", "kept"))
    net.apply(ev.ChannelJoin(Stamp(15, "1AA"), "#old", "1AA000001"))
    out = net.apply(ev.ServerQuit(Stamp(20, "1AA"), "2BB", "connection lost"))
    assert out.old_source == "a.test b.test"          # the classic netsplit QUIT reason
    assert [(u.nick, [n.nick for n in nb]) for u, nb in out.quits] == [("remote", ["local"])]
    assert set(net.servers) == {"1AA"} and "3CC000001" not in net.users
    net.apply(ev.ChannelPart(Stamp(21, "1AA"), "#old", "1AA000001"))
    chan = net.find_channel("#old")
    # members were lost to a split: its state stays, so a joiner does not find it new
    assert chan is not None and chan.topic == "kept" and chan.members == {}
    assert chan.created == Stamp(12, "3CC")


def test_an_emptied_channel_without_a_split_is_gone(net):
    net.apply(user(Stamp(10, "1AA"), "1AA000001", "solo"))
    net.apply(ev.ChannelCreate(Stamp(11, "1AA"), "#tmp"))
    net.apply(ev.ChannelJoin(Stamp(12, "1AA"), "#tmp", "1AA000001", "o"))
    net.apply(ev.ChannelPart(Stamp(13, "1AA"), "#tmp", "1AA000001"))
    assert net.find_channel("#tmp") is None


def test_older_creation_wins(net):
    net.apply(ev.ChannelCreate(Stamp(50, "1AA"), "#c"))
    net.apply(ev.ChannelCreate(Stamp(40, "2BB"), "#C"))
    assert net.find_channel("#c").created == Stamp(40, "2BB")


def test_invites_follow_the_uid_through_nick_changes(net):
    net.apply(user(Stamp(10, "1AA"), "1AA000001", "op"))
    net.apply(user(Stamp(11, "1AA"), "1AA000002", "guest"))
    net.apply(ev.ChannelCreate(Stamp(12, "1AA"), "#inv"))
    net.apply(ev.ChannelJoin(Stamp(13, "1AA"), "#inv", "1AA000001", "o"))
    net.apply(ev.ChannelInvite(Stamp(14, "1AA"), "#inv", "1AA000001", "1AA000002"))
    net.apply(ev.NickChange(Stamp(15, "1AA"), "1AA000002", "renamed"))
    chan = net.find_channel("#inv")
    assert "1AA000002" in chan.invited
    net.apply(ev.ChannelJoin(Stamp(16, "1AA"), "#inv", "1AA000002"))
    assert chan.invited == set()


def test_ban_check_is_cached_and_invalidated(net):
    net.apply(user(Stamp(10, "1AA"), "1AA000001", "op"))
    net.apply(user(Stamp(11, "1AA"), "1AA000002", "spammer"))
    net.apply(ev.ChannelCreate(Stamp(12, "1AA"), "#b"))
    net.apply(ev.ChannelJoin(Stamp(13, "1AA"), "#b", "1AA000001", "o"))
    net.apply(ev.ChannelJoin(Stamp(14, "1AA"), "#b", "1AA000002"))
    chan = net.find_channel("#b")
    spammer = net.users["1AA000002"]
    assert chan.can_speak(spammer)
    net.apply(ev.ChannelModeChange(Stamp(15, "1AA"), "#b", "1AA000001",
                                   (ev.ListAdd("b", "spammer!*@*", "op", 0),)))
    assert not chan.can_speak(spammer)                 # a list change clears the cache
    net.apply(ev.NickChange(Stamp(16, "1AA"), "1AA000002", "nice"))
    assert chan.can_speak(spammer)                     # so does a nick change
    net.apply(ev.HostChange(Stamp(17, "1AA"), "1AA000002", "~u", "spam.example"))
    net.apply(ev.ChannelModeChange(Stamp(18, "1AA"), "#b", "1AA000001",
                                   (ev.ListAdd("b", "*!*@spam.example", "op", 0),)))
    assert not chan.can_speak(spammer)


def test_digest_is_equal_for_equal_state_and_differs_otherwise(net):
    other = Network("1AA", "a.test")
    other.apply(ev.ServerIntroduced(Stamp(1, "1AA"), "2BB", "b.test", "", "1AA"))
    other.apply(ev.ServerIntroduced(Stamp(2, "2BB"), "3CC", "c.test", "", "2BB"))
    assert net.digest() == other.digest()
    net.apply(user(Stamp(10, "3CC"), "3CC000001", "x"))
    assert net.digest() != other.digest()


def test_ops_from_a_newer_creation_go_when_the_older_channel_turns_up(net):
    """A server that never knew #c (restarted empty, say) lets a user create it and op
    itself; when the network's older #c arrives, those ops go and the real ops stay."""
    net.apply(user(Stamp(10, "1AA"), "1AA000001", "rider"))
    net.apply(user(Stamp(11, "2BB"), "2BB000001", "owner"))
    net.apply(ev.ChannelCreate(Stamp(500, "1AA"), "#c"))
    net.apply(ev.ChannelJoin(Stamp(501, "1AA"), "#c", "1AA000001", "o", Stamp(500, "1AA")))
    chan = net.find_channel("#c")
    assert chan.is_op(net.users["1AA000001"])
    out = net.apply(ev.ChannelCreate(Stamp(100, "2BB"), "#c"))        # the older channel
    assert [u.nick for u in out.changes] == ["rider"]
    assert not chan.is_op(net.users["1AA000001"]) and chan.created == Stamp(100, "2BB")
    net.apply(ev.ChannelJoin(Stamp(101, "2BB"), "#c", "2BB000001", "o", Stamp(100, "2BB")))
    assert chan.is_op(net.users["2BB000001"])
    # a creator's join arriving after the older channel is known grants nothing
    net.apply(ev.ChannelPart(Stamp(600, "1AA"), "#c", "1AA000001"))
    net.apply(ev.ChannelJoin(Stamp(601, "1AA"), "#c", "1AA000001", "o", Stamp(550, "1AA")))
    assert not chan.is_op(net.users["1AA000001"])


def test_an_op_given_by_mode_survives_the_older_creation(net):
    net.apply(user(Stamp(10, "1AA"), "1AA000001", "maker"))
    net.apply(user(Stamp(11, "1AA"), "1AA000002", "friend"))
    net.apply(ev.ChannelJoin(Stamp(501, "1AA"), "#c", "1AA000001", "o", Stamp(500, "1AA")))
    net.apply(ev.ChannelJoin(Stamp(502, "1AA"), "#c", "1AA000002"))
    net.apply(ev.ChannelModeChange(Stamp(503, "1AA"), "#c", "1AA000001",
                                   (ev.StatusMode("o", "1AA000002", True),)))
    net.apply(ev.ChannelCreate(Stamp(100, "2BB"), "#c"))
    chan = net.find_channel("#c")
    assert not chan.is_op(net.users["1AA000001"]) and chan.is_op(net.users["1AA000002"])
