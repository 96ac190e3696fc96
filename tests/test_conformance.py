"""Conformance: the behaviours the public IRC server conformance suite checks, one test
per rule, restated against this server.

Each test names the rule it checks and where the rule is written down (RFC 1459/2812
section, the "Modern IRC client protocol" document, or an IRCv3 specification). Tests
are grouped by feature. Where we deliberately differ (errors for NOTICE, our delivery
contract), the test says so and checks our behaviour.
"""

import re

import pytest

from irctest import show, shown
from linkproto.clock import TICKS_PER_MS, Stamp

from ircd import __version__
from ircd.commands import oper as oper_commands
from ircd.passwords import hash_password

S = ":test.server"

OPER_PASSWORD = "open sesame"
OPERS = f'''
[[oper]]
name = "operuser"
password = "{hash_password(OPER_PASSWORD)}"
hosts = ["*@127.0.0.1"]
'''


@pytest.fixture
async def srv(make_server):
    """A server without flood control (conformance runs send bursts), with an operator."""
    return await make_server(limits={"flood_control": False}, extra=OPERS)


# -- helpers -----------------------------------------------------------------------------

async def ask(client, *lines):
    """Send `lines`; return every message the server sent before a PING round-trip."""
    await client.send(*lines)
    return await client.ping_pong()


def commands(msgs):
    return [m.command for m in msgs]


async def join(client, *channels):
    for channel in channels:
        await client.send(f"JOIN {channel}")
        await client.expect("366")
    await client.ping_pong()


async def sync(*clients):
    """Drain whatever is pending for each client."""
    for c in clients:
        await c.ping_pong()


async def until_closed(client):
    """Every message up to the server closing the connection."""
    msgs = []
    try:
        while True:
            msgs.append(await client.next_message())
    except EOFError:
        return msgs


async def oper_up(client):
    msgs = await ask(client, f"OPER operuser :{OPER_PASSWORD}")
    nick = msgs[0].params[0]
    assert nick == (client.nick or nick)
    assert show(msgs[0]) == f"{S} 381 {nick} :You are now an IRC operator"
    assert len(msgs) == 2 and (msgs[1].command, msgs[1].params) == ("MODE", [nick, "+o"])
    assert re.fullmatch(rf"{nick}!~\w+@127\.0\.0\.1", msgs[1].source)


async def registration_burst(client, *lines):
    """Send registration lines; return the messages up to the end of the MOTD (376 or
    422), or up to the first error (4xx numeric or ERROR)."""
    await client.send(*lines)
    msgs = []
    while True:
        m = await client.next_message()
        msgs.append(m)
        if m.command in ("376", "ERROR") or m.command.startswith("4"):
            return msgs


# == Connection registration ==============================================================

async def test_welcome_burst_order(srv):
    """Modern, "Connection Registration": after NICK/USER the server sends 001, 002, 003,
    004, then at least one 005, then the LUSERS replies and the MOTD (or 422)."""
    c = await srv.client()
    msgs = await registration_burst(c, "NICK burst", "USER burst 0 * :Burst User")
    got = commands(msgs)
    assert got[:5] == ["001", "002", "003", "004", "005"]
    rest = got[5:]
    while rest and rest[0] == "005":
        rest.pop(0)
    assert rest[0] == "251" and rest[-1] in ("376", "422")
    assert shown(msgs[:2]) == [
        f"{S} 001 burst :Welcome to the TestNet IRC Network burst!~burst@127.0.0.1",
        f"{S} 002 burst :Your host is test.server, running version ircd-{__version__}"]
    assert msgs[2].params[0] == "burst" and msgs[2].params[1].startswith("This server was created ")
    assert show(msgs[3]) == f"{S} 004 burst test.server ircd-{__version__} Biow beIiklmnostv beIklov"
    assert all(m.source == "test.server" and m.params[0] == "burst" for m in msgs)


async def test_isupport_lines_are_well_formed(srv):
    """Modern, RPL_ISUPPORT: first parameter is the nick, last is human text, at most 13
    tokens (15 parameters) per line, tokens are ASCII; PREFIX maps o to @ before v to +;
    TARGMAX entries are COMMAND:[limit]."""
    c = await srv.client()
    msgs = await registration_burst(c, "NICK isup", "USER isup 0 * :x")
    tokens = {}
    for m in (m for m in msgs if m.command == "005"):
        assert m.params[0] == "isup" and 3 <= len(m.params) <= 15
        for tok in m.params[1:-1]:
            assert tok.isascii()
            key, _, value = tok.partition("=")
            tokens[key] = value
    assert tokens["PREFIX"] == "(ov)@+"
    assert all(re.fullmatch(r"[A-Z]+:[0-9]*", part) for part in tokens["TARGMAX"].split(","))
    assert tokens["CASEMAPPING"] == "rfc1459"
    assert "I" in tokens["CHANMODES"].split(",")[0] and tokens["INVEX"] in ("", "I")


async def test_correct_password_registers(make_server):
    """RFC 1459 4.1.1 / RFC 2812 3.1.1: PASS before NICK/USER with the right password
    completes registration."""
    s = await make_server(server={"password": "letmein"})
    c = await s.client()
    msgs = await registration_burst(c, "PASS letmein", "NICK passer", "USER p * * :Real")
    assert show(msgs[0]) == f"{S} 001 passer :Welcome to the TestNet IRC Network passer!~p@127.0.0.1"
    assert msgs[-1].command == "376"


async def test_missing_or_wrong_password_is_refused_with_error(make_server):
    """RFC 2812 3.1.1 and Modern PASS: without the password, or with a wrong one, there is
    no 001; the server SHOULD send 464 ERR_PASSWDMISMATCH and MUST close with ERROR."""
    s = await make_server(server={"password": "letmein"})
    for nick, lines in (("nopass", ["NICK nopass", "USER u * * :Real"]),
                        ("badpass", ["PASS wrong", "NICK badpass", "USER u * * :Real"]),
                        ("late", ["NICK late", "USER u * * :Real", "PASS letmein"])):  # too late
        c = await s.client()
        await c.send(*lines)
        assert shown(await until_closed(c)) == [
            f"{S} 464 {nick} :Password incorrect",
            "ERROR :Closing Link: 127.0.0.1 (Bad password)"]
        assert s.state.find_user(nick) is None


async def test_empty_realname_is_refused(srv):
    """Modern USER: the realname must not be empty; an empty parameter is answered with
    461 ERR_NEEDMOREPARAMS (`<client> USER :Not enough parameters`)."""
    c = await srv.client()
    await c.send("NICK emptyreal", "USER username * * :")
    assert shown(await c.ping_pong()) == [f"{S} 461 emptyreal USER :Not enough parameters"]
    # the connection is still usable: a proper USER registers it
    msgs = await registration_burst(c, "USER username * * :Real Name")
    assert show(msgs[0]) == (f"{S} 001 emptyreal :Welcome to the TestNet IRC Network "
                             "emptyreal!~username@127.0.0.1")
    assert srv.state.find_user("emptyreal").realname == "Real Name"


async def test_nick_collisions_at_registration(srv):
    """RFC 1459 4.1.2: a nick already in use is refused with 433; of two connections
    registering the same nick at once exactly one gets 001."""
    first = await srv.client("taken")
    c = await srv.client()
    await c.send("NICK taken", "USER u * * :Real")
    assert shown(await c.ping_pong()) == [f"{S} 433 * taken :Nickname is already in use"]
    a, b = await srv.client(), await srv.client()
    await a.send("NICK race")
    await b.send("NICK race")
    await a.send("USER u * * :Real")
    await b.send("USER u * * :Real")
    first_a = await a.next_message()
    first_b = await b.next_message()
    winner, loser = (first_a, first_b) if first_a.command == "001" else (first_b, first_a)
    assert show(winner) == f"{S} 001 race :Welcome to the TestNet IRC Network race!~u@127.0.0.1"
    # the loser's pending nick is "race" too, so the numeric is addressed to it
    assert show(loser) == f"{S} 433 race race :Nickname is already in use"
    assert first.nick == "taken" and srv.state.find_user("taken") is not None


async def test_invalid_and_empty_nicks(srv):
    """RFC 1459 4.1.2: `NICK *` is refused with 432 ERR_ERRONEUSNICKNAME and `NICK :`
    with 431 ERR_NONICKNAMEGIVEN; neither registers, a valid NICK afterwards does."""
    c = await srv.client()
    await c.send("NICK *", "USER u s e r")
    assert shown(await c.ping_pong()) == [f"{S} 432 * * :Erroneous nickname"]
    await c.send("NICK :")
    assert shown(await c.ping_pong()) == [f"{S} 431 * :No nickname given"]
    msgs = await registration_burst(c, "NICK valid")
    assert show(msgs[0]) == f"{S} 001 valid :Welcome to the TestNet IRC Network valid!~u@127.0.0.1"


async def test_nicklen(srv):
    """Modern NICKLEN: a nick exactly NICKLEN long may be set; a longer one is refused
    with 432 `<client> <nick> :Erroneous nickname`."""
    c = await srv.client("foo")
    assert shown(await ask(c, "NICK " + "a" * 30)) == [f":foo!~foo@127.0.0.1 NICK {'a' * 30}"]
    assert shown(await ask(c, "NICK " + "b" * 35)) == [
        f"{S} 432 {'a' * 30} {'b' * 35} :Erroneous nickname"]


async def test_nick_is_released_after_change_and_quit(srv):
    """RFC 1459 4.1.2: a nick a user left (by NICK or QUIT) may be taken by someone else,
    in any case."""
    a = await srv.client("alice")
    assert shown(await ask(a, "NICK malice")) == [":alice!~alice@127.0.0.1 NICK malice"]
    b = await srv.client()
    assert show((await registration_burst(b, "NICK alice", "USER u s e r"))[0]) == \
        f"{S} 001 alice :Welcome to the TestNet IRC Network alice!~u@127.0.0.1"
    await b.send("QUIT")
    assert shown(await until_closed(b)) == ["ERROR :Closing Link: 127.0.0.1 (Client Quit)"]
    c = await srv.client()
    assert show((await registration_burst(c, "NICK ALICE", "USER u s e r"))[0]) == \
        f"{S} 001 ALICE :Welcome to the TestNet IRC Network ALICE!~u@127.0.0.1"


async def test_nick_changes_seen_by_channel_and_noop_is_silent(srv):
    """RFC 1459 4.1.2: a case-only change is a change everyone sharing a channel sees;
    NICK to the current nick changes nothing and sends nothing; a refused change (433)
    leaves the old nick working."""
    a = await srv.client("alice")
    b = await srv.client("bob")
    await join(a, "#test")
    await join(b, "#test")
    await sync(a)
    msgs = await ask(a, "NICK Alice")
    assert shown(msgs) == [":alice!~alice@127.0.0.1 NICK Alice"]
    assert shown(await b.ping_pong()) == [":alice!~alice@127.0.0.1 NICK Alice"]
    assert await ask(a, "NICK Alice") == []
    assert await b.ping_pong() == []
    assert shown(await ask(b, "NICK alice")) == [f"{S} 433 bob alice :Nickname is already in use"]
    assert await a.ping_pong() == []
    await a.send("PRIVMSG bob :still bob")
    assert show(await b.expect("PRIVMSG")) == ":Alice!~alice@127.0.0.1 PRIVMSG bob :still bob"


async def test_quit_sends_error_and_closes(srv):
    """RFC 1459 4.1.6 / RFC 2812 3.1.7: the server acknowledges QUIT with ERROR and closes
    the connection; channel members see QUIT with the reason, from the quitter's mask."""
    a = await srv.client("bar")
    q = await srv.client("qux")
    await join(a, "#chan")
    await join(q, "#chan")
    await sync(a)
    await q.send("QUIT :qux out")
    assert shown(await until_closed(q)) == ["ERROR :Closing Link: 127.0.0.1 (Quit: qux out)"]
    assert shown(await a.ping_pong()) == [":qux!~qux@127.0.0.1 QUIT :Quit: qux out"]


async def test_commands_before_registration(srv):
    """RFC 2812 / Modern: commands other than registration ones get 451 ERR_NOTREGISTERED
    before registration; PING is answered; an unknown command after registration gets
    421 ERR_UNKNOWNCOMMAND naming the command."""
    c = await srv.client()
    await c.send("JOIN #x")
    assert show(await c.next_message()) == f"{S} 451 * :You have not registered"
    await c.send("PING early")
    assert show(await c.next_message()) == f"{S} PONG test.server early"
    r = await srv.client("known")
    assert shown(await ask(r, "FROBNICATE a b")) == [f"{S} 421 known FROBNICATE :Unknown command"]


# == CAP ==================================================================================

async def test_cap_ls_301_and_empty_list(srv):
    """IRCv3 capability negotiation, "CAP LS Version" and "CAP LIST": a version-less
    `CAP LS` gets one line without `*` continuation and without `name=value`; `CAP LIST`
    with nothing enabled is `CAP * LIST :` (an empty last parameter)."""
    c = await srv.client()
    await c.send("CAP LS")
    ls = await c.next_message()
    assert (ls.source, ls.command, ls.params[:2], len(ls.params)) == ("test.server", "CAP",
                                                                      ["*", "LS"], 3)
    assert "=" not in ls.params[2] and "multi-prefix" in ls.params[2].split()
    await c.send("CAP LIST")
    assert show(await c.next_message()) == f"{S} CAP * LIST :"


async def test_cap_req_nak_is_whole_and_exact(srv):
    """IRCv3 capability negotiation, "CAP REQ"/"CAP NAK": a request is accepted or
    rejected as a whole, NAK echoes the requested list unchanged, and registration waits
    for CAP END even after a NAK."""
    c = await srv.client()
    await c.send("CAP LS 302", "USER foo foo foo :foo", "NICK capper")
    ls = await c.expect("CAP")
    assert ls.params[:2] == ["*", "LS"]
    for req in ("foo qux bar baz qux quux", "foo multi-prefix bar", "multi-prefix bar"):
        await c.send(f"CAP REQ :{req}")
        assert show(await c.next_message()) == f"{S} CAP * NAK :{req}"
    await c.send("CAP LIST")
    assert show(await c.next_message()) == f"{S} CAP * LIST cap-notify"
    await c.send("CAP REQ :multi-prefix")
    assert show(await c.next_message()) == f"{S} CAP * ACK multi-prefix"
    msgs = await registration_burst(c, "CAP END")
    assert show(msgs[0]) == f"{S} 001 capper :Welcome to the TestNet IRC Network capper!~foo@127.0.0.1"


async def test_cap_removal_and_list(srv):
    """IRCv3 capability negotiation, "CAP REQ": `-cap` disables a capability; CAP LIST
    shows what is enabled (cap-notify may be implied by 302); once server-time is off,
    messages carry no time tag."""
    sender = await srv.client("sender")
    c = await srv.client("bar", caps=["echo-message", "server-time"])
    assert shown(await ask(c, "CAP LIST")) == [f"{S} CAP bar LIST :cap-notify echo-message server-time"]
    await sender.send("PRIVMSG bar :hi")
    assert show(await c.expect("PRIVMSG")) == "@time=* :sender!~sender@127.0.0.1 PRIVMSG bar hi"
    assert shown(await ask(c, "CAP REQ :-server-time")) == [f"{S} CAP bar ACK -server-time"]
    assert shown(await ask(c, "CAP LIST")) == [f"{S} CAP bar LIST :cap-notify echo-message"]
    await sender.send("PRIVMSG bar :hi again")
    assert show(await c.expect("PRIVMSG")) == ":sender!~sender@127.0.0.1 PRIVMSG bar :hi again"


async def test_cap_invalid_subcommand_and_end_after_registration(srv):
    """IRCv3 capability negotiation, "The CAP command": an unknown subcommand gets 410
    ERR_INVALIDCAPCMD (`*` before a nick exists); CAP is accepted after registration and
    CAP END is then ignored."""
    c = await srv.client()
    await c.send("CAP FOO")
    assert show(await c.next_message()) == f"{S} 410 * FOO :Invalid CAP command"
    r = await srv.client("late")
    assert await ask(r, "CAP END") == []
    assert shown(await ask(r, "CAP REQ :multi-prefix")) == [f"{S} CAP late ACK multi-prefix"]


async def test_cap_302_implies_cap_notify(srv):
    """IRCv3 capability negotiation, "CAP LS Version": CAP version 302 implicitly enables
    cap-notify."""
    c = await srv.client()
    await c.send("CAP LS 302")
    ls = await c.expect("CAP")
    assert ls.params[:2] == ["*", "LS"] and "cap-notify" in ls.params[-1].split()
    await c.send("CAP LIST")
    assert show(await c.next_message()) == f"{S} CAP * LIST cap-notify"


# == message-tags, server-time, echo-message ==============================================

async def test_client_tags_relayed_only_to_message_tags_clients(srv):
    """IRCv3 message-tags, "Client-only tags" and "TAGMSG": `+` tags are relayed to
    clients with message-tags (with a msgid), never to others; tags without `+` are
    dropped; escaped values arrive unescaped; TAGMSG is not delivered to clients without
    message-tags, even with server-time."""
    alice = await srv.client("alice", caps=["message-tags"])
    bob = await srv.client("bob", caps=["message-tags", "echo-message"])
    carol = await srv.client("carol")
    dave = await srv.client("dave", caps=["server-time"])
    for c in (alice, bob, carol, dave):
        await join(c, "#test")
    await sync(alice, bob, carol, dave)

    await alice.send("@+baz=bat;fizz=buzz PRIVMSG #test hi")
    assert await alice.ping_pong() == []
    got, = await bob.ping_pong()
    assert show(got) == "@+baz=bat;msgid=* :alice!~alice@127.0.0.1 PRIVMSG #test hi"
    assert got.tags["msgid"]
    assert shown(await carol.ping_pong()) == [":alice!~alice@127.0.0.1 PRIVMSG #test hi"]
    assert shown(await dave.ping_pong()) == ["@time=* :alice!~alice@127.0.0.1 PRIVMSG #test hi"]

    await bob.send(r"@+buzz=fizz\:buzz;cat=dog;+steel=wootz TAGMSG #test")
    echo, = await bob.ping_pong()
    relay, = await alice.ping_pong()
    for m in (echo, relay):
        assert show(m) == "@+buzz=fizz;buzz;+steel=wootz;msgid=* :bob!~bob@127.0.0.1 TAGMSG #test"
        assert m.tags["+buzz"] == "fizz;buzz"
    assert echo.tags["msgid"] == relay.tags["msgid"]
    assert await carol.ping_pong() == []
    assert await dave.ping_pong() == []


async def test_tag_data_limit_on_messages(srv):
    """IRCv3 message-tags, "Size limit": clients may send at most 4094 bytes of tag data
    (all tags, not only client-only ones); a message over it gets 417 ERR_INPUTTOOLONG and
    is not relayed. Exactly 4094 bytes is accepted and relayed intact."""
    alice = await srv.client("alice", caps=["message-tags", "echo-message"])
    bob = await srv.client("bob", caps=["message-tags"])
    await join(alice, "#test")
    await join(bob, "#test")
    await sync(alice)

    at_limit = "@foo=bar;+baz=%s TAGMSG #test" % ("a" * 4081,)
    assert at_limit.index("TAGMSG") == 4096
    await alice.send(at_limit)
    echo, = await alice.ping_pong()
    relay, = await bob.ping_pong()
    for m in (echo, relay):
        assert (m.source, m.command, m.params) == ("alice!~alice@127.0.0.1", "TAGMSG", ["#test"])
        assert m.tags == {"+baz": "a" * 4081, "msgid": echo.tags["msgid"]}

    for line in ("@foo=bar;+baz=%s TAGMSG #test" % ("a" * 4082,),
                 "@foo=bar;+baz=%s PRIVMSG #test %s" % ("a" * 4082, "b" * 495)):
        assert shown(await ask(alice, line)) == [f"{S} 417 alice :Input line was too long"]
        assert await bob.ping_pong() == []


async def test_tag_data_limit_on_any_line(srv):
    """IRCv3 message-tags, "Size limit": servers MUST reply 417 to any line with more than
    4094 bytes of tag data and MUST NOT process it."""
    c = await srv.client("pinger", caps=["message-tags"])
    await c.send("@a=%s PING toolong" % ("x" * 4100,))
    assert shown(await c.ping_pong()) == [f"{S} 417 pinger :Input line was too long"]  # no PONG


async def test_echo_message_to_channel(srv):
    """IRCv3 echo-message: the sender receives its own PRIVMSG/NOTICE with the same
    parameters (and msgid) as the other members; with server-time both carry `time`."""
    for command in ("PRIVMSG", "NOTICE"):
        chan = f"#echo{command.lower()}"
        a = await srv.client(f"e{command.lower()}", caps=["echo-message", "server-time",
                                                          "message-tags"])
        b = await srv.client(f"r{command.lower()}", caps=["server-time", "message-tags"])
        await join(a, chan)
        await join(b, chan)
        await sync(a)
        await a.send(f"{command} {chan} :hello everyone")
        echo, = await a.ping_pong()
        relay, = await b.ping_pong()
        for m in (echo, relay):
            assert show(m) == (f"@msgid=*;time=* :e{command.lower()}!~e{command.lower()}@127.0.0.1 "
                               f"{command} {chan} :hello everyone")
        assert echo.tags["msgid"] == relay.tags["msgid"]


async def test_direct_message_echo_with_label_and_tags(srv):
    """IRCv3 echo-message + labeled-response: a labeled private message is echoed with
    the label and the client-only tags; the recipient gets the tags but not the label;
    both copies carry the same msgid."""
    caps = ["batch", "labeled-response", "echo-message", "message-tags"]
    bar = await srv.client("bar", caps=caps)
    qux = await srv.client("qux", caps=caps)
    await bar.send("@label=xyz;+example-client-tag=example-value PRIVMSG qux :hi there")
    echo, = await bar.ping_pong()
    delivery, = await qux.ping_pong()
    assert show(echo) == ("@+example-client-tag=example-value;label=xyz;msgid=* "
                          ":bar!~bar@127.0.0.1 PRIVMSG qux :hi there")
    assert show(delivery) == ("@+example-client-tag=example-value;msgid=* "
                              ":bar!~bar@127.0.0.1 PRIVMSG qux :hi there")
    assert echo.tags["msgid"] == delivery.tags["msgid"]


async def test_tagmsg_echo_needs_message_tags(srv):
    """IRCv3 message-tags, "TAGMSG": servers MUST NOT deliver TAGMSG to a client without
    message-tags, and that includes the echo-message copy to its sender."""
    a = await srv.client("echoonly", caps=["echo-message"])
    b = await srv.client("tagger", caps=["message-tags"])
    await a.send("@+typing=active TAGMSG tagger")
    assert await a.ping_pong() == []
    assert shown(await b.ping_pong()) == [
        "@+typing=active;msgid=* :echoonly!~echoonly@127.0.0.1 TAGMSG tagger"]


async def test_server_time_format(srv):
    """IRCv3 server-time: `time` is UTC in the form YYYY-MM-DDThh:mm:ss.sssZ."""
    a = await srv.client("timer", caps=["server-time"])
    b = await srv.client("ticker")
    await b.send("PRIVMSG timer :tick")
    m = await a.expect("PRIVMSG")
    assert show(m) == "@time=* :ticker!~ticker@127.0.0.1 PRIVMSG timer tick"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", m.tags["time"])


# == labeled-response, batch ==============================================================

LABEL_CAPS = ["echo-message", "batch", "labeled-response"]


async def test_labeled_privmsg_to_several_users_is_batched(srv):
    """IRCv3 labeled-response: a labeled command with several response lines gets one
    `labeled-response` BATCH carrying the label; recipients never see the label."""
    foo = await srv.client("foo", caps=LABEL_CAPS)
    others = [await srv.client(n, caps=LABEL_CAPS) for n in ("bar", "carl", "alice")]
    await foo.send("@label=12345 PRIVMSG bar,carl,alice :hi")
    start, *body, end = await foo.ping_pong()
    ref = start.params[0][1:]
    assert show(start) == f"@label=12345 {S} BATCH +{ref} labeled-response"
    assert shown(body) == [f"@batch={ref} :foo!~foo@127.0.0.1 PRIVMSG {n} hi"
                           for n in ("bar", "carl", "alice")]
    assert show(end) == f"{S} BATCH -{ref}"
    for o in others:
        assert shown(await o.ping_pong()) == [f":foo!~foo@127.0.0.1 PRIVMSG {o.nick} hi"]


@pytest.mark.parametrize("command", ["PRIVMSG", "NOTICE", "TAGMSG"])
async def test_labeled_message_to_self(srv, command):
    """IRCv3 labeled-response with echo-message: a labeled message to oneself arrives
    twice (the delivery and the echo), and exactly one of the two carries the label; no
    batch is needed for that single response line."""
    foo = await srv.client("foo", caps=LABEL_CAPS + ["message-tags"])
    text = "" if command == "TAGMSG" else " :hi"
    await foo.send(f"@label=12345;+draft/react=x {command} foo{text}")
    msgs = await foo.ping_pong()
    line = f":foo!~foo@127.0.0.1 {command} foo" + (" hi" if text else "")
    assert sorted(shown(msgs)) == [f"@+draft/react=x;label=12345;msgid=* {line}",
                                   f"@+draft/react=x;msgid=* {line}"]
    assert msgs[0].tags["msgid"] == msgs[1].tags["msgid"]


async def test_labeled_message_to_self_without_echo(srv):
    """IRCv3 labeled-response: "When a client sends a message to itself, the server MUST
    NOT include the label tag, except for any acknowledgment sent with echo-message";
    without echo-message the delivered copy is unlabeled and the command's (empty)
    response is a labeled ACK."""
    foo = await srv.client("foo", caps=["batch", "labeled-response"])
    await foo.send("@label=abc PRIVMSG foo :hi")
    assert shown(await foo.ping_pong()) == [":foo!~foo@127.0.0.1 PRIVMSG foo hi",
                                            f"@label=abc {S} ACK"]


async def test_labeled_single_none_and_unknown(srv):
    """IRCv3 labeled-response: one response line is labeled directly (no batch); a
    command with no response gets a labeled ACK; an unknown command's 421 is labeled;
    a JOIN's several lines are in a batch whose id is letters, digits and hyphens."""
    c = await srv.client("lab", caps=["batch", "labeled-response", "message-tags",
                                      "server-time"])
    await c.send("@label=98765 PING adhoctestline")
    assert show(await c.next_message()) == f"@label=98765 {S} PONG test.server adhoctestline"
    await c.send("@label=98766 PONG adhoctestline")
    assert show(await c.next_message()) == f"@label=98766 {S} ACK"
    await c.send("@label=deadbeef NONEXISTENT_COMMAND")
    assert show(await c.next_message()) == \
        f"@label=deadbeef {S} 421 lab NONEXISTENT_COMMAND :Unknown command"
    await c.send("@label=12345 JOIN #xyz")
    msgs = await c.ping_pong()
    start, end = msgs[0], msgs[-1]
    ref = start.params[0][1:]
    assert re.fullmatch(r"[A-Za-z0-9-]+", ref)
    assert shown(msgs) == [f"@label=12345 {S} BATCH +{ref} labeled-response",
                           f"@batch={ref};time=* :lab!~lab@127.0.0.1 JOIN #xyz",
                           f"@batch={ref} {S} 353 lab = #xyz @lab",
                           f"@batch={ref} {S} 366 lab #xyz :End of /NAMES list.",
                           f"{S} BATCH -{ref}"]


# == Channel membership replies: multi-prefix, userhost-in-names, no-implicit-names =======

async def test_multi_prefix_in_names_and_who(srv):
    """IRCv3 multi-prefix: all prefixes, highest rank first, in NAMES and in WHO flags."""
    c = await srv.client("foo", caps=["multi-prefix"])
    await join(c, "#chan")
    assert shown(await ask(c, "MODE #chan +v foo")) == [":foo!~foo@127.0.0.1 MODE #chan +v foo"]
    assert shown(await ask(c, "NAMES #chan")) == [f"{S} 353 foo = #chan @+foo",
                                                  f"{S} 366 foo #chan :End of /NAMES list."]
    assert shown(await ask(c, "WHO #chan")) == [
        f"{S} 352 foo #chan ~foo 127.0.0.1 test.server foo H@+ :0 Test User",
        f"{S} 315 foo #chan :End of /WHO list."]


async def test_userhost_in_names(srv):
    """IRCv3 userhost-in-names: NAMES entries are full nick!user@host masks."""
    c = await srv.client("uhn", caps=["userhost-in-names"])
    await join(c, "#uhn")
    assert shown(await ask(c, "NAMES #uhn")) == [f"{S} 353 uhn = #uhn @uhn!~uhn@127.0.0.1",
                                                 f"{S} 366 uhn #uhn :End of /NAMES list."]


async def test_no_implicit_names(srv):
    """IRCv3 draft/no-implicit-names: JOIN is not followed by NAMES replies; an explicit
    NAMES still works."""
    c = await srv.client("quietjoin", caps=["draft/no-implicit-names"])
    assert shown(await ask(c, "JOIN #nin")) == [":quietjoin!~quietjoi@127.0.0.1 JOIN #nin"]
    assert shown(await ask(c, "NAMES #nin")) == [f"{S} 353 quietjoin = #nin @quietjoin",
                                                 f"{S} 366 quietjoin #nin :End of /NAMES list."]


# == away-notify, account-tag, account-notify, extended-join, chghost, setname ============

async def test_away_notify(srv):
    """IRCv3 away-notify: members with the capability hear AWAY from a neighbour going
    away (with the message) and coming back (no parameter), and hear AWAY right after
    an already-away user's JOIN."""
    foo = await srv.client("foo", caps=["away-notify"])
    bar = await srv.client("bar")
    await join(foo, "#chan")
    await join(bar, "#chan")
    await sync(foo)
    await bar.send("AWAY :i'm going away")
    assert shown(await bar.ping_pong()) == [f"{S} 306 bar :You have been marked as being away"]
    assert shown(await foo.ping_pong()) == [":bar!~bar@127.0.0.1 AWAY :i'm going away"]
    await bar.send("AWAY")
    assert shown(await bar.ping_pong()) == [f"{S} 305 bar :You are no longer marked as being away"]
    assert shown(await foo.ping_pong()) == [":bar!~bar@127.0.0.1 AWAY"]
    baz = await srv.client("baz")
    await ask(baz, "AWAY :already away")
    await join(baz, "#chan")
    assert shown(await foo.ping_pong()) == [":baz!~baz@127.0.0.1 JOIN #chan",
                                            ":baz!~baz@127.0.0.1 AWAY :already away"]
    assert shown(await bar.ping_pong()) == [":baz!~baz@127.0.0.1 JOIN #chan"]   # no away-notify


async def test_account_tag_and_extended_join(srv):
    """IRCv3 account-tag and extended-join: messages from a logged-in user carry
    `account=<name>` for clients with account-tag; JOIN is `JOIN #chan <account|*>
    :<realname>` for clients with extended-join."""
    foo = await srv.client("foo", caps=["account-tag", "extended-join"])
    bar = await srv.client("bar", realname="Realname")
    await join(foo, "#chan")
    await join(bar, "#chan")
    assert shown(await foo.ping_pong()) == [":bar!~bar@127.0.0.1 JOIN #chan * Realname"]
    srv.state.set_account(srv.state.find_user("bar"), "jilles")
    await bar.send("PRIVMSG foo :hi")
    assert show(await foo.expect("PRIVMSG")) == "@account=jilles :bar!~bar@127.0.0.1 PRIVMSG foo hi"
    await ask(bar, "PART #chan", "JOIN #chan")
    assert shown(await foo.ping_pong()) == [":bar!~bar@127.0.0.1 PART #chan",
                                            ":bar!~bar@127.0.0.1 JOIN #chan jilles Realname"]


async def test_chghost_to_capable_neighbours(srv):
    """IRCv3 chghost: neighbours with the capability (and the user itself, if capable)
    get `:nick!old@old CHGHOST new_user new_host`."""
    op = await srv.client("op")
    await oper_up(op)
    watcher = await srv.client("observer", caps=["chghost"])
    target = await srv.client("target", caps=["chghost"])
    await join(watcher, "#chan")
    await join(target, "#chan")
    await sync(watcher)
    await op.send("CHGHOST target ~b vhost.example.com")
    assert shown(await op.ping_pong()) == [
        f"{S} NOTICE op :*** Changed the host of target to ~b@vhost.example.com"]
    change = ":target!~target@127.0.0.1 CHGHOST ~b vhost.example.com"
    assert shown(await watcher.ping_pong()) == [change]
    assert shown(await target.ping_pong()) == [
        change, f"{S} 396 target vhost.example.com :is now your displayed host"]


async def test_chghost_fallback_for_clients_without_the_cap(srv):
    """IRCv3 chghost, "Fallback": neighbours without the capability SHOULD see the change
    as QUIT from the old mask, JOIN from the new one and MODE restoring channel status."""
    op = await srv.client("op")
    await oper_up(op)
    oldclient = await srv.client("oldclient")
    target = await srv.client("target")
    await join(target, "#chan")          # target created the channel: it is an operator
    await join(oldclient, "#chan")
    await sync(target)
    await op.send("CHGHOST target ~b vhost.example.com")
    await op.ping_pong()
    assert shown(await oldclient.ping_pong()) == [
        ":target!~target@127.0.0.1 QUIT :Changing host",
        ":target!~b@vhost.example.com JOIN #chan",
        f"{S} MODE #chan +o target"]
    # the user itself, without the capability, is only told its new host
    assert shown(await target.ping_pong()) == [
        f"{S} 396 target vhost.example.com :is now your displayed host"]


async def test_setname(srv):
    """IRCv3 setname: the sender (with the capability) is confirmed with SETNAME, WHOIS
    shows the new realname, channel neighbours with the capability are told and those
    without are not."""
    foo = await srv.client("foo", caps=["setname"])
    bar = await srv.client("bar", caps=["setname"])
    baz = await srv.client("baz")
    for c in (foo, bar, baz):
        await join(c, "#chan")
    await sync(foo, bar, baz)
    await foo.send("SETNAME bar")
    assert shown(await foo.ping_pong()) == [":foo!~foo@127.0.0.1 SETNAME bar"]
    whois = [m for m in await ask(foo, "WHOIS foo") if m.command == "311"]
    assert shown(whois) == [f"{S} 311 foo foo ~foo 127.0.0.1 * bar"]
    assert shown(await bar.ping_pong()) == [":foo!~foo@127.0.0.1 SETNAME bar"]
    await foo.send("SETNAME qux")
    assert shown(await foo.ping_pong()) == [":foo!~foo@127.0.0.1 SETNAME qux"]
    assert shown(await bar.ping_pong()) == [":foo!~foo@127.0.0.1 SETNAME qux"]
    assert await baz.ping_pong() == []


async def test_invite_notify(srv):
    """IRCv3 invite-notify: channel operators with the capability hear `:inviter INVITE
    target #chan`; members without it (or without the privilege) are not told."""
    op = await srv.client("chanop")
    watcher = await srv.client("watcher", caps=["invite-notify"])
    plain = await srv.client("plain")
    await join(op, "#inv")
    await join(watcher, "#inv")
    await join(plain, "#inv")
    await ask(op, "MODE #inv +o watcher")
    await sync(watcher, plain)
    guest = await srv.client("guest")
    await op.send("INVITE guest #inv")
    assert shown(await op.ping_pong()) == [f"{S} 341 chanop guest #inv"]
    assert shown(await watcher.ping_pong()) == [":chanop!~chanop@127.0.0.1 INVITE guest #inv"]
    assert shown(await guest.ping_pong()) == [":chanop!~chanop@127.0.0.1 INVITE guest #inv"]
    assert await plain.ping_pong() == []


# == MONITOR, extended-monitor ============================================================

async def test_monitor_online_offline(srv):
    """IRCv3 monitor: adding targets answers 730 RPL_MONONLINE (nick!user@host) for those
    online and 731 RPL_MONOFFLINE for the others; connects and quits of a watched nick
    are announced the same way."""
    foo = await srv.client("foo")
    bar = await srv.client("bar")
    msgs = await ask(foo, "MONITOR + bar,baz")
    assert shown(msgs) == [f"{S} 730 foo bar!~bar@127.0.0.1", f"{S} 731 foo baz"]
    await bar.send("QUIT :bye")
    assert show(await foo.expect("731")) == f"{S} 731 foo bar"
    again = await srv.client("bar")
    assert show(await foo.expect("730")) == f"{S} 730 foo bar!~bar@127.0.0.1"
    assert again.nick == "bar" and await foo.ping_pong() == []


async def test_monitor_remove_clear_list_status(srv):
    """IRCv3 monitor: `MONITOR -` and `MONITOR C` answer nothing and stop notifications;
    `MONITOR L` lists targets (732) then 733; `MONITOR S` gives 730/731 for each."""
    foo = await srv.client("foo")
    watcher2 = await srv.client("other")
    assert shown(await ask(foo, "MONITOR + qux")) == [f"{S} 731 foo qux"]
    assert shown(await ask(watcher2, "MONITOR + qux")) == [f"{S} 731 other qux"]
    assert await ask(watcher2, "MONITOR - qux") == []
    qux = await srv.client("qux")
    assert shown(await foo.ping_pong()) == [f"{S} 730 foo qux!~qux@127.0.0.1"]
    assert await watcher2.ping_pong() == []
    assert shown(await ask(foo, "MONITOR + bazbat")) == [f"{S} 731 foo bazbat"]
    listed = await ask(foo, "MONITOR L")
    assert show(listed[-1]) == f"{S} 733 foo :End of MONITOR list"
    assert all(m.source == "test.server" and m.command == "732" and m.params[0] == "foo"
               for m in listed[:-1])
    names = [n for m in listed[:-1] for n in m.params[1].split(",")]
    assert sorted(names) == ["bazbat", "qux"]
    status = sorted(shown(await ask(foo, "MONITOR S")))
    assert status == [f"{S} 730 foo qux!~qux@127.0.0.1", f"{S} 731 foo bazbat"]
    assert await ask(foo, "MONITOR C") == []
    assert shown(await ask(foo, "MONITOR L")) == [f"{S} 733 foo :End of MONITOR list"]
    assert qux.nick == "qux"


async def test_monitor_forbids_masks_and_tracks_nick_changes(srv):
    """IRCv3 monitor: targets must be nicks (hostmasks are never watched); a nick change
    to a watched nick gives 730, a case-only change gives nothing, and leaving it gives
    731 with the current spelling."""
    bar = await srv.client("bar")
    msgs = await ask(bar, "MONITOR + *!username@127.0.0.1", "MONITOR + qux")
    assert shown(msgs) == [f"{S} 731 bar qux"]      # the mask is silently not watched
    baz = await srv.client("baz")
    assert await bar.ping_pong() == []
    await baz.send("NICK qux")
    assert shown(await baz.ping_pong()) == [":baz!~baz@127.0.0.1 NICK qux"]
    assert shown(await bar.ping_pong()) == [f"{S} 730 bar qux!~baz@127.0.0.1"]
    assert shown(await ask(baz, "NICK QUX")) == [":qux!~baz@127.0.0.1 NICK QUX"]
    assert await bar.ping_pong() == []
    await baz.send("NICK bazbat")
    assert shown(await baz.ping_pong()) == [":QUX!~baz@127.0.0.1 NICK bazbat"]
    assert shown(await bar.ping_pong()) == [f"{S} 731 bar QUX"]


async def test_extended_monitor(srv):
    """IRCv3 extended-monitor: a watcher with extended-monitor and away-notify (or
    setname) hears AWAY (or SETNAME) from a watched user it shares no channel with; a
    watcher without the matching capability hears nothing."""
    watcher = await srv.client("foo", caps=["extended-monitor", "away-notify", "setname"])
    blind = await srv.client("blind", caps=["extended-monitor"])
    await ask(watcher, "MONITOR + bar")
    await ask(blind, "MONITOR + bar")
    bar = await srv.client("bar", caps=["setname"])
    await sync(watcher, blind)
    await ask(bar, "AWAY :afk")
    assert shown(await watcher.ping_pong()) == [":bar!~bar@127.0.0.1 AWAY afk"]
    await ask(bar, "AWAY")
    assert shown(await watcher.ping_pong()) == [":bar!~bar@127.0.0.1 AWAY"]
    await ask(bar, "SETNAME :new name")
    assert shown(await watcher.ping_pong()) == [":bar!~bar@127.0.0.1 SETNAME :new name"]
    assert await blind.ping_pong() == []


# == bot mode, UTF8ONLY ===================================================================

async def test_bot_mode(srv):
    """IRCv3 bot mode: ISUPPORT BOT=<letter>; setting it is echoed as MODE; WHOIS gives
    335 RPL_WHOISBOT; WHO flags contain the letter; messages carry the `bot` tag for
    message-tags clients."""
    bot = await srv.client("botnick")
    assert shown(await ask(bot, "MODE botnick +B")) == [":botnick!~botnick@127.0.0.1 MODE botnick +B"]
    user = await srv.client("usernick", caps=["message-tags"])
    whois = [m for m in await ask(user, "WHOIS botnick") if m.command == "335"]
    assert shown(whois) == [f"{S} 335 usernick botnick :is a bot"]
    await join(bot, "#chan")
    await join(user, "#chan")
    who = [m for m in await ask(user, "WHO #chan") if m.command == "352"]
    assert sorted(shown(who)) == [
        f"{S} 352 usernick #chan ~botnick 127.0.0.1 test.server botnick H@B :0 Test User",
        f"{S} 352 usernick #chan ~usernick 127.0.0.1 test.server usernick H :0 Test User"]
    await bot.send("PRIVMSG #chan :beep boop")
    assert show(await user.expect("PRIVMSG")) == \
        "@bot;msgid=* :botnick!~botnick@127.0.0.1 PRIVMSG #chan :beep boop"
    await bot.send("PRIVMSG usernick :beep")
    assert show(await user.expect("PRIVMSG")) == \
        "@bot;msgid=* :botnick!~botnick@127.0.0.1 PRIVMSG usernick beep"


async def test_invalid_utf8_is_refused(srv):
    """IRCv3 UTF8ONLY: with UTF8ONLY advertised, a message with invalid UTF-8 is not
    relayed and is answered with `FAIL <command> INVALID_UTF8`."""
    foo = await srv.client("foo")
    bar = await srv.client("bar")
    await foo.send("PRIVMSG bar hi")
    assert show(await bar.expect("PRIVMSG")) == ":foo!~foo@127.0.0.1 PRIVMSG bar hi"
    await foo.send_raw(b"PRIVMSG bar hi\xaa\r\n")
    assert shown(await foo.ping_pong()) == [
        f"{S} FAIL PRIVMSG INVALID_UTF8 :Message rejected, it contained invalid UTF-8"]
    assert await bar.ping_pong() == []


async def test_invalid_utf8_failure_is_labeled(srv):
    """IRCv3 labeled-response: every response to a labeled command carries the label,
    including the FAIL INVALID_UTF8 for a line that is not valid UTF-8."""
    c = await srv.client("bar", caps=["batch", "echo-message", "labeled-response"])
    await join(c, "#qux")
    await c.send_raw(b"@label=xyz PRIVMSG #qux hi\xaa\r\n")
    assert shown(await c.ping_pong()) == [
        f"@label=xyz {S} FAIL PRIVMSG INVALID_UTF8 :Message rejected, it contained invalid UTF-8"]


# == WHO / WHOX ===========================================================================

async def who_setup(srv):
    cool = await srv.client("coolNick", realname="My UniqueReal Name")
    await join(cool, "#chan")
    other = await srv.client("otherNick")
    await join(other, "#chan")
    await sync(cool)
    return cool, other


def check_whoreply(m, flags, channel="*"):
    assert show(m) == (f"{S} 352 otherNick {channel} ~coolnick 127.0.0.1 test.server coolNick "
                       f"{flags} :0 My UniqueReal Name")


def end_of_who(mask):
    return f"{S} 315 otherNick {mask} :End of /WHO list."


async def test_who_star_and_nick_masks(srv):
    """Modern WHO: `WHO *` lists every visible user; `WHO <nick>` (any case) and a glob
    over nicks give one 352 each; 315 echoes the mask exactly as sent."""
    cool, other = await who_setup(srv)
    msgs = await ask(other, "WHO *")
    assert commands(msgs) == ["352", "352", "315"] and show(msgs[-1]) == end_of_who("*")
    mine, theirs = sorted(msgs[:2], key=lambda m: m.params[5])
    check_whoreply(mine, "H")
    assert show(theirs) == (f"{S} 352 otherNick * ~othernic 127.0.0.1 test.server otherNick H "
                            ":0 Test User")
    for mask in ("coolNick", "coolnick", "coolni*"):
        msgs = await ask(other, f"WHO {mask}")
        assert commands(msgs) == ["352", "315"]
        check_whoreply(msgs[0], "H")
        assert show(msgs[1]) == end_of_who(mask)


async def test_who_flags_away_oper_and_channel(srv):
    """Modern WHO, RPL_WHOREPLY flags: H/G for here/gone, `*` for an operator; `WHO
    #chan` gives the channel in each reply and the member's prefix in the flags; a nick
    that does not exist gives only 315."""
    cool, other = await who_setup(srv)
    await oper_up(cool)
    await ask(cool, "AWAY :be right back")
    msgs = await ask(other, "WHO coolNick")
    assert len(msgs) == 2 and show(msgs[1]) == end_of_who("coolNick")
    check_whoreply(msgs[0], "G*")
    for mask in ("#chan", "#CHAN"):
        msgs = await ask(other, f"WHO {mask}")
        assert commands(msgs) == ["352", "352", "315"] and show(msgs[-1]) == end_of_who(mask)
        mine, theirs = sorted(msgs[:2], key=lambda m: m.params[5])
        check_whoreply(mine, "G*@", "#chan")
        assert show(theirs) == (f"{S} 352 otherNick #chan ~othernic 127.0.0.1 test.server "
                                "otherNick H :0 Test User")
    assert shown(await ask(other, "WHO idontexist")) == [end_of_who("idontexist")]


async def test_who_respects_invisibility_for_masks_only(srv):
    """Modern WHO: a +i user is hidden from mask searches by strangers, but shown for
    its exact nick and to users sharing a channel."""
    evan = await srv.client("evan")
    await ask(evan, "MODE evan +i")
    shiv = await srv.client("shivaram")
    reply = f"{S} 352 shivaram * ~evan 127.0.0.1 test.server evan H :0 Test User"
    assert shown(await ask(shiv, "WHO eva*")) == [f"{S} 315 shivaram eva* :End of /WHO list."]
    assert shown(await ask(shiv, "WHO evan")) == [reply, f"{S} 315 shivaram evan :End of /WHO list."]
    await join(evan, "#test")
    await join(shiv, "#test")
    assert shown(await ask(shiv, "WHO eva*")) == [reply, f"{S} 315 shivaram eva* :End of /WHO list."]


async def test_whox_fields_and_token(srv):
    """IRCv3 WHOX: `WHO <mask> %<fields>[,<token>]` answers 354 with the requested fields
    in the fixed order t c u i h s n f d l a o r (whatever order they were asked in);
    the account is 0 when not logged in."""
    cool, other = await who_setup(srv)
    for fields in ("tcuihsnfdlaor", "roaldfnshiuct"):
        msgs = await ask(other, f"WHO coolNick %{fields},123")
        assert commands(msgs) == ["354", "315"] and show(msgs[1]) == end_of_who("coolNick")
        p = msgs[0].params
        assert msgs[0].source == "test.server"
        assert p[0] == "otherNick" and p[1] == "123" and p[2] in ("#chan", "*")
        # the IP is not shown to other users
        assert p[3:8] == ["~coolnick", "255.255.255.255", "127.0.0.1", "test.server", "coolNick"]
        assert re.fullmatch(r"H@?", p[8]) and p[9] == "0" and p[10].isdigit() and p[11] == "0"
        assert p[12:] == ["n/a", "My UniqueReal Name"]
    assert shown(await ask(other, "WHO coolNick %tn,321")) == [f"{S} 354 otherNick 321 coolNick",
                                                               end_of_who("coolNick")]
    assert shown(await ask(other, "WHO coolNick %na")) == [f"{S} 354 otherNick coolNick 0",
                                                           end_of_who("coolNick")]


# == WHOIS / WHOWAS =======================================================================

async def test_whois_numerics(srv):
    """Modern WHOIS: replies come from the documented set (311, 319, 312, 313, 301, 317,
    671, 330, 338, 378, 379, 307, 335), 311 is `<nick> <user> <host> * :<realname>`,
    319 lists channels with prefixes, 301 carries the away text, 318 ends it; a server
    parameter naming this server (or a nick on it) is accepted."""
    allowed = {"311", "319", "312", "313", "301", "317", "671", "330", "338", "378", "379",
               "307", "335"}
    asker = await srv.client("nick1")
    target = await srv.client("nick2")
    await join(target, "#chan1", "#chan2")
    await ask(target, "AWAY :I'm on a break")
    for query in ("WHOIS nick2", "WHOIS test.server nick2", "WHOIS nick2 nick2"):
        msgs = await ask(asker, query)
        assert show(msgs[-1]) == f"{S} 318 nick1 nick2 :End of /WHOIS list."
        assert set(commands(msgs[:-1])) <= allowed
        assert all(m.source == "test.server" and m.params[:2] == ["nick1", "nick2"] for m in msgs)
        by = {m.command: m for m in msgs}
        assert len(by) == len(msgs)
        assert show(by["311"]) == f"{S} 311 nick1 nick2 ~nick2 127.0.0.1 * :Test User"
        assert set(by["319"].params[2].split()) == {"@#chan1", "@#chan2"}
        assert show(by["312"]) == f"{S} 312 nick1 nick2 test.server :Python IRC server"
        assert show(by["301"]) == f"{S} 301 nick1 nick2 :I'm on a break"
        assert int(by["317"].params[2]) < 5 and by["317"].params[3].isdigit()    # idle, signon
        assert by["317"].params[4] == "seconds idle, signon time"


async def test_whowas(srv):
    """RFC 1459 4.5.3 / RFC 2812 3.6.3 WHOWAS: most recent entry first, 314 is
    `<nick> <user> <host> * :<realname>`, a positive count limits the entries and a
    non-positive one gives all, 406 for an unknown nick, and 369 always ends the reply."""
    asker = await srv.client("nick1")
    for ident in ("ident2", "ident3"):
        c = await srv.client()
        await registration_burst(c, "NICK nick2", f"USER {ident} 0 * :Realname")
        await c.send("QUIT :bye")
        await until_closed(c)
    both = ["~ident3", "~ident2"]
    for query, idents in (("WHOWAS nick2", both), ("WHOWAS nick2 1", ["~ident3"]),
                          ("WHOWAS nick2 2", both), ("WHOWAS nick2 0", both),
                          ("WHOWAS nick2 -1", both)):
        msgs = await ask(asker, query)
        assert commands(msgs) == ["314", "312"] * len(idents) + ["369"]
        assert shown(msgs[0::2]) == [f"{S} 314 nick1 nick2 {ident} 127.0.0.1 * Realname"
                                     for ident in idents] + [f"{S} 369 nick1 nick2 :End of WHOWAS"]
        for m in msgs[1::2]:
            assert m.source == "test.server" and m.params[:3] == ["nick1", "nick2", "test.server"]
            assert re.fullmatch(r"\w{3} \w{3} \d\d \d\d:\d\d:\d\d \d{4} UTC", m.params[3])
    assert shown(await ask(asker, "WHOWAS nobody")) == [
        f"{S} 406 nick1 nobody :There was no such nickname", f"{S} 369 nick1 nobody :End of WHOWAS"]


# == LIST / ELIST =========================================================================

async def list_names(client, line="LIST"):
    """The channels a LIST shows, after checking the reply's frame and each entry's form."""
    msgs = await ask(client, line)
    nick = client.nick
    assert show(msgs[0]) == f"{S} 321 {nick} Channel :Users  Name"
    assert show(msgs[-1]) == f"{S} 323 {nick} :End of /LIST"
    for m in msgs[1:-1]:
        assert (m.source, m.command, m.params[0]) == ("test.server", "322", nick)
        assert len(m.params) == 4 and m.params[2].isdigit()
        assert re.fullmatch(r"\[\+[a-z]+\] .*", m.params[3])
    return {m.params[1] for m in msgs if m.command == "322"}


async def test_list_basics(srv):
    """RFC 1459 4.2.6 / RFC 2812 3.2.6 LIST: no channel gives just the end (323, maybe
    after 321); one channel gives one 322; a nonexistent channel is no error; a secret
    channel is listed only to its members."""
    foo = await srv.client("foo")
    bar = await srv.client("bar")
    assert await list_names(bar) == set()
    await join(foo, "#chan")
    assert await list_names(bar) == {"#chan"}
    assert shown(await ask(bar, "LIST"))[1:-1] == [f"{S} 322 bar #chan 1 :[+nt] "]
    assert await list_names(bar, "LIST #nonexistent") == set()
    await ask(foo, "MODE #chan +s")
    assert await list_names(foo) == {"#chan"}
    assert shown(await ask(foo, "LIST"))[1:-1] == [f"{S} 322 foo #chan 1 :[+nst] "]
    assert await list_names(bar) == set()


async def test_elist_masks_and_user_counts(srv):
    """Modern ELIST M/N/U: `LIST <mask>` and `LIST !<mask>` filter by name; `LIST >n` and
    `LIST <n` by member count."""
    foo = await srv.client("foo")
    bar = await srv.client("bar")
    await join(foo, "#chan1", "#chan2")
    await join(bar, "#chan2")
    for line, expected in (("LIST *an1", {"#chan1"}), ("LIST #c*n2", {"#chan2"}),
                           ("LIST *an3", set()), ("LIST #ch*", {"#chan1", "#chan2"}),
                           ("LIST !*an1", {"#chan2"}), ("LIST !#ch*", set()),
                           ("LIST >0", {"#chan1", "#chan2"}), ("LIST <1", set()),
                           ("LIST >1", {"#chan2"}), ("LIST <2", {"#chan1"})):
        assert await list_names(bar, line) == expected, line


async def test_elist_creation_and_topic_time(srv):
    """Modern ELIST C/T: `C<n`/`T<n` select channels created / topics set less than n
    minutes ago, `C>n`/`T>n` more than n minutes ago."""
    foo = await srv.client("foo")
    await join(foo, "#old", "#new")
    await ask(foo, "TOPIC #old :First", "TOPIC #new :Second")
    old = srv.state.find_channel("#old")
    old.created = Stamp(old.created.t - 180_000 * TICKS_PER_MS, old.created.sid)   # 180 s earlier
    old.topic_time -= 180
    assert shown(await ask(foo, "LIST C>2"))[1:-1] == [f"{S} 322 foo #old 1 :[+nt] First"]
    assert shown(await ask(foo, "LIST T<2"))[1:-1] == [f"{S} 322 foo #new 1 :[+nt] Second"]
    for kind in ("C", "T"):
        assert await list_names(foo, f"LIST {kind}>2") == {"#old"}
        assert await list_names(foo, f"LIST {kind}<2") == {"#new"}
        assert await list_names(foo, f"LIST {kind}<10") == {"#old", "#new"}


# == JOIN / PART / TOPIC / NAMES ==========================================================

async def test_join_replies(srv):
    """RFC 2812 3.2.1: a successful JOIN is confirmed with JOIN, then 353 (which includes
    the joiner, `=`/`*`/`@` symbol) and 366; joining again is harmless."""
    foo = await srv.client("foo")
    msgs = await ask(foo, "JOIN #chan")
    assert shown(msgs) == [":foo!~foo@127.0.0.1 JOIN #chan", f"{S} 353 foo = #chan @foo",
                           f"{S} 366 foo #chan :End of /NAMES list."]
    assert await ask(foo, "JOIN #chan") == []           # already there: nothing happens


async def test_join_empty_and_too_long_names(srv):
    """Modern JOIN: an empty channel list is 461 ERR_NEEDMOREPARAMS; a name longer than
    ISUPPORT CHANNELLEN is refused with 403 ERR_NOSUCHCHANNEL (a name exactly that long
    is fine)."""
    foo = await srv.client("foo")
    assert shown(await ask(foo, "JOIN :")) == [f"{S} 461 foo JOIN :Not enough parameters"]
    ok = "#" + "a" * 63
    assert shown(await ask(foo, f"JOIN {ok}"))[0] == f":foo!~foo@127.0.0.1 JOIN {ok}"
    bad = "#" + "b" * 64
    assert shown(await ask(foo, f"JOIN {bad}")) == [f"{S} 403 foo {bad} :No such channel"]


async def test_chanlimit(make_server):
    """Modern CHANLIMIT: joining past the advertised limit is refused with 405."""
    s = await make_server(limits={"flood_control": False, "max_channels": 3})
    foo = await s.client("foo")
    await join(foo, "#chan0", "#chan1", "#chan2")
    assert shown(await ask(foo, "JOIN #chan")) == [
        f"{S} 405 foo #chan :You have joined too many channels"]


async def test_part(srv):
    """RFC 1459 4.2.2 / RFC 2812 3.2.2 PART: both the parting member and the others get
    PART, with the part message when one is given; parting a channel one is not on is
    442 (403 when it does not exist)."""
    bar = await srv.client("bar")
    baz = await srv.client("baz")
    assert shown(await ask(bar, "PART #chan")) == [f"{S} 403 bar #chan :No such channel"]
    await join(bar, "#chan")
    assert shown(await ask(baz, "PART #chan")) == [f"{S} 442 baz #chan :You're not on that channel"]
    await join(baz, "#chan")
    await sync(bar)
    await bar.send("PART #chan :bye everyone")
    assert shown(await bar.ping_pong()) == [":bar!~bar@127.0.0.1 PART #chan :bye everyone"]
    assert shown(await baz.ping_pong()) == [":bar!~bar@127.0.0.1 PART #chan :bye everyone"]


async def test_topic(srv):
    """RFC 2812 3.2.4 TOPIC: members see TOPIC changes; with +t only operators may set it
    (482, even for voiced users); without +t anyone on the channel may; RPL_NOTOPIC only
    answers an explicit query; an empty topic clears it; JOIN sends 332 and 333."""
    bar = await srv.client("bar")
    qux = await srv.client("qux")
    assert shown(await ask(qux, "TOPIC #test")) == [f"{S} 403 qux #test :No such channel"]
    await join(bar, "#test")
    msgs = await ask(qux, "JOIN #test")
    assert commands(msgs) == ["JOIN", "353", "366"]      # no 331 on JOIN
    assert shown(await ask(qux, "TOPIC #test")) == [f"{S} 331 qux #test :No topic is set"]
    await sync(bar)
    await bar.send("TOPIC #test :new topic")
    assert shown(await bar.ping_pong()) == [":bar!~bar@127.0.0.1 TOPIC #test :new topic"]
    assert shown(await qux.ping_pong()) == [":bar!~bar@127.0.0.1 TOPIC #test :new topic"]
    not_op = [f"{S} 482 qux #test :You're not a channel operator"]
    assert shown(await ask(qux, "TOPIC #test :mine")) == not_op
    await ask(bar, "MODE #test +v qux")
    await sync(qux)
    assert shown(await ask(qux, "TOPIC #test :mine")) == not_op
    assert await bar.ping_pong() == []
    await ask(bar, "MODE #test -t")
    await sync(qux)
    await qux.send("TOPIC #test :T0P1C")
    assert shown(await qux.ping_pong()) == [":qux!~qux@127.0.0.1 TOPIC #test T0P1C"]
    assert shown(await bar.ping_pong()) == [":qux!~qux@127.0.0.1 TOPIC #test T0P1C"]
    buzz = await srv.client("buzz")
    msgs = await ask(buzz, "JOIN #test")
    assert commands(msgs) == ["JOIN", "332", "333", "353", "366"]
    assert show(msgs[1]) == f"{S} 332 buzz #test T0P1C"
    assert msgs[2].params[:3] == ["buzz", "#test", "qux!~qux@127.0.0.1"] and msgs[2].params[3].isdigit()
    await sync(bar)
    await bar.send("TOPIC #test :")
    assert shown(await bar.ping_pong()) == [":bar!~bar@127.0.0.1 TOPIC #test :"]
    assert shown(await qux.ping_pong()) == [":buzz!~buzz@127.0.0.1 JOIN #test",
                                            ":bar!~bar@127.0.0.1 TOPIC #test :"]
    assert commands(await ask(await srv.client("late"), "JOIN #test")) == ["JOIN", "353", "366"]


async def test_names(srv):
    """RFC 2812 3.2.5 / Modern NAMES: `353 <client> = <channel> :<entries>` without a
    trailing space, then 366; an invalid or unknown channel gives only 366 with the name
    as given."""
    n1 = await srv.client("nick1")
    n2 = await srv.client("nick2")
    await join(n1, "#chan")
    await join(n2, "#chan")
    await sync(n1)
    msgs = await ask(n1, "NAMES #chan")
    assert commands(msgs) == ["353", "366"]
    assert msgs[0].source == "test.server" and msgs[0].params[:3] == ["nick1", "=", "#chan"]
    assert re.fullmatch(r"(nick2 @nick1|@nick1 nick2)", msgs[0].params[3])
    assert show(msgs[1]) == f"{S} 366 nick1 #chan :End of /NAMES list."
    for name in ("invalid", "#nonexisting"):
        assert shown(await ask(n1, f"NAMES {name}")) == [f"{S} 366 nick1 {name} :End of /NAMES list."]


async def test_channel_casemapping(srv):
    """RFC 1459 2.2 casemapping (CASEMAPPING=rfc1459): `[]\\~` are the lower-case of
    `{}|^`, so `#F]|oo{` and `#f}\\oo[` are the same channel; `#Foo` and `#fooa` are not."""
    foo = await srv.client("foo")
    bar = await srv.client("bar")
    for one, two, same in (("#Foo", "#foo", True), ("#F]|oo{", "#f}\\oo[", True),
                           ("#F}o\\o[", "#f]o|o{", True), ("#Bar", "#bara", False)):
        await join(foo, one)
        joined = await ask(bar, f"JOIN {two}")
        # one channel keeps the spelling of its creator
        assert show(joined[0]) == f":bar!~bar@127.0.0.1 JOIN {one if same else two}", (one, two)
        seen = await foo.ping_pong()
        assert shown(seen) == ([f":bar!~bar@127.0.0.1 JOIN {one}"] if same else []), (one, two)
        await ask(foo, "JOIN 0")
        await ask(bar, "JOIN 0")


# == INVITE / KICK ========================================================================

async def test_invite(srv):
    """Modern INVITE: 401 for an unknown nick; success is 341 `<client> <nick> <channel>`
    to the inviter and `:inviter INVITE <nick> <channel>` to the invitee, who may then
    join a +i channel once; other members are not told; 442 when the inviter is not on
    the channel; 443 when the invitee already is; 482 from a non-op on a +i channel."""
    foo = await srv.client("foo")
    await join(foo, "#chan")
    await ask(foo, "MODE #chan +i")
    assert shown(await ask(foo, "INVITE bar #chan")) == [f"{S} 401 foo bar :No such nick/channel"]
    bar = await srv.client("bar")
    assert shown(await ask(bar, "JOIN #chan")) == [
        f"{S} 473 bar #chan :Cannot join channel (+i) - you must be invited"]
    assert shown(await ask(foo, "INVITE bar #chan")) == [f"{S} 341 foo bar #chan"]
    assert shown(await bar.ping_pong()) == [":foo!~foo@127.0.0.1 INVITE bar #chan"]
    await join(bar, "#chan")
    await sync(foo)
    assert shown(await ask(foo, "INVITE bar #chan")) == [f"{S} 443 foo bar #chan :is already on channel"]
    baz = await srv.client("baz")
    assert shown(await ask(baz, "INVITE bar #chan")) == [f"{S} 442 baz #chan :You're not on that channel"]
    await ask(foo, "MODE #chan -o foo")
    assert shown(await ask(foo, "INVITE baz #chan")) == [
        f"{S} 482 foo #chan :You're not a channel operator"]
    assert shown(await bar.ping_pong()) == [":foo!~foo@127.0.0.1 MODE #chan -o foo"]   # no INVITE
    assert await baz.ping_pong() == []


async def test_invite_unopped_and_ban_override(srv):
    """RFC 2812 3.2.7: on a channel without +i any member may invite; an invitation
    lets a banned user in, and is used up by that one JOIN."""
    alice = await srv.client("alice")
    await join(alice, "#alice")
    await ask(alice, "MODE #alice +b bob!*@*", "MODE #alice -o alice")
    bob = await srv.client("bob")
    banned = [f"{S} 474 bob #alice :Cannot join channel (+b) - you are banned"]
    assert shown(await ask(bob, "JOIN #alice")) == banned
    assert shown(await ask(alice, "INVITE bob #alice")) == [f"{S} 341 alice bob #alice"]
    assert shown(await ask(bob, "JOIN #alice")) == [":alice!~alice@127.0.0.1 INVITE bob #alice",
                                                    ":bob!~bob@127.0.0.1 JOIN #alice",
                                                    f"{S} 353 bob = #alice :alice bob",
                                                    f"{S} 366 bob #alice :End of /NAMES list."]
    await ask(bob, "PART #alice")
    assert shown(await ask(bob, "JOIN #alice")) == banned


async def test_kick(srv):
    """RFC 2812 3.2.8 KICK: every member sees `KICK #chan nick :reason`; without a reason
    the kicker's nick is used; a non-member gets 442/482/403, a non-op member 482; an
    operator may kick other operators; a nonexistent channel is 403."""
    foo = await srv.client("foo")
    bar = await srv.client("bar")
    baz = await srv.client("baz")
    for c in (foo, bar, baz):
        await join(c, "#chan")
    await sync(foo, bar)
    await foo.send("KICK #chan bar :bye")
    for c in (foo, bar, baz):
        assert shown(await c.ping_pong()) == [":foo!~foo@127.0.0.1 KICK #chan bar bye"]
    assert srv.state.find_user("bar") not in srv.state.find_channel("#chan").members
    await join(bar, "#chan")
    await sync(foo, baz)
    await foo.send("KICK #chan bar")
    assert shown(await foo.ping_pong()) == [":foo!~foo@127.0.0.1 KICK #chan bar foo"]
    assert shown(await baz.ping_pong()) == [":foo!~foo@127.0.0.1 KICK #chan bar foo"]
    qux = await srv.client("qux")
    assert shown(await ask(qux, "KICK #chan baz")) == [f"{S} 442 qux #chan :You're not on that channel"]
    assert shown(await ask(baz, "KICK #chan foo")) == [f"{S} 482 baz #chan :You're not a channel operator"]
    assert await foo.ping_pong() == []
    await ask(foo, "MODE #chan +o baz")
    await sync(baz)
    await baz.send("KICK #chan foo")
    assert shown(await baz.ping_pong()) == [":baz!~baz@127.0.0.1 KICK #chan foo baz"]
    assert shown(await foo.ping_pong()) == [":baz!~baz@127.0.0.1 KICK #chan foo baz"]
    assert shown(await ask(qux, "KICK #nochan qux")) == [f"{S} 403 qux #nochan :No such channel"]


@pytest.mark.parametrize("line", ["KICK #chan bar,baz :bye", "KICK #chan,#chan bar,baz :bye"])
async def test_kick_several_targets(srv, line):
    """RFC 2812 3.2.8 / Modern KICK (TARGMAX=KICK:n): one channel with several users, or
    as many channels as users in pairs; each kick reaches members as its own
    single-target KICK message."""
    clients = [await srv.client(n) for n in ("foo", "bar", "baz", "qux")]
    for c in clients:
        await join(c, "#chan")
    await sync(*clients)
    await clients[0].send(line)
    kicks = [":foo!~foo@127.0.0.1 KICK #chan bar bye", ":foo!~foo@127.0.0.1 KICK #chan baz bye"]
    assert shown(await clients[0].ping_pong()) == kicks
    assert shown(await clients[3].ping_pong()) == kicks
    # two channels for three nicks is neither form
    assert shown(await ask(clients[0], "KICK #chan,#chan qux,foo,bar :x")) == [
        f"{S} 461 foo KICK :Not enough parameters"]
    assert await clients[3].ping_pong() == []


# == MODE =================================================================================

async def test_channel_mode_query_and_clear(srv):
    """Modern MODE / 324 RPL_CHANNELMODEIS / 329 RPL_CREATIONTIME: `MODE #chan` answers
    324 and 329; removing every listed mode is echoed as one MODE, after which the mode
    string is just `+`."""
    op = await srv.client("chanop")
    await join(op, "#chan")
    # +n and +t are already set: only the change (+i) is echoed
    assert shown(await ask(op, "MODE #chan +int")) == [":chanop!~chanop@127.0.0.1 MODE #chan +i"]
    msgs = await ask(op, "MODE #chan")
    assert commands(msgs) == ["324", "329"]
    assert show(msgs[0]) == f"{S} 324 chanop #chan +int"
    created = msgs[1].params[2]
    assert show(msgs[1]) == f"{S} 329 chanop #chan {created}" and created.isdigit()
    assert shown(await ask(op, "MODE #chan -int")) == [":chanop!~chanop@127.0.0.1 MODE #chan -int"]
    assert shown(await ask(op, "MODE #chan")) == [f"{S} 324 chanop #chan +",
                                                  f"{S} 329 chanop #chan {created}"]


async def test_channel_operator_mode_errors(srv):
    """Modern channel operators / MODE: +o from a non-op is only 482; a target not on the
    channel is only 441; an unknown nick only 401; an unknown channel only 403; success
    is echoed to the channel."""
    op = await srv.client("chanop")
    plain = await srv.client("unprivileged")
    other = await srv.client("unrelated")
    await join(op, "#chan")
    await join(plain, "#chan", "#unrelated")
    await join(other, "#unrelated")
    await sync(op, plain)
    assert shown(await ask(plain, "MODE #chan +o unprivileged")) == [
        f"{S} 482 unprivileged #chan :You're not a channel operator"]
    assert shown(await ask(op, "MODE #chan +o unrelated")) == [
        f"{S} 441 chanop unrelated #chan :They aren't on that channel"]
    assert shown(await ask(op, "MODE #chan +o nobody")) == [f"{S} 401 chanop nobody :No such nick/channel"]
    assert shown(await ask(op, "MODE #nonexistentchan +o chanop")) == [
        f"{S} 403 chanop #nonexistentchan :No such channel"]
    assert shown(await ask(op, "MODE #unrelated +o unprivileged")) == [
        f"{S} 482 chanop #unrelated :You're not a channel operator"]
    assert await plain.ping_pong() == [] and await other.ping_pong() == []
    msgs = await ask(op, "MODE #chan +o unprivileged")
    assert shown(msgs) == [":chanop!~chanop@127.0.0.1 MODE #chan +o unprivileged"]
    assert shown(await plain.ping_pong()) == [":chanop!~chanop@127.0.0.1 MODE #chan +o unprivileged"]


@pytest.mark.parametrize("key", ["passphrase with spaces", "long" * 100, ""])
async def test_key_validation(srv, key):
    """Modern key channel mode: a key with spaces, too long, or empty is refused (696
    ERR_INVALIDMODEPARAM `<chan> k * :text` or 525 ERR_INVALIDKEY), never 400, and never
    set as given."""
    bar = await srv.client("bar")
    await join(bar, "#chan")
    msgs = await ask(bar, f"MODE #chan +k :{key}")
    assert shown(msgs) == [f"{S} 525 bar #chan :Key is not well-formed"]
    assert srv.state.find_channel("#chan").key is None
    foo = await srv.client("foo")
    assert commands(await ask(foo, "JOIN #chan")) == ["JOIN", "353", "366"]


async def test_key_mode(srv):
    """RFC 1459 4.2.3.1 key mode: JOIN without the key or with a wrong one is 475 and
    does not join; with the key it does."""
    bar = await srv.client("bar")
    await join(bar, "#chan")
    assert shown(await ask(bar, "MODE #chan +k beer")) == [":bar!~bar@127.0.0.1 MODE #chan +k beer"]
    qux = await srv.client("qux")
    for line in ("JOIN #chan", "JOIN #chan bees"):
        assert shown(await ask(qux, line)) == [
            f"{S} 475 qux #chan :Cannot join channel (+k) - bad key"]
    assert shown(await ask(qux, "JOIN #chan beer")) == [":qux!~qux@127.0.0.1 JOIN #chan",
                                                        f"{S} 353 qux = #chan :@bar qux",
                                                        f"{S} 366 qux #chan :End of /NAMES list."]


async def test_limit_mode(srv):
    """RFC 1459 4.2.3.1 / Modern client limit mode: +l n refuses joins past n members
    with 471 (only that); -l lifts it; lowering below the member count keeps members;
    an invitation bypasses the limit."""
    op = await srv.client("chanop")
    await join(op, "#chan")
    full = "Cannot join channel (+l) - channel is full"
    assert shown(await ask(op, "MODE #chan +l 1")) == [":chanop!~chanop@127.0.0.1 MODE #chan +l 1"]
    u2 = await srv.client("user2")
    assert shown(await ask(u2, "JOIN #chan")) == [f"{S} 471 user2 #chan :{full}"]
    assert shown(await ask(op, "MODE #chan -l")) == [":chanop!~chanop@127.0.0.1 MODE #chan -l"]
    await join(u2, "#chan")
    assert shown(await ask(op, "MODE #chan +l 1")) == [":user2!~user2@127.0.0.1 JOIN #chan",
                                                       ":chanop!~chanop@127.0.0.1 MODE #chan +l 1"]
    assert len(srv.state.find_channel("#chan").members) == 2     # lowering keeps members
    u3 = await srv.client("user3")
    assert shown(await ask(u3, "JOIN #chan")) == [f"{S} 471 user3 #chan :{full}"]
    assert shown(await ask(op, "INVITE user3 #chan")) == [f"{S} 341 chanop user3 #chan"]
    msgs = await ask(u3, "JOIN #chan")
    assert shown(msgs[:2]) == [":chanop!~chanop@127.0.0.1 INVITE user3 #chan",
                               ":user3!~user3@127.0.0.1 JOIN #chan"]


@pytest.mark.parametrize("limit", ["0", "-1", "abc", ""])
async def test_limit_invalid_values(srv, limit):
    """Modern client limit mode: an invalid limit is ignored, or refused with 696
    ERR_INVALIDMODEPARAM `<client> <chan> l <param> :<text>`; no limit is set."""
    op = await srv.client("chanop")
    await join(op, "#chan")
    msgs = await ask(op, f"MODE #chan +l :{limit}")
    assert shown(msgs) == [f"{S} 696 chanop #chan l {limit or '*'} "
                           ":Invalid limit mode parameter, it must be a positive number"]
    assert srv.state.find_channel("#chan").limit is None
    clients = []
    for nick in ("user2", "user3"):
        clients.append(await srv.client(nick))
        assert commands(await ask(clients[-1], "JOIN #chan")) == ["JOIN", "353", "366"]


async def test_ban_mode(srv):
    """RFC 1459 4.2.3.1 ban mode: a matching ban refuses JOIN with 474; removing it with a
    mask equal under the casemapping lets the user in."""
    op = await srv.client("chanop")
    await join(op, "#chan")
    assert shown(await ask(op, "MODE #chan +b BAR!*@*")) == [":chanop!~chanop@127.0.0.1 MODE #chan +b BAR!*@*"]
    bar = await srv.client("Bar")
    assert shown(await ask(bar, "JOIN #chan")) == [
        f"{S} 474 Bar #chan :Cannot join channel (+b) - you are banned"]
    # the removal names the mask as it is stored
    assert shown(await ask(op, "MODE #chan -b bar!*@*")) == [":chanop!~chanop@127.0.0.1 MODE #chan -b BAR!*@*"]
    assert commands(await ask(bar, "JOIN #chan")) == ["JOIN", "353", "366"]
    assert shown(await ask(op, "MODE #chan +b a[b]!*@*")) == [
        ":Bar!~bar@127.0.0.1 JOIN #chan", ":chanop!~chanop@127.0.0.1 MODE #chan +b a[b]!*@*"]
    assert shown(await ask(op, "MODE #chan -b A{B}!*@*")) == [
        ":chanop!~chanop@127.0.0.1 MODE #chan -b a[b]!*@*"]
    assert shown(await ask(op, "MODE #chan +b")) == [f"{S} 368 chanop #chan :End of channel ban list"]


async def test_invite_exception_mode(srv):
    """Modern invite-exception mode (INVEX): +I masks may join a +i channel without an
    invitation; the list is 346 `<chan> <mask> [<setter> <time>]` then 347; removing the
    entry restores the refusal; without +i it changes nothing."""
    op = await srv.client("chanop")
    await join(op, "#chan")
    await ask(op, "MODE #chan +i")
    bar = await srv.client("Bar")
    refused = [f"{S} 473 Bar #chan :Cannot join channel (+i) - you must be invited"]
    assert shown(await ask(bar, "JOIN #chan")) == refused
    assert shown(await ask(op, "MODE #chan +I bar!*@*")) == [":chanop!~chanop@127.0.0.1 MODE #chan +I bar!*@*"]
    listed = await ask(op, "MODE #chan +I")
    assert commands(listed) == ["346", "347"]
    stamp = listed[0].params[4]
    assert show(listed[0]) == f"{S} 346 chanop #chan bar!*@* chanop!~chanop@127.0.0.1 {stamp}"
    assert stamp.isdigit() and show(listed[1]) == f"{S} 347 chanop #chan :End of channel invite list"
    assert commands(await ask(bar, "JOIN #chan")) == ["JOIN", "353", "366"]
    await ask(bar, "PART #chan")
    await sync(op)
    assert shown(await ask(op, "MODE #chan -I bar!*@*")) == [":chanop!~chanop@127.0.0.1 MODE #chan -I bar!*@*"]
    assert shown(await ask(bar, "JOIN #chan")) == refused


async def test_moderated_and_no_external(srv):
    """RFC 1459 4.2.3.1 / RFC 2812: +m lets only voiced and operators speak (404 for the
    others, nothing relayed); +n refuses messages from outside (404); -n allows them."""
    op = await srv.client("chanop")
    baz = await srv.client("baz")
    await join(op, "#chan")
    assert shown(await ask(baz, "PRIVMSG #chan :outside")) == [
        f"{S} 404 baz #chan :Cannot send to channel (no external messages, +n)"]
    assert await op.ping_pong() == []
    await ask(op, "MODE #chan -n")
    assert await ask(baz, "PRIVMSG #chan :outside ok") == []
    assert shown(await op.ping_pong()) == [":baz!~baz@127.0.0.1 PRIVMSG #chan :outside ok"]
    await ask(op, "MODE #chan +m")
    await join(baz, "#chan")
    await sync(op)
    assert shown(await ask(baz, "PRIVMSG #chan :hi from baz")) == [
        f"{S} 404 baz #chan :Cannot send to channel (moderated, +m)"]
    assert await op.ping_pong() == []
    await ask(op, "MODE #chan +v baz")
    await sync(baz)
    assert await ask(baz, "PRIVMSG #chan :hi again from baz") == []
    assert shown(await op.ping_pong()) == [":baz!~baz@127.0.0.1 PRIVMSG #chan :hi again from baz"]


async def test_user_mode_replies(srv):
    """RFC 2812 3.1.5 user MODE: `MODE <own nick>` is 221; another user's modes are 502;
    +i is echoed; an unknown letter is 501."""
    c = await srv.client("moder")
    other = await srv.client("other")
    assert shown(await ask(c, "MODE moder")) == [f"{S} 221 moder +"]
    assert shown(await ask(c, "MODE other")) == [f"{S} 502 moder :Can't change mode for other users"]
    assert shown(await ask(c, "MODE moder +i")) == [":moder!~moder@127.0.0.1 MODE moder +i"]
    assert shown(await ask(c, "MODE moder +Z")) == [f"{S} 501 moder :Unknown MODE flag"]
    assert shown(await ask(c, "MODE moder")) == [f"{S} 221 moder +i"]
    assert other.nick == "other" and await other.ping_pong() == []


# == PRIVMSG / NOTICE / STATUSMSG =========================================================

async def test_privmsg_basics(srv):
    """RFC 2812 3.3.1 PRIVMSG: members get exactly one copy; private messages reach the
    nick; 401 `<client> <nick>` for an unknown nick, 401/403/404 for an unknown channel;
    an empty text is 412 and nothing is relayed."""
    foo = await srv.client("foo")
    bar = await srv.client("bar")
    await join(foo, "#chan")
    await join(bar, "#chan")
    await sync(foo)
    assert await ask(foo, "PRIVMSG #chan :hello there") == []
    assert shown(await bar.ping_pong()) == [":foo!~foo@127.0.0.1 PRIVMSG #chan :hello there"]
    assert await ask(foo, "PRIVMSG bar :hey there!") == []
    assert shown(await bar.ping_pong()) == [":foo!~foo@127.0.0.1 PRIVMSG bar :hey there!"]
    assert shown(await ask(foo, "PRIVMSG nobody :hey")) == [f"{S} 401 foo nobody :No such nick/channel"]
    assert shown(await ask(foo, "PRIVMSG #nonexistent :hi")) == [
        f"{S} 403 foo #nonexistent :No such channel"]
    assert shown(await ask(foo, "PRIVMSG #chan :")) == [f"{S} 412 foo :No text to send"]
    assert await bar.ping_pong() == []


async def test_notice_failures_are_reported_to_the_sender(srv):
    """RFC 1459 4.4.2 says servers send no error reply to a NOTICE. We deliberately do,
    as InspIRCd and Solanum do: our delivery contract (DESIGN.md) is that nothing is
    dropped without a word, and a numeric cannot start a reply loop between bots.
    A NOTICE that can be delivered is."""
    foo = await srv.client("foo")
    bar = await srv.client("bar")
    assert shown(await ask(foo, "NOTICE #nonexistent :hello there")) == [
        f"{S} 403 foo #nonexistent :No such channel"]
    assert shown(await ask(foo, "NOTICE nobody :hello there")) == [
        f"{S} 401 foo nobody :No such nick/channel"]
    await join(bar, "#chan")
    assert shown(await ask(foo, "NOTICE #chan :from outside (+n)")) == [
        f"{S} 404 foo #chan :Cannot send to channel (no external messages, +n)"]
    assert await bar.ping_pong() == []
    await join(foo, "#chan")
    await sync(bar)
    assert await ask(foo, "NOTICE #chan :hello there") == []
    assert shown(await bar.ping_pong()) == [":foo!~foo@127.0.0.1 NOTICE #chan :hello there"]


async def test_statusmsg(srv):
    """Modern STATUSMSG: `PRIVMSG @#chan` reaches only channel operators, with the target
    kept as `@#chan`; the sender gets no error."""
    chanop = await srv.client("chanop")
    joe = await srv.client("joe")
    schmoe = await srv.client("schmoe")
    for c in (chanop, joe, schmoe):
        await join(c, "#chan")
    await sync(chanop, joe)
    for sender in (schmoe, chanop):
        assert await ask(sender, "privmsg @#chan :this message is for operators") == []
        if sender is schmoe:
            assert shown(await chanop.ping_pong()) == [
                ":schmoe!~schmoe@127.0.0.1 PRIVMSG @#chan :this message is for operators"]
    assert await joe.ping_pong() == [] and await schmoe.ping_pong() == []
    assert await chanop.ping_pong() == []           # its own message is not sent back to it


async def test_line_length_limits(srv):
    """Modern "Message format": a line of 510 bytes plus CRLF is accepted (a relayed or
    echoed copy may be cut on a character boundary); 511 bytes is 417 ERR_INPUTTOOLONG
    and the connection stays usable."""
    bar = await srv.client("bar")
    line = "PING " + "x" * (512 - 7)
    assert len(line) == 510
    await bar.send(line)
    pong = await bar.next_message()
    # the answer is cut to fit in 512 bytes: ":test.server PONG test.server :" is 31
    assert show(pong) == f"{S} PONG test.server {'x' * (510 - 31)}"
    assert shown(await ask(bar, "PING " + "x" * (512 - 6))) == [f"{S} 417 bar :Input line was too long"]
    assert shown(await ask(bar, "JOIN #test_channel"))[0] == ":bar!~bar@127.0.0.1 JOIN #test_channel"


async def test_split_input_is_reassembled_and_long_relays_cut_cleanly(srv):
    """Modern "Message format": input split across packets forms one line; a relayed line
    longer than 512 bytes is cut to fit, on a UTF-8 character boundary (UTF8ONLY)."""
    a = await srv.client("nick1")
    b = await srv.client("nick2")
    payload = "a" * (512 - len("PRIVMSG nick2 :") - 2 - 4) + "😃"
    for ch in f"PRIVMSG nick2 :{payload}\r\n".encode():
        await a.send_raw(bytes([ch]))
    got = await b.expect("PRIVMSG")
    # ":nick1!~nick1@127.0.0.1 PRIVMSG nick2 :" is 39 bytes: 471 of the 491 a's fit, and
    # the emoji after them is dropped whole
    assert (got.source, got.params) == ("nick1!~nick1@127.0.0.1", ["nick2", "a" * 471])
    raw = f":nick1!~nick1@127.0.0.1 PRIVMSG nick2 :{got.params[1]}\r\n".encode()
    assert len(raw) <= 512
    # here the 471-byte cut falls inside the emoji's four bytes: none of them is sent
    await a.send("PRIVMSG nick2 :" + "a" * 469 + "😃" + "b" * 10)
    got = await b.expect("PRIVMSG")
    assert got.params == ["nick2", "a" * 469]
    assert await a.ping_pong() == []


# == Queries and server information =======================================================

async def test_ping(srv):
    """Modern PING: `PING <token>` is answered `PONG <server> <token>`; no token is 409
    ERR_NOORIGIN (or 461)."""
    foo = await srv.client("foo")
    await foo.send("PING abcdef")
    assert show(await foo.next_message()) == f"{S} PONG test.server abcdef"
    await foo.send("PING")
    assert show(await foo.next_message()) == f"{S} 409 foo :No origin specified"


async def test_away_replies(srv):
    """RFC 2812 3.1.6 / Modern AWAY: 306 when marked away, 305 when back; 301 with the
    away text answers a PRIVMSG and appears in WHOIS; USERHOST shows `-` for away and
    `+` for here; nothing extra once back."""
    bar = await srv.client("bar")
    qux = await srv.client("qux")
    assert shown(await ask(qux, "USERHOST bar")) == [f"{S} 302 qux bar=+~bar@127.0.0.1"]
    assert shown(await ask(bar, "AWAY :I'm not here right now")) == [
        f"{S} 306 bar :You have been marked as being away"]
    assert shown(await ask(qux, "PRIVMSG bar :what's up")) == [
        f"{S} 301 qux bar :I'm not here right now"]
    away = [m for m in await ask(qux, "WHOIS bar") if m.command == "301"]
    assert shown(away) == [f"{S} 301 qux bar :I'm not here right now"]
    assert shown(await ask(qux, "USERHOST bar")) == [f"{S} 302 qux bar=-~bar@127.0.0.1"]
    assert shown(await ask(bar, "AWAY")) == [":qux!~qux@127.0.0.1 PRIVMSG bar :what's up",
                                             f"{S} 305 bar :You are no longer marked as being away"]
    assert await ask(qux, "PRIVMSG bar :what's up") == []
    assert shown(await bar.ping_pong()) == [":qux!~qux@127.0.0.1 PRIVMSG bar :what's up"]


async def test_ison_and_userhost(srv):
    """RFC 2812 4.9 ISON and 4.8 USERHOST: ISON answers one 303 with the online nicks as
    they are spelled on the server; USERHOST answers 302 with `nick[*]=<+|->user@host`
    entries, `*` marking operators."""
    a = await srv.client("Alpha")
    b = await srv.client("beta")
    await oper_up(b)
    assert shown(await ask(a, "ISON alpha BETA gamma")) == [f"{S} 303 Alpha :Alpha beta"]
    assert shown(await ask(a, "USERHOST alpha beta gamma")) == [
        f"{S} 302 Alpha :Alpha=+~alpha@127.0.0.1 beta*=+~beta@127.0.0.1"]


async def test_lusers(srv):
    """RFC 2812 3.4.2 / Modern LUSERS: each numeric once, all addressed to the client;
    251 has visible, invisible and server counts, and visible + invisible = users; 265
    and 266 give current and max; 253 counts unregistered connections and 252 opers."""
    bar = await srv.client("bar")

    async def lusers():
        msgs = await ask(bar, "LUSERS")
        assert len(set(commands(msgs))) == len(msgs)
        assert all(m.source == "test.server" and m.params[0] == "bar" for m in msgs)
        by = {m.command: m for m in msgs}
        visible, invisible, _servers = map(int, re.findall(r"\d+", by["251"].params[1])[:3])
        local = by["265"].params[1:3]
        assert visible + invisible == int(local[0])
        assert re.findall(r"\d+", by["255"].params[1])[0] == local[0]
        return (int(by.get("253").params[1]) if "253" in by else 0, int(local[0]),
                int(local[1]), int(by["252"].params[1]) if "252" in by else 0)

    assert await lusers() == (0, 1, 1, 0)
    assert shown(await ask(bar, "LUSERS")) == [
        f"{S} 251 bar :There are 1 users and 0 invisible on 1 servers",
        f"{S} 252 bar 0 :operator(s) online",
        f"{S} 253 bar 0 :unknown connection(s)",
        f"{S} 254 bar 0 :channels formed",
        f"{S} 255 bar :I have 1 clients and 0 servers",
        f"{S} 265 bar 1 1 :Current local users 1, max 1",
        f"{S} 266 bar 1 1 :Current global users 1, max 1"]
    qux = await srv.client()
    await ask(qux, "NICK qux")
    assert await lusers() == (1, 1, 1, 0)
    await registration_burst(qux, "USER u s e r")
    await oper_up(qux)
    assert await lusers() == (0, 2, 2, 1)
    await qux.send("QUIT")
    await until_closed(qux)
    assert await lusers() == (0, 1, 2, 0)


async def test_motd_info_links_help(srv):
    """RFC 2812 3.4 server queries: MOTD is 375, 372s, 376 (or 422); INFO is 371s then
    374; LINKS is 364 `<server> <server> :0 <info>` then 365 with mask `*`; HELP is
    704/705/706 naming the subject, 524 for an unknown one; INFO/LINKS/MOTD for another
    server are 402."""
    c = await srv.client("nick")
    motd = await ask(c, "MOTD")
    assert shown(motd) == [
        f"{S} 375 nick :- test.server Message of the day - ",
        f"{S} 372 nick :- Welcome to TestNet.",
        f"{S} 372 nick :- This server has no MOTD of its own yet: set [server] motd or motd_file.",
        f"{S} 376 nick :End of /MOTD command."]
    info = await ask(c, "INFO")
    assert shown(info[:2]) == [f"{S} 371 nick :ircd-{__version__} -- Python IRC server",
                               f"{S} 371 nick :Network: TestNet"]
    assert show(info[-1]) == f"{S} 374 nick :End of /INFO list."
    assert all(m.source == "test.server" and m.command == "371" and m.params[0] == "nick"
               and len(m.params) == 2 for m in info[:-1])
    assert shown(await ask(c, "LINKS")) == [f"{S} 364 nick test.server test.server :0 Python IRC server",
                                            f"{S} 365 nick * :End of /LINKS list."]
    help_ = await ask(c, "HELP PRIVMSG")
    assert shown(help_) == [
        f"{S} 704 nick PRIVMSG :** PRIVMSG **",
        f"{S} 705 nick PRIVMSG :",
        f"{S} 705 nick PRIVMSG :PRIVMSG <target>{{,<target>}} :<text> -- send a message to users or channels",
        f"{S} 706 nick PRIVMSG :End of /HELP"]
    help_ = await ask(c, "HELP")
    assert show(help_[0]) == f"{S} 704 nick * :** Help for test.server **"
    assert show(help_[-1]) == f"{S} 706 nick * :End of /HELP"
    assert all(m.source == "test.server" and m.command == "705" and m.params[:2] == ["nick", "*"]
               for m in help_[1:-1])
    for target in ("test.server", "*.server", "nick"):
        assert shown(await ask(c, f"INFO {target}"))[:2] == shown(info[:2])
    assert shown(await ask(c, "HELP THISISNOTACOMMAND")) == [
        f"{S} 524 nick THISISNOTACOMMAND :No help available on this topic"]
    for line in ("INFO invalid.server.example", "INFO invalidserver", "MOTD elsewhere.example"):
        assert shown(await ask(c, line)) == [f"{S} 402 nick {line.split()[1]} :No such server"]


async def test_oper_and_kill(srv):
    """Modern OPER / KILL: success is 381 plus a MODE +o; a wrong password or unknown name
    is 464 or 491 without 381; OPER without a password is 461; KILL from a non-operator
    is 481 and kills nobody; an operator's KILL disconnects the target."""
    baz = await srv.client("baz")
    msgs = await ask(baz, f"OPER operuser :{OPER_PASSWORD}")
    assert shown(msgs) == [f"{S} 381 baz :You are now an IRC operator", ":baz!~baz@127.0.0.1 MODE baz +o"]
    alice = await srv.client("alice")
    for line, reply in (("OPER operuser wrongpassword", "464 alice :Password incorrect"),
                        ("OPER notanoper somepassword", "491 alice :No O-lines for your host")):
        # a wrong password for a block, and no block of that name for this host
        assert shown(await ask(alice, line)) == [f"{S} {reply}"]
        oper_commands._oper_backoff.clear()    # skip the retry delay between attempts
    assert shown(await ask(alice, "OPER operuser")) == [f"{S} 461 alice OPER :Not enough parameters"]
    assert not srv.state.find_user("alice").is_oper
    bob = await srv.client("bob")
    assert shown(await ask(alice, "KILL bob :some arbitrary reason")) == [
        f"{S} 481 alice :Permission Denied- You're not an IRC operator"]
    assert await bob.ping_pong() == []
    await baz.send("KILL bob :some arbitrary reason")
    assert shown(await until_closed(bob)) == [
        ":baz!~baz@127.0.0.1 KILL bob :some arbitrary reason",
        "ERROR :Closing Link: 127.0.0.1 (Killed (baz (some arbitrary reason)))"]
    assert srv.state.find_user("bob") is None
