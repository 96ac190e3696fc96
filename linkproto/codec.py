"""The link frame codec: events and control frames <-> msgpack, checked on the way in.

A frame is a msgpack array `[type code, field, ...]` in the class's field order; a
stamp is an extension object (code 1) and a nested change (a channel mode change's
parts) another (code 2). msgpack is self-delimiting, so frames simply follow each other
on the stream. Decoding checks the frame type, the field count and every field's type
and raises FrameError naming the problem; nothing else escapes the decoder.
"""

from __future__ import annotations

import operator

import attrs
import msgpack

from . import events as ev
from . import frames as fr
from .clock import Stamp

MAX_FRAME_BYTES = 64 * 1024

_EXT_STAMP = 1
_EXT_NESTED = 2


class FrameError(Exception):
    """A frame that is malformed, too large, of an unknown type or with a wrong field."""


# Stable type codes: never renumber one, only add.
_CODES: dict[type, int] = {
    fr.Hello: 1, fr.BurstEnd: 2, fr.Ping: 3, fr.Pong: 4, fr.Error: 5,
    fr.WhoisRequest: 6, fr.WhoisReply: 7, fr.Proof: 8, fr.Ready: 9, fr.ReplayEnd: 10, fr.ReplayRequest: 11, fr.Resume: 12, fr.Ack: 13,
    ev.ServerIntroduced: 20, ev.ServerQuit: 21, ev.UserIntroduced: 22, ev.UserQuit: 23,
    ev.NickChange: 24, ev.UserModeChange: 25, ev.AwayChange: 26, ev.AccountChange: 27,
    ev.HostChange: 28, ev.RealnameChange: 29, ev.ChannelCreate: 30, ev.ChannelJoin: 31,
    ev.ChannelPart: 32, ev.ChannelKick: 33, ev.TopicChange: 34, ev.ChannelInvite: 35,
    ev.ChannelModeChange: 36, ev.Message: 37, ev.Wallops: 38, ev.BurstComplete: 39,
    ev.FlagMode: 60, ev.KeyMode: 61, ev.LimitMode: 62, ev.StatusMode: 63, ev.ListAdd: 64,
    ev.ListRemove: 65,
}
_CLASSES = {code: cls for cls, code in _CODES.items()}
_NESTED = (ev.FlagMode, ev.KeyMode, ev.LimitMode, ev.StatusMode, ev.ListAdd, ev.ListRemove)
FRAME_TYPES = tuple(cls for cls in _CODES if cls not in _NESTED)

# What the tuple fields hold.
_TUPLES = {
    (ev.ChannelModeChange, "changes"): "changes",
    (ev.UserModeChange, "changes"): "mode pairs",
    (ev.Message, "tags"): "tag pairs",
    (ev.ListRemove, "observed"): "stamps",
    (fr.Hello, "caps"): "strings",
    (fr.ReplayEnd, "incomplete"): "strings",
}


def _field_specs(cls) -> list[tuple[str, str]]:
    return [(f.name, f.type if isinstance(f.type, str) else f.type.__name__)
            for f in attrs.fields(cls)]


_SPECS = {cls: _field_specs(cls) for cls in _CODES}


# -- encoding ---------------------------------------------------------------------------

def _getter(cls):
    """The class's field values as a tuple, in field order (one C call per frame)."""
    names = [name for name, _ in _SPECS[cls]]
    if not names:
        return lambda obj: ()
    if len(names) == 1:
        name = names[0]
        return lambda obj: (getattr(obj, name),)
    return operator.attrgetter(*names)


_GETTERS = {cls: _getter(cls) for cls in _CODES}
def _default(obj):
    """A stamp or a nested change, as the extension object msgpack writes for it."""
    if type(obj) is Stamp:
        return msgpack.ExtType(_EXT_STAMP, _pack_stamp((obj.t, obj.sid)))
    code = _CODES.get(type(obj))
    if code is not None:
        return msgpack.ExtType(_EXT_NESTED, msgpack.packb([code, *_GETTERS[type(obj)](obj)],
                                                          default=_default))
    raise TypeError(f"cannot encode {obj!r}")


# Reused packers: making one per frame (msgpack.packb) cost more than packing. A nested
# change is packed while the frame's packer is in use, so it gets msgpack.packb.
_pack_frame = msgpack.Packer(default=_default).pack
_pack_stamp = msgpack.Packer().pack


def encode(frame) -> bytes:
    """One frame as bytes."""
    kind = type(frame)
    code = _CODES.get(kind)
    if code is None or kind in _NESTED:
        raise TypeError(f"not a frame: {frame!r}")
    data = _pack_frame([code, *_GETTERS[kind](frame)])
    if len(data) > MAX_FRAME_BYTES:
        raise FrameError(f"{kind.__name__} frame of {len(data)} bytes is larger than "
                         f"the {MAX_FRAME_BYTES}-byte limit")
    return data


# -- decoding ---------------------------------------------------------------------------

def _ext_hook(code: int, data: bytes):
    if code == _EXT_STAMP:
        value = msgpack.unpackb(data)
        if (type(value) is not list or len(value) != 2 or type(value[0]) is not int
                or type(value[1]) is not str):
            raise FrameError(f"malformed stamp {value!r}")
        return Stamp(value[0], value[1])
    if code == _EXT_NESTED:
        return _build(msgpack.unpackb(data, ext_hook=_ext_hook), nested=True)
    raise FrameError(f"unknown extension type {code}")


_TYPES = {"str": str, "int": int, "bool": bool, "Stamp": Stamp, "tuple": tuple, "bytes": bytes}


def _compile(cls) -> list:
    """Per field: (name, spec as written, type, may be None, what a tuple holds)."""
    checks = []
    for name, spec in _SPECS[cls]:
        optional = spec.endswith(" | None")
        base = spec[:-7] if optional else spec
        checks.append((name, spec, _TYPES[base], optional, _TUPLES.get((cls, name))))
    return checks


_CHECKS = {cls: _compile(cls) for cls in _CODES}


def _check_items(cls, name: str, kind: str, items: tuple) -> None:
    for item in items:
        if kind == "changes":
            good = type(item) in _NESTED
        elif kind == "mode pairs":
            good = (type(item) is tuple and len(item) == 2 and type(item[0]) is bool
                    and type(item[1]) is str)
        elif kind == "tag pairs":
            good = (type(item) is tuple and len(item) == 2 and type(item[0]) is str
                    and type(item[1]) is str)
        elif kind == "stamps":
            good = type(item) is Stamp
        else:
            good = type(item) is str
        if not good:
            raise FrameError(f"{cls.__name__}.{name}: an item is not one of {kind}: {item!r}")


def _tuples(value):
    return tuple(_tuples(v) for v in value) if type(value) is list else value


def _bad_field(cls, name: str, spec: str, field) -> None:
    raise FrameError(f"{cls.__name__}.{name}: expected {spec}, got {type(field).__name__}")


def _builder(cls):
    """A function from a frame's array to the checked object, generated once per class:
    the checks _CHECKS describes, unrolled (decoding is on every link's hot path)."""
    checks = _CHECKS[cls]
    lines = ["def build(value):",
             f"    if len(value) != {len(checks) + 1}:",
             f"        raise FrameError(f'{cls.__name__}: expected {len(checks)} fields, "
             f"got {{len(value) - 1}}')"]
    env = {"FrameError": FrameError, "_tuples": _tuples, "_check_items": _check_items,
           "_bad_field": _bad_field, "cls": cls}
    names = []
    for i, (name, spec, kind, optional, holds) in enumerate(checks):
        v = f"f{i}"
        names.append(v)
        env[f"k{i}"] = kind
        lines.append(f"    {v} = value[{i + 1}]")
        lines.append(f"    if type({v}) is list: {v} = _tuples({v})")
        cond = f"type({v}) is not k{i}" + (f" and {v} is not None" if optional else "")
        lines.append(f"    if {cond}: _bad_field(cls, {name!r}, {spec!r}, {v})")
        if holds is not None:
            test = f"{v} is not None and " if optional else ""
            lines.append(f"    if {test}{v}: _check_items(cls, {name!r}, {holds!r}, {v})")
    lines.append(f"    return cls({', '.join(names)})")
    exec("\n".join(lines), env)
    return env["build"]


_BUILDERS = {cls: _builder(cls) for cls in _CODES}


def _build(value, nested: bool = False):
    if type(value) is not list or not value or type(value[0]) is not int:
        raise FrameError(f"a frame must be an array starting with its type code, got "
                         f"{type(value).__name__}")
    cls = _CLASSES.get(value[0])
    if cls is None or (cls in _NESTED) != nested:
        raise FrameError(f"unknown {'change' if nested else 'frame'} type {value[0]}")
    return _BUILDERS[cls](value)


class Decoder:
    """Feed it bytes as they arrive; it returns the complete frames, checked."""

    def __init__(self, max_frame: int = MAX_FRAME_BYTES):
        self._unpacker = msgpack.Unpacker(ext_hook=_ext_hook, max_buffer_size=max_frame * 4,
                                          max_bin_len=max_frame, max_str_len=max_frame,
                                          max_array_len=max_frame, max_map_len=0,
                                          max_ext_len=max_frame, use_list=True, raw=False)
        self.max_frame = max_frame
        self._fed = 0

    def feed(self, data: bytes) -> list:
        self._fed += len(data)
        try:
            self._unpacker.feed(data)
        except msgpack.BufferFull:
            raise FrameError(f"a frame is larger than the {self.max_frame}-byte limit") from None
        out = []
        try:
            for value in self._unpacker:
                out.append(_build(value))
        except FrameError:
            raise
        except ValueError as exc:
            if "exceeds max_" in str(exc):
                raise FrameError(f"a frame is larger than the {self.max_frame}-byte limit "
                                 f"({exc})") from None
            raise FrameError(f"malformed frame: {exc}") from None
        except (TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError,
                UnicodeDecodeError) as exc:
            raise FrameError(f"malformed frame: {exc}") from None
        if self._fed - self._unpacker.tell() > self.max_frame:   # an incomplete frame
            raise FrameError(f"a frame is larger than the {self.max_frame}-byte limit")
        return out
