"""The link handshake as a state machine: no sockets, no clock, randomness passed in.

    both sides:  Hello (version, name, SID, nonce)  ->
                 Proof (certificate, signature over both hellos)  ->
                 Ready (the peer's Proof is accepted), or Error (why not)  ->
                 Resume (the earlier link this one continues, if any)  ->
                 burst: the sender's whole view of the network as events, then BurstEnd
                 then events as they happen

Neither side bursts before it has both accepted the peer and heard Ready from it, so
a refused link never shows up as a server joining and leaving.

Each side checks that the peer's certificate has the fingerprint configured for the
peer's name and that the peer signed this handshake's nonces with its key, so both
certificates are pinned even where TLS can only check one of them (a TLS server in
Python's ssl cannot accept a self-signed client certificate). Anything out of order
raises HandshakeError with a reason an operator understands.
"""

from __future__ import annotations

import enum
import hashlib

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from . import frames as fr

MIN_VERSION = 1


class HandshakeError(Exception):
    """The link cannot go on; the message says why (logged, and sent as Error)."""


class State(enum.Enum):
    HELLO = "waiting for the peer's Hello"
    PROOF = "waiting for the peer's Proof"
    READY = "waiting for the peer to accept our Proof"
    RESUME = "waiting for the peer's Resume"
    BURST = "receiving the peer's burst"
    LINKED = "linked"


def fingerprint(der: bytes) -> str:
    return "sha256:" + hashlib.sha256(der).hexdigest()


def _transcript(signer: fr.Hello, verifier: fr.Hello) -> bytes:
    return b"\0".join([b"ircd-link-proof-v1", signer.name.encode(), signer.sid.encode(),
                       signer.nonce, verifier.name.encode(), verifier.sid.encode(),
                       verifier.nonce])


class Handshake:
    """One side of a link. `pins(name)` gives the fingerprint configured for a peer name
    (None: not configured); `key` is this server's private key (EC), `cert` its DER."""

    def __init__(self, ours: fr.Hello, key, cert: bytes, pins, tls_peer_cert: bytes | None = None):
        self.ours = ours
        self._key = key
        self._cert = cert
        self._pins = pins
        self._tls_peer_cert = tls_peer_cert
        self.peer: fr.Hello | None = None
        self.peer_resume: fr.Resume | None = None
        self.state = State.HELLO

    def hello(self) -> fr.Hello:
        return self.ours

    def receive(self, frame) -> list:
        """Take one frame from the peer; returns the frames to send in reply. Network
        events are returned to the caller through `accepts_events`."""
        kind = type(frame)
        if kind is fr.Error:
            raise HandshakeError(f"the peer closed the link: {frame.reason}")
        if self.state is State.HELLO:
            if kind is not fr.Hello:
                raise HandshakeError(f"expected Hello first, got {kind.__name__}")
            return self._hello(frame)
        if self.state is State.PROOF:
            if kind is not fr.Proof:
                raise HandshakeError(f"expected Proof after Hello, got {kind.__name__}")
            self._proof(frame)
            self.state = State.READY
            return [fr.Ready()]
        if self.state is State.READY:
            if kind is not fr.Ready:
                raise HandshakeError(f"expected Ready after Proof, got {kind.__name__}")
            self.state = State.RESUME
            return []
        if self.state is State.RESUME:
            if kind is not fr.Resume:
                raise HandshakeError(f"expected Resume after Ready, got {kind.__name__}")
            self.peer_resume = frame
            self.state = State.BURST
            return []
        if kind in (fr.Hello, fr.Proof, fr.Ready, fr.Resume):
            raise HandshakeError(f"{kind.__name__} again after the handshake")
        if kind is fr.BurstEnd:
            if self.state is State.LINKED:
                raise HandshakeError("a second BurstEnd")
            self.state = State.LINKED
        return []

    @property
    def accepts_events(self) -> bool:
        return self.state in (State.BURST, State.LINKED)

    def token(self) -> bytes:
        """Names this link for a later resume: the same on both sides."""
        a, b = sorted((self.ours.nonce, self.peer.nonce))
        return hashlib.sha256(b"ircd-link-resume\0" + a + b).digest()[:16]

    def _hello(self, hello: fr.Hello) -> list:
        if hello.version < MIN_VERSION:
            raise HandshakeError(f"{hello.name} speaks link protocol version {hello.version}; "
                                 f"this server needs {MIN_VERSION} to {fr.PROTOCOL_VERSION}")
        if hello.name.lower() == self.ours.name.lower() or hello.sid == self.ours.sid:
            raise HandshakeError(f"{hello.name} ({hello.sid}) has this server's own name or SID")
        if self._pins(hello.name) is None:
            raise HandshakeError(f"{hello.name} is not configured here: add a [[link]] block "
                                 "with its name and fingerprint")
        if len(hello.nonce) < 16:
            raise HandshakeError(f"{hello.name} sent a nonce of {len(hello.nonce)} bytes")
        self.peer = hello
        self.state = State.PROOF
        signature = self._key.sign(_transcript(self.ours, hello), ec.ECDSA(hashes.SHA256()))
        return [fr.Proof(self._cert, signature)]

    def _proof(self, proof: fr.Proof) -> None:
        peer = self.peer
        pinned = self._pins(peer.name)
        got = fingerprint(proof.cert)
        if got != pinned:
            raise HandshakeError(f"{peer.name} presented certificate {got}, but its [[link]] "
                                 f"block pins {pinned}")
        if self._tls_peer_cert is not None and self._tls_peer_cert != proof.cert:
            raise HandshakeError(f"{peer.name}'s TLS certificate is not the one it proved")
        try:
            public = x509.load_der_x509_certificate(proof.cert).public_key()
            public.verify(proof.signature, _transcript(peer, self.ours), ec.ECDSA(hashes.SHA256()))
        except (ValueError, TypeError, AttributeError, InvalidSignature):
            raise HandshakeError(f"{peer.name} did not prove it holds the key of its "
                                 "certificate (bad signature)") from None
