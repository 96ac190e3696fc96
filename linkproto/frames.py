"""Link control frames: what two servers say to each other besides network events."""

from __future__ import annotations

import attrs

_frozen = attrs.frozen(slots=True)

PROTOCOL_VERSION = 1


@_frozen
class Hello:
    """The first frame each side sends: who it is and what it speaks."""
    version: int
    name: str
    sid: str
    description: str
    caps: tuple          # of str: optional features this side supports
    nonce: bytes         # random: the peer signs it to prove it holds its key


@_frozen
class Proof:
    """The sender's certificate and its signature over both hellos (see handshake.py)."""
    cert: bytes          # DER
    signature: bytes


@_frozen
class Ready:
    """The sender accepted the peer's Proof: both may now send their bursts."""


@_frozen
class Resume:
    """Sent after Ready: the link this one may continue (its token, empty for none) and
    how many frames of it the sender handled. Both sides offering the same token resume
    it: each resends what the other had not handled, and nobody sees a netsplit."""
    token: bytes
    handled: int


@_frozen
class Ack:
    """How many frames (all but Acks, counted from the Resume) the sender has handled;
    the receiver may forget those it kept for resending."""
    count: int


@_frozen
class BurstEnd:
    """The sender has sent its whole view of the network."""
    servers: int
    users: int
    channels: int


@_frozen
class ReplayEnd:
    """Ends a run of replayed messages (Message.replay): the receiver delivers the run
    to its users as one history batch per conversation."""
    # channels whose messages from the netsplit on the sender's log no longer holds all
    # of (its history limits pushed some out): the receiver tells its members there
    incomplete: tuple = ()


@_frozen
class ReplayRequest:
    """A link formed somewhere on the sender's side: replay your log towards it (and
    pass the request on), so what was said anywhere reaches the other side."""


@_frozen
class Ping:
    token: int           # the sender's monotonic clock in ms: the echo measures lag


@_frozen
class Pong:
    token: int


@_frozen
class Error:
    """Sent before closing a link: why."""
    reason: str


@_frozen
class WhoisRequest:
    """Asks the target's server for what only it knows (idle time)."""
    asker: str           # UID
    target: str          # UID


@_frozen
class WhoisReply:
    asker: str
    target: str
    idle: int            # seconds
    signon: int


CONTROL_FRAMES = (Hello, Proof, Ready, Resume, Ack, BurstEnd, ReplayEnd, ReplayRequest, Ping, Pong, Error, WhoisRequest, WhoisReply)
