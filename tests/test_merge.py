"""The merge rules are a pure function of the set of events: any order, with duplicates,
gives the same state (commutative, associative, idempotent), so servers that have seen
the same changes agree. Run longer with `pytest --hypothesis-profile=long`."""

from __future__ import annotations

from hypothesis import given, strategies as st

from linkproto import events as ev
from linkproto.clock import Stamp
from ircd.state.registry import Network

SIDS = ("1AA", "2BB", "3CC")
UIDS = tuple(f"{sid}00000{i}" for sid in SIDS for i in (1, 2))
MASKS = ("*!*@spam", "bad!*@*", "*!*@SPAM")      # two fold together


def base_network() -> Network:
    """Three servers (2BB and 3CC behind 1AA), two users on each, all in #c."""
    net = Network("1AA", "a.test")
    net.apply(ev.ServerIntroduced(Stamp(1, "1AA"), "2BB", "b.test", "", "1AA"))
    net.apply(ev.ServerIntroduced(Stamp(2, "1AA"), "3CC", "c.test", "", "1AA"))
    net.apply(ev.ChannelCreate(Stamp(3, "1AA"), "#c"))
    for i, uid in enumerate(UIDS):
        s = Stamp(10 + i, uid[:3])
        net.apply(ev.UserIntroduced(s, uid, f"n{uid}", s, "~u", "host", "", "real", 0))
        net.apply(ev.ChannelJoin(Stamp(20 + i, uid[:3]), "#c", uid, "o" if i == 0 else ""))
    return net


stamps = st.builds(Stamp, st.integers(100, 200), st.sampled_from(SIDS))

flag = st.builds(ev.FlagMode, st.sampled_from("imnst"), st.booleans())
key = st.builds(ev.KeyMode, st.one_of(st.none(), st.sampled_from(["k1", "k2"])))
limit = st.builds(ev.LimitMode, st.one_of(st.none(), st.integers(1, 3)))
status = st.builds(ev.StatusMode, st.sampled_from("ov"), st.sampled_from(UIDS), st.booleans())
list_add = st.builds(ev.ListAdd, st.sampled_from("beI"), st.sampled_from(MASKS),
                     st.just("op!u@h"), st.integers(0, 5))


@st.composite
def list_remove(draw):
    observed = draw(st.lists(stamps, max_size=3, unique=True))
    return ev.ListRemove(draw(st.sampled_from("beI")), draw(st.sampled_from(MASKS)),
                         tuple(sorted(observed)))


@st.composite
def channel_events(draw):
    """Mode and topic changes with distinct stamps (a stamp identifies one event)."""
    chosen = draw(st.lists(stamps, min_size=1, max_size=12, unique=True))
    out = []
    for stamp in chosen:
        if draw(st.booleans()):
            changes = draw(st.lists(st.one_of(flag, key, limit, status, list_add, list_remove()),
                                    min_size=1, max_size=3))
            out.append(ev.ChannelModeChange(stamp, "#c", UIDS[0], tuple(changes)))
        else:
            out.append(ev.TopicChange(stamp, "#c", UIDS[0], "op!u@h",
                                      draw(st.sampled_from(["", "one", "two"]))))
    return out


def _apply_all(events) -> str:
    net = base_network()
    for e in events:
        net.apply(e)
    return net.digest()


@given(channel_events(), st.randoms(use_true_random=False), st.data())
def test_channel_state_is_order_and_duplicate_independent(events, rnd, data):
    reference = _apply_all(events)
    shuffled = list(events)
    rnd.shuffle(shuffled)
    dupes = data.draw(st.lists(st.sampled_from(events), max_size=4))
    for d in dupes:
        shuffled.insert(rnd.randrange(len(shuffled) + 1), d)
    assert _apply_all(shuffled) == reference


@given(channel_events(), st.randoms(use_true_random=False))
def test_channel_state_merges_associatively(events, rnd):
    """Two servers that saw two halves of the changes, each then given the other half,
    end equal (and equal to a server that saw all in order)."""
    cut = rnd.randrange(len(events) + 1)
    first, second = events[:cut], events[cut:]
    assert _apply_all(first + second) == _apply_all(second + first) == _apply_all(events)


def test_later_topic_wins_whatever_the_order():
    older = ev.TopicChange(Stamp(100, "2BB"), "#c", None, "x!y@z", "older")
    newer = ev.TopicChange(Stamp(101, "1AA"), "#c", None, "x!y@z", "newer")
    for order in ([older, newer], [newer, older]):
        net = base_network()
        for e in order:
            net.apply(e)
        assert net.channels["#c"].topic == "newer"


def test_concurrent_ban_re_add_survives_an_observed_remove():
    net = base_network()
    add1 = ev.ChannelModeChange(Stamp(100, "1AA"), "#c", None,
                                (ev.ListAdd("b", "*!*@spam", "s", 1),))
    add2 = ev.ChannelModeChange(Stamp(101, "2BB"), "#c", None,
                                (ev.ListAdd("b", "*!*@spam", "s", 2),))
    remove = ev.ChannelModeChange(Stamp(102, "1AA"), "#c", None,
                                  (ev.ListRemove("b", "*!*@spam", (Stamp(100, "1AA"),)),))
    for e in (add1, remove, add2):
        net.apply(e)
    assert [e.mask for e in net.channels["#c"].lists["b"]] == ["*!*@spam"]
    net.apply(ev.ChannelModeChange(Stamp(103, "1AA"), "#c", None, (
        ev.ListRemove("b", "*!*@spam", (Stamp(101, "2BB"),)),)))
    assert net.channels["#c"].lists["b"] == []


def test_rejoin_resets_status_and_older_op_is_ignored():
    net = base_network()
    uid = UIDS[1]
    op_before_part = ev.ChannelModeChange(Stamp(100, "1AA"), "#c", None, (ev.StatusMode("o", uid, True),))
    net.apply(ev.ChannelPart(Stamp(101, uid[:3]), "#c", uid))
    net.apply(ev.ChannelJoin(Stamp(102, uid[:3]), "#c", uid))
    net.apply(op_before_part)          # arrives late: older than the rejoin
    assert net.channels["#c"].members[net.users[uid]] == ""


# -- nick claims ---------------------------------------------------------------------------

NICKS = ("alice", "Alice", "bob", "carol")


@st.composite
def nick_events(draw):
    """Introductions of users on three servers, then nick changes, stamps distinct."""
    count = len(UIDS) + 8      # distinct times: one server never issues a stamp twice
    all_stamps = draw(st.lists(stamps, min_size=count, max_size=count,
                               unique_by=lambda s: s.t))
    intros = []
    for uid, stamp in zip(UIDS, all_stamps):
        claim = Stamp(stamp.t, uid[:3])
        intros.append(ev.UserIntroduced(claim, uid, draw(st.sampled_from(NICKS)), claim,
                                        "~u", "h", "", "r", 0))
    changes = []
    for stamp in all_stamps[len(UIDS):]:
        uid = draw(st.sampled_from(UIDS))
        changes.append(ev.NickChange(Stamp(stamp.t, uid[:3]), uid, draw(st.sampled_from(NICKS))))
    return intros, changes


def _nick_state(intros, changes) -> tuple:
    net = Network("1AA", "a.test")
    net.apply(ev.ServerIntroduced(Stamp(1, "1AA"), "2BB", "b.test", "", "1AA"))
    net.apply(ev.ServerIntroduced(Stamp(2, "1AA"), "3CC", "c.test", "", "1AA"))
    seen = set()
    for e in intros:
        if e.uid not in seen:      # a duplicate introduction is refused, not re-applied
            seen.add(e.uid)
            net.apply(e)
    for e in changes:
        net.apply(e)
    return net.digest(), sorted(net.nicks)


@given(nick_events(), st.randoms(use_true_random=False))
def test_nick_claims_are_order_and_duplicate_independent(claims, rnd):
    intros, changes = claims
    reference = _nick_state(intros, changes)
    intros2, changes2 = list(intros), list(changes) + changes[: rnd.randrange(len(changes) + 1)]
    rnd.shuffle(intros2)
    rnd.shuffle(changes2)
    assert _nick_state(intros2, changes2) == reference


def test_earlier_claim_keeps_the_nick_and_the_later_shows_as_its_uid():
    net = Network("1AA", "a.test")
    net.apply(ev.ServerIntroduced(Stamp(1, "1AA"), "2BB", "b.test", "", "1AA"))
    late = ev.UserIntroduced(Stamp(50, "1AA"), "1AA000001", "dup", Stamp(50, "1AA"), "~u", "h", "", "r", 0)
    early = ev.UserIntroduced(Stamp(40, "2BB"), "2BB000001", "dup", Stamp(40, "2BB"), "~u", "h", "", "r", 0)
    net.apply(late)
    out = net.apply(early)
    assert net.find_nick("dup").uid == "2BB000001"
    assert net.users["1AA000001"].nick == "1AA000001"
    assert [(u.uid, old) for u, old in out.renames] == [("1AA000001", "dup!~u@h")]
    # when the winner leaves, the waiting claimant gets the nick back
    out = net.apply(ev.UserQuit(Stamp(60, "2BB"), "2BB000001", "bye"))
    assert net.find_nick("dup").uid == "1AA000001"
