"""nick!user@host glob masks as used by bans, exceptions, invex and oper hosts."""

from __future__ import annotations

import functools
import re

from ..protocol.casemap import fold


def normalise_mask(mask: str) -> str:
    """Complete a partial mask the way clients expect: `nick` -> `nick!*@*`, `*@host` -> `*!*@host`."""
    if "!" not in mask and "@" not in mask:
        return (mask or "*") + "!*@*" if "." not in mask else "*!*@" + mask
    if "!" not in mask:
        return "*!" + mask
    if "@" not in mask:
        return mask + "@*"
    return mask


@functools.lru_cache(maxsize=4096)
def _compile(mask: str) -> re.Pattern:
    pattern = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in fold(mask))
    return re.compile(pattern + r"\Z", re.DOTALL)


def mask_matches(mask: str, text: str) -> bool:
    """Glob match (`*`, `?`) under the server casemapping."""
    return _compile(mask).match(fold(text)) is not None
