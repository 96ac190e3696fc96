"""The recent-message log, a pure layer: what a server keeps for replay after a netsplit
and how it knows a message it has already delivered."""

from linkproto import events as ev
from linkproto.clock import Stamp

from ircd.state.history import MessageLog

T0 = 1_800_000_000_000


def message(seq: int, ms: int, target: str = "#chat", origin: str = "1AB") -> ev.Message:
    return ev.Message(Stamp(ms * 1000, origin), "PRIVMSG", f"{origin}AAAAAA", target, f"m{seq}",
                      f"{origin}-{seq}", origin, 1, seq, ms)


def test_a_message_is_logged_once_and_known_when_it_comes_again():
    log = MessageLog(100, 3600)
    m = message(1, T0)
    assert not log.seen(m)
    assert log.record(m) is True
    assert log.seen(m)
    assert log.record(message(1, T0 + 5)) is False     # the same (origin, epoch, seq)
    assert log.recent(T0 + 10) == [m]


def test_the_log_keeps_the_newest_by_count_and_says_which_conversations_lost_some():
    log = MessageLog(10, 3600)
    for i in range(25):
        log.record(message(i, T0 + i, target="#a" if i < 20 else "#b"))
    assert [m.seq for m in log.recent(T0 + 30)] == list(range(15, 25))
    assert log.lost_since(T0) == ["#a"]              # #a's messages 0-14 are gone
    assert log.lost_since(T0 + 15) == []              # ...none from 15 on


def test_the_log_forgets_by_age():
    log = MessageLog(100, 60)
    log.record(message(1, T0))
    log.record(message(2, T0 + 30_000))
    assert [m.seq for m in log.recent(T0 + 61_000)] == [2]
    assert log.lost_since(T0) == ["#chat"]


def test_delivered_messages_are_remembered_longer_than_logged_but_not_for_ever():
    log = MessageLog(10, 3600)
    for i in range(100):
        log.record(message(i, T0 + i))
    # out of the log (10) but within 4 times its size: still known, not delivered again
    assert log.record(message(70, T0 + 200)) is False
    # far beyond it: forgotten (the memory is bounded)
    assert log.record(message(0, T0 + 200)) is True


def test_messages_from_another_origin_or_run_are_different_messages():
    log = MessageLog(100, 3600)
    assert log.record(message(1, T0, origin="1AB"))
    assert log.record(message(1, T0, origin="2CD"))
    restarted = message(1, T0)
    restarted.epoch = 2                               # the origin server restarted
    assert log.record(restarted)


def test_the_log_gives_back_the_very_events_it_was_given():
    log = MessageLog(100, 3600)
    tagged = ev.Message(Stamp(T0 * 1000 + 7, "1AB"), "NOTICE", "1ABAAAAAA", "#chat", "hi", "1AB-9",
                        "1AB", 3, 9, T0, "@", (("+draft/reply", "1AB-1"),), "a!b@c", "acct", True)
    log.record(message(1, T0))
    log.record(tagged)
    assert log.recent(T0) == [message(1, T0), tagged]
    assert log.newest() == tagged and log.recorded == 2
    assert MessageLog(0, 3600).newest() is None


def test_what_the_log_keeps_is_not_tracked_by_the_garbage_collector():
    """A big log must not make every full collection walk it (see the module's docstring)."""
    import gc
    log = MessageLog(100, 3600)
    log.record(ev.Message(Stamp(1, "1AB"), "PRIVMSG", "1ABAAAAAA", "#chat", "hi", "1AB-1", "1AB", 1, 1,
                          T0, "", (("+draft/reply", "x"),)))
    for _ in range(3):          # (a nested tuple is untracked one level per collection)
        gc.collect()
    tracked = [entry for entry in log.log if gc.is_tracked(entry)]
    assert tracked == [], [[type(x) for x in entry if gc.is_tracked(x)] for entry in tracked]


def test_delivered_messages_are_remembered_four_times_as_long_as_logged():
    log = MessageLog(1000, 60)
    log.record(message(0, T0))
    log.record(message(1, T0 + 200_000))          # 3.3 minutes later: out of the log
    assert log.recent(T0 + 200_000) == [message(1, T0 + 200_000)]
    assert log.record(message(0, T0 + 200_001)) is False     # ...but still known
    log.record(message(2, T0 + 250_000))          # past 4 minutes: a new generation
    log.record(message(3, T0 + 500_000))          # and another: the first is dropped
    assert log.record(message(0, T0 + 500_001)) is True


def test_a_log_made_smaller_by_a_rehash_says_which_conversations_lost_messages():
    log = MessageLog(10, 3600)
    for i in range(10):
        log.record(message(i, T0 + i, target="#old" if i < 5 else "#new"))
    log.resize(5, 3600)
    assert [m.seq for m in log.recent(T0 + 20)] == [5, 6, 7, 8, 9]
    assert log.lost_since(T0) == ["#old"]
