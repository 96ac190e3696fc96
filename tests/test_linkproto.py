"""The link protocol as a pure library: frames round-trip, garbage never crashes the
decoder, and the handshake pins both certificates."""

from __future__ import annotations

import os

import attrs
import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given, strategies as st

from linkproto import codec, events as ev, frames as fr
from linkproto.clock import Stamp
from linkproto.handshake import Handshake, HandshakeError, State, fingerprint
from ircd.tlsutil import create_certificate

text = st.text(max_size=20)
stamps = st.builds(Stamp, st.integers(0, 2**62), text)
changes = st.one_of(
    st.builds(ev.FlagMode, text, st.booleans()),
    st.builds(ev.KeyMode, st.none() | text),
    st.builds(ev.LimitMode, st.none() | st.integers(0, 10**6)),
    st.builds(ev.StatusMode, text, text, st.booleans()),
    st.builds(ev.ListAdd, text, text, text, st.integers(0, 2**40)),
    st.builds(ev.ListRemove, text, text, st.lists(stamps, max_size=3).map(tuple)))
TUPLE_FIELDS = {
    (ev.ChannelModeChange, "changes"): st.lists(changes, max_size=4).map(tuple),
    (ev.UserModeChange, "changes"): st.lists(st.tuples(st.booleans(), text), max_size=4).map(tuple),
    (ev.Message, "tags"): st.lists(st.tuples(text, text), max_size=3).map(tuple),
    (fr.Hello, "caps"): st.lists(text, max_size=3).map(tuple),
    (fr.ReplayEnd, "incomplete"): st.lists(text, max_size=3).map(tuple),
}
BASE = {"str": text, "int": st.integers(-2**63, 2**63 - 1), "bool": st.booleans(),
        "Stamp": stamps, "bytes": st.binary(max_size=40)}


def strategy_for(cls):
    fields = {}
    for f in attrs.fields(cls):
        spec = f.type
        if (cls, f.name) in TUPLE_FIELDS:
            fields[f.name] = TUPLE_FIELDS[(cls, f.name)]
        elif spec.endswith(" | None"):
            fields[f.name] = st.none() | BASE[spec[:-7]]
        else:
            fields[f.name] = BASE[spec]
    return st.builds(cls, **fields)


any_frame = st.one_of([strategy_for(cls) for cls in codec.FRAME_TYPES])


@given(st.lists(any_frame, min_size=1, max_size=5), st.integers(1, 50))
def test_every_frame_type_round_trips_in_any_chunking(frames, chunk):
    data = b"".join(codec.encode(f) for f in frames)
    decoder = codec.Decoder()
    got = []
    for i in range(0, len(data), chunk):
        got.extend(decoder.feed(data[i:i + chunk]))
    assert got == frames


def test_every_frame_type_is_covered():
    assert set(codec.FRAME_TYPES) == set(ev.EVENTS) | set(fr.CONTROL_FRAMES)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_frame_errors(data):
    try:
        codec.Decoder().feed(data)
    except codec.FrameError:
        pass


@given(st.lists(any_frame, min_size=1, max_size=4), st.data())
def test_a_fuzzed_frame_stream_yields_only_the_codecs_errors(frames, data):
    raw = bytearray(b"".join(codec.encode(f) for f in frames))
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    decoder = codec.Decoder()
    try:
        for f in decoder.feed(bytes(raw)):
            assert type(f) in codec.FRAME_TYPES
    except codec.FrameError:
        pass


def test_precise_errors():
    d = codec.Decoder()
    with pytest.raises(codec.FrameError, match="unknown frame type 99"):
        d.feed(b"\x91\x63")
    with pytest.raises(codec.FrameError, match=r"ChannelJoin: expected 5 fields, got 1"):
        codec.Decoder().feed(b"\x92\x1f\x01")
    bad = codec.encode(ev.UserQuit(Stamp(1, "1AA"), "1AA000001", "bye")).replace(b"\xa3bye", b"\x07")
    with pytest.raises(codec.FrameError, match=r"UserQuit.reason: expected str, got int"):
        codec.Decoder().feed(bad)
    bad = codec.encode(fr.ReplayEnd(("#a",))).replace(b"\xa2#a", b"\x07")
    with pytest.raises(codec.FrameError, match=r"ReplayEnd.incomplete: an item is not one of "
                                               r"strings: 7"):
        codec.Decoder().feed(bad)
    small = codec.Decoder(max_frame=100)
    with pytest.raises(codec.FrameError, match="larger than the 100-byte limit"):
        small.feed(codec.encode(fr.Error("x" * 200)))
    with pytest.raises(codec.FrameError, match="larger than"):
        codec.encode(fr.Error("x" * (codec.MAX_FRAME_BYTES + 1)))


# -- handshake -------------------------------------------------------------------------

def identity(tmp_path, name):
    cert_path, key_path = create_certificate(tmp_path / name, name)
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    from cryptography import x509
    der = x509.load_pem_x509_certificate(cert_path.read_bytes()).public_bytes(
        serialization.Encoding.DER)
    return key, der


def pair(tmp_path, pins_a=None, pins_b=None):
    ka, ca = identity(tmp_path, "a.test")
    kb, cb = identity(tmp_path, "b.test")
    pins_a = pins_a or {"b.test": fingerprint(cb)}
    pins_b = pins_b or {"a.test": fingerprint(ca)}
    a = Handshake(fr.Hello(1, "a.test", "1AA", "A", (), os.urandom(16)), ka, ca, pins_a.get, cb)
    b = Handshake(fr.Hello(1, "b.test", "2BB", "B", (), os.urandom(16)), kb, cb, pins_b.get)
    return a, b


def run(a, b):
    """Exchange frames between the two sides until neither has anything to say."""
    to_b, to_a = [a.hello()], [b.hello()]
    while to_a or to_b:
        if to_b:
            to_a.extend(b.receive(to_b.pop(0)))
        if to_a:
            to_b.extend(a.receive(to_a.pop(0)))


def test_two_configured_servers_complete_the_handshake(tmp_path):
    a, b = pair(tmp_path)
    run(a, b)
    assert a.state is State.RESUME and b.state is State.RESUME
    a.receive(fr.Resume(b"", 0))
    b.receive(fr.Resume(b"", 0))
    assert a.state is State.BURST and b.state is State.BURST
    assert a.token() == b.token() and len(a.token()) == 16
    assert a.peer.sid == "2BB" and b.peer.name == "a.test"
    a.receive(fr.BurstEnd(0, 0, 0))
    assert a.state is State.LINKED
    with pytest.raises(HandshakeError, match="a second BurstEnd"):
        a.receive(fr.BurstEnd(0, 0, 0))


def test_wrong_fingerprint_is_refused_naming_both(tmp_path):
    a, b = pair(tmp_path, pins_b={"a.test": "sha256:" + "0" * 64})
    with pytest.raises(HandshakeError, match=r"a.test presented certificate sha256:[0-9a-f]{64}, "
                                             r"but its \[\[link\]\] block pins sha256:0000"):
        run(a, b)


def test_unconfigured_peer_is_refused(tmp_path):
    a, b = pair(tmp_path, pins_b={"other.test": "sha256:" + "0" * 64})
    with pytest.raises(HandshakeError, match="a.test is not configured here"):
        run(a, b)


def test_a_stolen_certificate_without_its_key_is_refused(tmp_path):
    a, b = pair(tmp_path)
    b.receive(a.hello())
    forged = fr.Proof(a._cert, b"\x30\x06\x02\x01\x01\x02\x01\x01")
    with pytest.raises(HandshakeError, match="did not prove it holds the key"):
        b.receive(forged)


def test_frames_out_of_order_are_refused(tmp_path):
    a, b = pair(tmp_path)
    with pytest.raises(HandshakeError, match="expected Hello first, got UserQuit"):
        b.receive(ev.UserQuit(Stamp(1, "1AA"), "1AA000001", "x"))
    a, b = pair(tmp_path)
    b.receive(a.hello())
    with pytest.raises(HandshakeError, match="expected Proof after Hello, got BurstEnd"):
        b.receive(fr.BurstEnd(0, 0, 0))


def test_a_refused_side_never_reaches_the_burst(tmp_path):
    """The side whose Proof is refused gets Error, not Ready: it never bursts."""
    a, b = pair(tmp_path, pins_b={"a.test": "sha256:" + "0" * 64})
    b_out = b.receive(a.hello())
    a_out = a.receive(b.hello())
    a.receive(b_out[0])                     # b's Proof is fine for a
    assert a.state is State.READY           # but a waits for b's verdict
    with pytest.raises(HandshakeError):
        b.receive(a_out[0])                 # b refuses a's Proof (and would send Error)
    with pytest.raises(HandshakeError, match="the peer closed the link: refused"):
        a.receive(fr.Error("refused"))
    assert a.state is State.READY
