"""TLS material for the offline stack: a local CA and a certificate for loopback.

Azurite accepts bearer tokens only over HTTPS, so the stack needs a server certificate
that clients can verify. The CA is generated once per state dir and kept, so a developer
who chose to trust ``ca.pem`` keeps trusting it; the server certificate is re-issued from
that CA when it is missing or close to expiry.

Files, under ``<state>/certs/``:

* ``ca.pem`` / ``ca-key.pem`` — the CA (the key stays private to the stack, mode 0600).
* ``server.pem`` / ``server-key.pem`` — the server certificate chain for ``localhost`` and
  ``127.0.0.1``, and its key.
* ``bundle.pem`` — certifi's public roots plus our CA, for tools that take one bundle
  (``REQUESTS_CA_BUNDLE``, ``SSL_CERT_FILE``) and still need to reach public hosts.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import certifi
import trustme
from cryptography import x509
from cryptography.exceptions import InvalidSignature

SERVER_IDENTITIES = ("localhost", "127.0.0.1")
# A year keeps the "re-issue when expired" path real without making developers re-trust
# anything: only the leaf changes, the CA stays.
SERVER_CERT_LIFETIME = dt.timedelta(days=365)
# Re-issue a little before expiry so a long-running stack does not cross the deadline.
RENEW_BEFORE = dt.timedelta(days=7)


@dataclass(frozen=True)
class CertPaths:
    """Where the stack's TLS files live."""

    directory: Path

    @property
    def ca(self) -> Path:
        """The CA certificate clients trust (``LOCAL_CA_BUNDLE``)."""
        return self.directory / "ca.pem"

    @property
    def ca_key(self) -> Path:
        """The CA's private key; only used to issue the server certificate."""
        return self.directory / "ca-key.pem"

    @property
    def server_chain(self) -> Path:
        """Server certificate followed by the rest of its chain (Azurite ``--cert``)."""
        return self.directory / "server.pem"

    @property
    def server_key(self) -> Path:
        """Server private key (Azurite ``--key``)."""
        return self.directory / "server-key.pem"

    @property
    def bundle(self) -> Path:
        """certifi's roots plus our CA, for ``REQUESTS_CA_BUNDLE`` / ``SSL_CERT_FILE``."""
        return self.directory / "bundle.pem"


def write_atomic(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write ``data`` to ``path`` so readers never see a half-written file.

    ``private`` creates the file with mode 0600 (keys and secrets).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            # mkstemp creates 0600 already; widen only what is public.
            if not private:
                os.fchmod(handle.fileno(), 0o644)
            handle.write(data)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _load_cert(pem_path: Path) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(pem_path.read_bytes())
    except (OSError, ValueError):
        return None


def _valid_until_beyond(cert: x509.Certificate | None, moment: dt.datetime) -> bool:
    return cert is not None and cert.not_valid_after_utc > moment


def _load_or_create_ca(paths: CertPaths, now: dt.datetime) -> tuple[trustme.CA, bool]:
    """The persisted CA if it is intact and valid, else a new one (True when new)."""
    if paths.ca_key.is_file() and _valid_until_beyond(_load_cert(paths.ca), now):
        try:
            return trustme.CA.from_pem(paths.ca.read_bytes(), paths.ca_key.read_bytes()), False
        except ValueError:
            pass  # Corrupt files: fall through and start over.
    ca = trustme.CA(organization_name="Speech offline stack", organization_unit_name="Local CA")
    write_atomic(paths.ca_key, ca.private_key_pem.bytes(), private=True)
    write_atomic(paths.ca, ca.cert_pem.bytes())
    return ca, True


def _server_cert_is_current(paths: CertPaths, ca: trustme.CA, now: dt.datetime) -> bool:
    leaf = _load_cert(paths.server_chain)
    if leaf is None or not paths.server_key.is_file():
        return False
    if not _valid_until_beyond(leaf, now + RENEW_BEFORE):
        return False
    # A leaf from an earlier CA would not verify against ca.pem any more.
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    try:
        leaf.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def ensure_certs(state_dir: Path, *, now: dt.datetime | None = None) -> CertPaths:
    """Create or reuse the CA, the server certificate and the CA bundle under ``state_dir``.

    Idempotent: with everything present and valid, nothing is rewritten except a bundle
    that no longer matches certifi's current roots.
    """
    paths = CertPaths(state_dir / "certs")
    moment = now or dt.datetime.now(dt.UTC)
    ca, ca_is_new = _load_or_create_ca(paths, moment)
    ca_pem = ca.cert_pem.bytes()
    if ca_is_new or not _server_cert_is_current(paths, ca, moment):
        leaf = ca.issue_cert(
            *SERVER_IDENTITIES,
            common_name="localhost",
            not_before=moment - dt.timedelta(days=1),
            not_after=moment + SERVER_CERT_LIFETIME,
        )
        write_atomic(paths.server_key, leaf.private_key_pem.bytes(), private=True)
        write_atomic(paths.server_chain, b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    roots = Path(certifi.where()).read_bytes()
    bundle = roots.rstrip(b"\n") + b"\n\n# Speech offline stack local CA\n" + ca_pem
    if not paths.bundle.is_file() or paths.bundle.read_bytes() != bundle:
        write_atomic(paths.bundle, bundle)
    return paths
