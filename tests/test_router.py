"""The router on its own: who hears an applied event and in which form, with stand-in
sessions that record what is written to them (no sockets)."""

from __future__ import annotations

from linkproto import events as ev
from linkproto.clock import Stamp
from ircd.net.connection import broadcast_each
from ircd.protocol.message import TAG_MSG, TAG_TIME, parse_line
from ircd.routing import Router
from ircd.state.registry import Network


class Conn:
    def __init__(self):
        self.lines: list[bytes] = []
        self.dead = False

    def write(self, data: bytes) -> None:
        self.lines.append(data)

    broadcast = staticmethod(broadcast_each)


class Session:
    def __init__(self, caps=()):
        self.caps = set(caps)
        self.tagmask = (TAG_TIME if "server-time" in caps else 0) | (
            TAG_MSG if "message-tags" in caps else 0)
        self.conn = Conn()
        self.capture = None
        self.user = None

    def write(self, data: bytes) -> None:
        self.conn.write(data)

    write_uncaptured = write

    def numeric(self, *params) -> None:
        self.conn.write(" ".join(params).encode())

    def notice(self, text) -> None:
        self.conn.write(text.encode())

    def got(self) -> list:
        return [parse_line(line.decode().rstrip("\r\n")) for line in self.conn.lines]


class Link:
    def __init__(self):
        self.events = []

    def send_event(self, event) -> None:
        self.events.append(event)


class Server:
    """What the router reads from the session layer."""
    name = "a.test"

    def __init__(self):
        self.registry = Network("1AA", "a.test")
        self.monitors = {}

    def now_ms(self) -> int:
        return 1_700_000_000_000


def setup():
    server = Server()
    router = Router(server)
    net = server.registry
    net.apply(ev.ServerIntroduced(Stamp(1, "1AA"), "2BB", "b.test", "", "1AA"))
    net.apply(ev.ServerIntroduced(Stamp(2, "1AA"), "3CC", "c.test", "", "1AA"))
    router.links = {"2BB": Link(), "3CC": Link()}
    sessions = {}
    for i, (uid, caps) in enumerate((("1AA000001", ("echo-message",)),
                                     ("1AA000002", ("server-time",)),
                                     ("1AA000003", ("server-time",)),
                                     ("1AA000004", ("message-tags",)),
                                     ("2BB000001", ()))):
        s = Stamp(10 + i, uid[:3])
        out = net.apply(ev.UserIntroduced(s, uid, f"n{i}", s, "~u", "h", "", "r", 0))
        if uid.startswith("1AA"):
            out.user.session = sessions[uid] = Session(caps)
            sessions[uid].user = out.user
    net.apply(ev.ChannelCreate(Stamp(20, "1AA"), "#c"))
    for i, uid in enumerate(("1AA000001", "1AA000002", "1AA000003", "1AA000004", "2BB000001")):
        net.apply(ev.ChannelJoin(Stamp(21 + i, uid[:3]), "#c", uid))
    return server, router, sessions


def message(command="PRIVMSG", text="hello", target="#c", tags=()):
    return ev.Message(Stamp(40, "1AA"), command, "1AA000001", target, text, "1AAmsg1", "1AA", 7,
                      1, 1_700_000_000_123, tags=tags, source="n0!~u@h")


def test_channel_message_is_serialised_once_per_form_and_echoed():
    server, router, sessions = setup()
    e = message()
    sender = sessions["1AA000001"]
    delivered, _ = router.deliver(e, server.registry.apply(e), origin=sender)
    assert delivered
    two, three = sessions["1AA000002"].conn.lines, sessions["1AA000003"].conn.lines
    assert two[0] is three[0]                       # one serialisation for the same form
    assert two[0] == b"@time=2023-11-14T22:13:20.123Z :n0!~u@h PRIVMSG #c :hello\r\n"
    assert sessions["1AA000004"].got()[0].tags == {"msgid": "1AAmsg1"}
    assert sender.got()[0].params == ["#c", "hello"]   # echo-message
    # on to the one direction with members behind it, never to the other
    assert router.links["2BB"].events == [e] and router.links["3CC"].events == []


def test_nothing_goes_back_to_the_link_it_came_from():
    server, router, sessions = setup()
    e = ev.TopicChange(Stamp(50, "2BB"), "#c", "2BB000001", "n4!~u@h", "from afar")
    router.deliver(e, server.registry.apply(e), from_link="2BB")
    assert router.links["2BB"].events == [] and router.links["3CC"].events == [e]
    assert sessions["1AA000002"].got()[0].command == "TOPIC"


def test_tagmsg_reaches_only_message_tags_clients():
    server, router, sessions = setup()
    e = message("TAGMSG", None, tags=(("+typing", "active"),))
    router.deliver(e, server.registry.apply(e), origin=sessions["1AA000001"])
    assert sessions["1AA000002"].got() == [] and sessions["1AA000001"].got() == []
    got = sessions["1AA000004"].got()
    assert got[0].command == "TAGMSG" and got[0].tags["+typing"] == "active"


def test_private_message_to_a_remote_user_goes_to_its_direction_only():
    server, router, sessions = setup()
    e = message(target="2BB000001")
    delivered, _ = router.deliver(e, server.registry.apply(e), origin=sessions["1AA000001"])
    assert delivered and router.links["2BB"].events == [e] and router.links["3CC"].events == []
    assert sessions["1AA000002"].got() == []


def test_private_message_without_a_route_is_reported_undelivered():
    server, router, sessions = setup()
    router.links = {}
    e = message(target="2BB000001")
    delivered, _ = router.deliver(e, server.registry.apply(e), origin=sessions["1AA000001"])
    assert not delivered


def test_part_is_heard_by_the_parting_user_and_the_members():
    server, router, sessions = setup()
    e = ev.ChannelPart(Stamp(60, "1AA"), "#c", "1AA000002", "bye")
    router.deliver(e, server.registry.apply(e), origin=sessions["1AA000002"])
    for uid in ("1AA000001", "1AA000002", "1AA000003", "1AA000004"):
        got = sessions[uid].got()
        assert [(m.command, m.source, m.params) for m in got] == [
            ("PART", "n1!~u@h", ["#c", "bye"])], uid


def test_a_mode_that_loses_to_a_newer_one_is_not_announced():
    server, router, sessions = setup()
    newer = ev.ChannelModeChange(Stamp(70, "1AA"), "#c", "1AA000001", (ev.FlagMode("m", True),))
    older = ev.ChannelModeChange(Stamp(69, "2BB"), "#c", "2BB000001", (ev.FlagMode("m", False),))
    router.deliver(newer, server.registry.apply(newer))
    router.deliver(older, server.registry.apply(older), from_link="2BB")
    got = sessions["1AA000002"].got()
    assert [(m.command, m.params) for m in got] == [("MODE", ["#c", "+m"])]
    assert "m" in server.registry.find_channel("#c").modes


def test_nick_clash_renames_the_later_claimant_and_tells_it_why():
    server, router, sessions = setup()
    # a user from b.test with an earlier claim on n1 arrives (a netjoin)
    e = ev.UserIntroduced(Stamp(80, "2BB"), "2BB000002", "n1", Stamp(5, "2BB"), "~u", "h", "", "r", 0)
    router.deliver(e, server.registry.apply(e), from_link="2BB")
    loser = sessions["1AA000002"]
    got = loser.got()
    assert (got[0].command, got[0].source, got[0].params) == ("NICK", "n1!~u@h", ["1AA000002"])
    assert "claimed earlier" in loser.conn.lines[1].decode()
    assert sessions["1AA000003"].got()[0].params == ["1AA000002"]   # channel members see it
