"""The server's TLS identity: a self-signed key pair in data_dir, its fingerprint, and contexts.

Servers link by pinning each other's certificate fingerprint, so no CA is involved and a
fresh install can make its own pair (`ircd fingerprint` / `ircd gencert`) before it first
starts, letting operators exchange fingerprints ahead of time.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import re
import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

if TYPE_CHECKING:
    from .config import Config, ListenConfig

CERT_FILE = "server.pem"
KEY_FILE = "server.key"
VALIDITY = datetime.timedelta(days=3650)


class CertificateError(Exception):
    """The key/certificate pair in data_dir is unusable in a way only the operator can fix."""


def default_cert_paths(data_dir: Path) -> tuple[Path, Path]:
    """Where the server's own (cert, key) live inside data_dir."""
    return data_dir / CERT_FILE, data_dir / KEY_FILE


def ensure_certificate(data_dir: Path, server_name: str,
                       hosts: Iterable[str] = ()) -> tuple[Path, Path]:
    """Returns the (cert, key) pair in data_dir, creating whatever part is missing.

    An existing key is kept (a certificate is re-made from it) because the key is what
    peers ultimately trust; a certificate without its key cannot be repaired, so that is
    an error rather than a silent replacement that would break pinned links. A new
    certificate names server_name, this machine and `hosts` (see certificate_names()); an
    existing one is never re-made to follow them, since that would change its fingerprint.
    """
    cert_path, key_path = default_cert_paths(data_dir)
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    if cert_path.exists():
        raise CertificateError(
            f"{cert_path} exists but its key {key_path} is missing; restore the key, or run "
            f"`ircd gencert --force` to make a new pair (linked peers must then update the "
            f"fingerprint they pin)")
    _make_private_dir(data_dir)
    if key_path.exists():
        key = _load_key(key_path)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
        _write_atomically(key_path, _key_pem(key), 0o600)
    _write_atomically(cert_path, _self_signed_pem(key, server_name, hosts), 0o644)
    return cert_path, key_path


def create_certificate(data_dir: Path, server_name: str,
                       hosts: Iterable[str] = ()) -> tuple[Path, Path]:
    """Makes a new key and self-signed certificate in data_dir, replacing any old pair."""
    cert_path, key_path = default_cert_paths(data_dir)
    _make_private_dir(data_dir)
    key = ec.generate_private_key(ec.SECP256R1())
    # Key first: if we stop half-way, ensure_certificate() can still re-make the cert.
    _write_atomically(key_path, _key_pem(key), 0o600)
    _write_atomically(cert_path, _self_signed_pem(key, server_name, hosts), 0o644)
    return cert_path, key_path


def listen_hosts(config: Config) -> tuple[str, ...]:
    """The [[listen]] hosts, for the names of a newly made certificate."""
    return tuple(listen.host for listen in config.listen)


_LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
_DNS_NAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")


def certificate_names(server_name: str, hosts: Iterable[str] = ()) -> list[x509.GeneralName]:
    """Subject alternative names for the self-signed certificate: the server name, this
    machine (localhost, 127.0.0.1, ::1) and every host it listens on, so a client that
    trusts the certificate (say, as its CA file) can verify whichever name it connected to.

    Wildcard listen addresses (0.0.0.0, ::) name no host and are left out, as is anything
    that is neither an IP address nor a plain ASCII host name.
    """
    names: list[x509.GeneralName] = []
    for host in (server_name, *_LOCAL_NAMES, *hosts):
        host = host.strip().strip("[]").rstrip(".").lower()
        try:
            address = ipaddress.ip_address(host.split("%")[0])  # without an IPv6 zone
        except ValueError:
            name = x509.DNSName(host) if _DNS_NAME.fullmatch(host) else None
        else:
            name = None if address.is_unspecified else x509.IPAddress(address)
        if name is not None and name not in names:
            names.append(name)
    return names


def certificate_fingerprint(cert_path: Path) -> str:
    """The pinning fingerprint of the first (leaf) certificate in a PEM file."""
    try:
        certs = x509.load_pem_x509_certificates(cert_path.read_bytes())
    except ValueError as e:
        raise CertificateError(f"{cert_path}: not a PEM certificate ({e})") from None
    return der_fingerprint(certs[0].public_bytes(serialization.Encoding.DER))


def der_fingerprint(der: bytes) -> str:
    """Fingerprint of a DER certificate, e.g. from SSLObject.getpeercert(binary_form=True)."""
    return "sha256:" + hashlib.sha256(der).hexdigest()


_SHA256_DIGITS = 64
_OTHER_DIGESTS = {32: "an MD5", 40: "a SHA-1", 96: "a SHA-384", 128: "a SHA-512"}
_OTHER_PREFIXES = {"md5": "an MD5", "sha1": "a SHA-1", "sha384": "a SHA-384",
                   "sha512": "a SHA-512"}
_PREFIXES = ("sha256:", "sha-256:", "sha256 fingerprint=", "sha256=")
_SEPARATORS = re.compile(r"[\s:]+")
_ASK_THE_PEER = "which `ircd fingerprint` prints on that server"


def _fingerprint_digits(text: str) -> tuple[str | None, str]:
    """(64 lowercase hex digits, "") or (None, what is wrong with `text`)."""
    value = text.strip().lower()
    for prefix in _PREFIXES:
        if value.startswith(prefix):
            value = value[len(prefix):].strip()
            break
    else:
        m = re.match(r"(md5|sha-?1|sha-?384|sha-?512)\s*(?:fingerprint)?\s*[:=]", value)
        if m:
            what = _OTHER_PREFIXES[m[1].replace("-", "")]
            return None, f"is {what} fingerprint: links pin the SHA-256 one, {_ASK_THE_PEER}"
    digits = _SEPARATORS.sub("", value)
    if not digits:
        return None, f"is empty: give the peer's SHA-256 fingerprint, {_ASK_THE_PEER}"
    bad = next((c for c in digits if c not in "0123456789abcdef"), None)
    if bad is not None:
        return None, f"contains {bad!r}, which is not a hex digit"
    if len(digits) != _SHA256_DIGITS:
        what = _OTHER_DIGESTS.get(len(digits))
        if what:
            return None, (f"has {len(digits)} hex digits, so it is {what} fingerprint: links "
                          f"pin the SHA-256 one (64 hex digits), {_ASK_THE_PEER}")
        hint = "cut short when copied?" if len(digits) < 64 else "something extra copied with it?"
        return None, (f"has {len(digits)} hex digits where a SHA-256 fingerprint has "
                      f"{_SHA256_DIGITS} ({hint})")
    return digits, ""


def normalize_fingerprint(text: str) -> str | None:
    """Canonical "sha256:<64 lowercase hex>" form, or None if `text` is not a fingerprint.

    Accepts every form `ircd fingerprint` prints, in either case, with or without the
    "sha256:" prefix: "sha256:<hex>", colon-separated hex as irssi and `openssl x509
    -fingerprint -sha256` show it (also with openssl's "SHA256 Fingerprint=" prefix),
    and bare hex as WeeChat takes it.
    """
    digits, _ = _fingerprint_digits(text)
    return None if digits is None else "sha256:" + digits


def fingerprint_problem(text: str) -> str | None:
    """Why `text` is not a SHA-256 fingerprint normalize_fingerprint() accepts, or None."""
    digits, problem = _fingerprint_digits(text)
    return None if digits is not None else problem


def fingerprint_forms(fingerprint: str) -> dict[str, str]:
    """The fingerprint in the form each consumer takes: "link" (our own canonical
    "sha256:<hex>", for [[link]] fingerprint), "colons" (upper-case hex pairs, for irssi's
    -tls_pinned_cert) and "hex" (bare lower-case hex, for WeeChat's tls_fingerprint).
    `fingerprint` is any form normalize_fingerprint() takes."""
    canonical = normalize_fingerprint(fingerprint)
    if canonical is None:
        raise ValueError(f"not a SHA-256 fingerprint: {fingerprint!r}")
    digits = canonical[len("sha256:"):]
    colons = ":".join(digits[i:i + 2] for i in range(0, len(digits), 2)).upper()
    return {"link": canonical, "colons": colons, "hex": digits}


def server_ssl_context(cert: Path, key: Path) -> ssl.SSLContext:
    """Context for client listeners.

    Client certificates (for SASL EXTERNAL) are not requested: the stdlib ssl module
    can only ask for one with CERT_OPTIONAL, which then verifies it against trusted CAs
    and aborts the handshake for the self-signed certificates clients actually use;
    it offers no hook to accept any certificate and just record its fingerprint.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx


def link_ssl_context(cert: Path, key: Path) -> ssl.SSLContext:
    """Context for link listeners. Both ends run this server, so TLS 1.3 only.

    The peer's identity is checked by fingerprint, not by a CA; see
    link_client_ssl_context() for the connecting side.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(cert, key)
    return ctx


def link_client_ssl_context(cert: Path, key: Path) -> ssl.SSLContext:
    """Context for outgoing links: presents our certificate and skips CA checks, because
    the caller compares the peer's der_fingerprint() with the configured one instead."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(cert, key)
    return ctx


def server_cert_pair(config: Config) -> tuple[Path, Path]:
    """The server's own pair in data_dir: its identity on links (what peers pin)."""
    return ensure_certificate(config.server.data_dir, config.server.name, listen_hosts(config))


def listener_cert_pair(config: Config, listen: ListenConfig) -> tuple[Path, Path]:
    """The (cert, key) a listener serves: its configured pair, else the server's own."""
    if listen.cert is not None and listen.key is not None:
        return listen.cert, listen.key
    return server_cert_pair(config)


def certificate_summary(config: Config) -> list[str]:
    """For the startup log: one line per certificate the TLS listeners serve, saying where
    it is, its fingerprint and which listeners serve it."""
    own, _ = default_cert_paths(config.server.data_dir)
    served: dict[Path, list[str]] = {}
    for listen in config.listen:
        if listen.tls:
            host = f"[{listen.host}]" if ":" in listen.host else listen.host
            served.setdefault(listen.cert or own, []).append(
                f"{host}:{listen.port}" + (" (link)" if listen.link else ""))
    lines = []
    for cert, listeners in served.items():
        try:
            fingerprint = certificate_fingerprint(cert)
        except (CertificateError, OSError) as e:
            fingerprint = f"unknown ({e})"
        which = "server certificate" if cert == own else "certificate"
        lines.append(f"TLS {which} {cert}, fingerprint {fingerprint}, "
                     f"on {', '.join(listeners)}")
    return lines


def _make_private_dir(path: Path) -> None:
    # The mode only applies when we create it: an operator's own choice is left alone.
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


def _load_key(key_path: Path):
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (ValueError, TypeError) as e:
        raise CertificateError(f"{key_path}: not an unencrypted PEM private key ({e})") from None
    return key


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _self_signed_pem(key, server_name: str, hosts: Iterable[str] = ()) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, server_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))  # tolerate peers' clock skew
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(certificate_names(server_name, hosts)),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    """Writes via a temporary file and rename, so a crash never leaves half a key, and
    the key is never readable by others, not even for a moment."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
