"""The pure layers: line parsing/formatting, tag escaping, casemapping, masks, mode parsing."""

from hypothesis import given
from hypothesis import strategies as st

from ircd.protocol.casemap import fold, valid_channel, valid_nick
from ircd.protocol.message import (Message, ProtocolError, build_line, escape_tag_value,
                                   parse_line, unescape_tag_value)
from ircd.state.masks import mask_matches, normalise_mask
from ircd.state.modes import format_mode_changes, parse_channel_modes

import pytest


def test_parse_full_line():
    msg = parse_line("@id=123;+draft/x=a\\sb;flag :nick!u@h PRIVMSG #chan :hello world")
    assert msg == Message("PRIVMSG", ["#chan", "hello world"],
                          {"id": "123", "+draft/x": "a b", "flag": ""}, "nick!u@h")


def test_parse_is_lenient_like_clients_need():
    assert parse_line("nick :alice").params == ["alice"]
    assert parse_line("CAP :END").params == ["END"]
    assert parse_line("join   #a   key").params == ["#a", "key"]
    assert parse_line("JOIN :").params == [""]
    assert parse_line("PRIVMSG #c ::-)").params == ["#c", ":-)"]


@pytest.mark.parametrize("line", ["", "   ", ":source-only", "@tag=1", "@tag=1 :src"])
def test_parse_rejects_lines_without_command(line):
    with pytest.raises(ProtocolError):
        parse_line(line)


def test_build_uses_trailing_only_when_needed_or_asked():
    assert build_line("s", "MODE", ("#c", "+o", "n")) == b":s MODE #c +o n\r\n"
    assert build_line("s", "PRIVMSG", ("#c", "hi"), trailing=True) == b":s PRIVMSG #c :hi\r\n"
    assert build_line(None, "PART", ("#c", "two words")) == b"PART #c :two words\r\n"
    assert build_line(None, "X", ("",)) == b"X :\r\n"
    assert build_line(None, "X", (":colon",)) == b"X ::colon\r\n"
    assert build_line("s", "TAGMSG", ("#c",), {"+a": "b c", "t": ""}) == b"@+a=b\\sc;t :s TAGMSG #c\r\n"


def test_build_cuts_the_body_to_512_bytes_on_a_character_boundary():
    line = build_line("src", "PRIVMSG", ("#c", "é" * 400), {"time": "x"})
    body = line.split(b" ", 1)[1]
    assert len(body) <= 512 and body.endswith(b"\r\n")
    body.decode("utf-8")


tag_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@given(tag_text)
def test_tag_escaping_round_trips(value):
    assert unescape_tag_value(escape_tag_value(value)) == value
    assert not any(ch in escape_tag_value(value) for ch in "; \r\n")


middle = st.text(st.characters(blacklist_categories=("Cs", "Zs", "Cc"), blacklist_characters=":"),
                 min_size=1, max_size=15)
word = st.text(st.characters(blacklist_categories=("Cs", "Zs", "Cc")), min_size=1, max_size=15).filter(
    lambda w: not w.startswith(":"))


@given(st.sampled_from(["PRIVMSG", "NOTICE", "001", "JOIN"]),
       st.lists(middle, max_size=5), st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"), max_size=40),
       st.dictionaries(st.from_regex(r"\+?[a-z][a-z0-9/.-]{0,10}", fullmatch=True), tag_text, max_size=3))
def test_build_then_parse_round_trips(command, params, last, tags):
    line = build_line("nick!user@host", command, (*params, last), tags, trailing=True)
    body = line.split(b" ", 1)[1] if tags else line
    assert len(body) <= 512
    parsed = parse_line(line.decode("utf-8").rstrip("\r\n"))
    assert parsed.command == command and parsed.source == "nick!user@host"
    assert parsed.tags == tags
    if len(line) < 400:
        assert parsed.params == [*params, last]


def test_rfc1459_casemapping():
    assert fold("Nick[A]\\~") == "nick{a}|^"
    assert fold("#Chan") == "#chan"
    assert fold("ÄÖ") == "ÄÖ"        # only ASCII folds
    assert fold("ÄB[") == "Äb{"      # ...also in a name that is not all ASCII


_RFC1459_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ[]\\~"
_RFC1459_LOWER = "abcdefghijklmnopqrstuvwxyz{}|^"


@given(st.text(alphabet=st.sampled_from(_RFC1459_UPPER + "abc{}|^#&-_ÄéİK") | st.characters(),
               max_size=20))
def test_fold_maps_exactly_rfc1459s_letters_and_nothing_else(name):
    """The ASCII fast path and the table agree: each character folds on its own,
    A-Z and []\\~ to their lower forms, everything else (non-ASCII letters too) kept."""
    expected = "".join(_RFC1459_LOWER[_RFC1459_UPPER.index(c)] if c in _RFC1459_UPPER else c
                       for c in name)
    assert fold(name) == expected


def test_nick_and_channel_validation():
    assert valid_nick("alice", 30) and valid_nick("[x]_-`^{|}", 30)
    assert not valid_nick("1abc", 30) and not valid_nick("-x", 30)
    assert not valid_nick("a b", 30) and not valid_nick("a" * 31, 30) and not valid_nick("", 30)
    assert not valid_nick("a!b", 30) and not valid_nick("a@b", 30) and not valid_nick("a,b", 30)
    assert valid_channel("#ok", 64) and valid_channel("&local", 64) and valid_channel("#ünï", 64)
    assert not valid_channel("#", 64) and not valid_channel("nochan", 64)
    assert not valid_channel("#a b", 64) and not valid_channel("#a,b", 64) and not valid_channel("#a\x07", 64)
    assert not valid_channel("#" + "x" * 64, 64)


def test_masks():
    assert normalise_mask("nick") == "nick!*@*"
    assert normalise_mask("*@host") == "*!*@host"
    assert normalise_mask("host.example") == "*!*@host.example"
    assert normalise_mask("n!u") == "n!u@*"
    assert mask_matches("*!*@127.0.0.*", "Bob!~b@127.0.0.1")
    assert mask_matches("BOB[1]!*@*", "bob{1}!x@y")       # casemapped
    assert mask_matches("a?c!*@*", "abc!u@h") and not mask_matches("a?c!*@*", "abbc!u@h")
    assert mask_matches("*.*", "a.b") and not mask_matches("a.b", "axb")   # '.' is literal


def test_mode_parsing_follows_chanmodes_classes():
    changes, unknown = parse_channel_modes("+ovk-l+b-z", ["alice", "bob", "key", "m!*@*"])
    assert changes == [(True, "o", "alice"), (True, "v", "bob"), (True, "k", "key"),
                       (False, "l", None), (True, "b", "m!*@*")]
    assert unknown == ["z"]
    changes, _ = parse_channel_modes("+b", [])
    assert changes == [(True, "b", None)]          # a list query


def test_mode_formatting_is_minimal():
    assert format_mode_changes([(True, "o", "a"), (True, "v", "b"), (False, "k", "*"),
                                (True, "m", None)]) == ("+ov-k+m", ["a", "b", "*"])
