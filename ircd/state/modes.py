"""Pure parsing of a MODE change string against the channel mode classes."""

from __future__ import annotations

from linkproto import events as ev

from .channel import FLAG_MODES, LIST_MODES, PARAM_MODES, PARAM_SET_MODES, STATUS_MODES


def parse_channel_modes(modestring: str, args: list[str]):
    """Split `+o-k nick key` into [(adding, letter, arg|None)] plus unknown letters.

    A change missing its argument is returned with arg None; for a list mode that
    means "show the list". Follows ISUPPORT CHANMODES: list modes and k take an
    argument both ways, l only when set.
    """
    changes = []
    unknown = []
    adding = True
    args = list(args)
    for letter in modestring:
        if letter == "+":
            adding = True
        elif letter == "-":
            adding = False
        elif letter in LIST_MODES or letter in STATUS_MODES or letter in PARAM_MODES:
            changes.append((adding, letter, args.pop(0) if args else None))
        elif letter in PARAM_SET_MODES:
            changes.append((adding, letter, (args.pop(0) if args else None) if adding else None))
        elif letter in FLAG_MODES:
            changes.append((adding, letter, None))
        else:
            unknown.append(letter)
    return changes, unknown


def format_mode_changes(applied) -> tuple[str, list[str]]:
    """[(adding, letter, arg)] -> ('+ov-k', ['a', 'b', '*']) with minimal signs."""
    out = []
    args = []
    sign = None
    for adding, letter, arg in applied:
        want = "+" if adding else "-"
        if want != sign:
            out.append(want)
            sign = want
        out.append(letter)
        if arg is not None:
            args.append(arg)
    return "".join(out), args


def format_event_changes(changes, users) -> tuple[str, list[str]]:
    """The applied changes of a ChannelModeChange as a MODE line's modes and arguments;
    `users` maps UIDs to users (status changes show the target's nick)."""
    plain = []
    for c in changes:
        kind = type(c)
        if kind is ev.FlagMode:
            plain.append((c.adding, c.letter, None))
        elif kind is ev.StatusMode:
            target = users.get(c.target)
            plain.append((c.adding, c.letter, target.nick if target is not None else c.target))
        elif kind is ev.ListAdd:
            plain.append((True, c.letter, c.mask))
        elif kind is ev.ListRemove:
            plain.append((False, c.letter, c.mask))
        elif kind is ev.KeyMode:
            plain.append((c.key is not None, "k", c.key if c.key is not None else "*"))
        elif kind is ev.LimitMode:
            plain.append((c.limit is not None, "l", str(c.limit) if c.limit is not None else None))
    return format_mode_changes(plain)
