"""Throw-away certificates: a CA, the loopback server certificate and a client certificate.

Generated with ``cryptography`` at start-up (reference Appendix A.2): clients trust ``ca.pem``;
the certificate application user authenticates with ``client-certificate.pem`` and its key.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import typing as t
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

if t.TYPE_CHECKING:
    from pathlib import Path

_VALIDITY = dt.timedelta(days=30)
_PRIVATE = 0o600


@dataclass(frozen=True, slots=True)
class Pki:
    """Paths of the generated PEM files.

    Attributes:
        ca: CA certificate clients trust (``ca.pem``).
        server_cert: Server certificate for ``127.0.0.1``, ``localhost``, ``::1`` and the host.
        server_key: Server private key.
        client_cert: Certificate registered for the certificate application user.
        client_key: Its RSA private key (what MSAL signs client assertions with).
    """

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    @classmethod
    def create(cls, directory: Path, host: str = "127.0.0.1") -> Pki:
        """Generate a fresh CA, server and client certificate into ``directory``.

        The server certificate covers loopback and ``host`` (an IP address or a DNS name).
        """
        directory.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = _name("dataverse-emulator test CA")
        ca_cert = (
            _builder(ca_name, ca_name, ca_key.public_key(), now)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(ca_key, hashes.SHA256())
        )
        server_key = ec.generate_private_key(ec.SECP256R1())
        server_cert = (
            _builder(_name("127.0.0.1"), ca_name, server_key.public_key(), now)
            .add_extension(
                x509.SubjectAlternativeName(_server_names(host)),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        client_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        client_name = _name("dataverse-emulator certificate user")
        client_cert = _builder(client_name, client_name, client_key.public_key(), now).sign(
            client_key, hashes.SHA256()
        )
        pki = cls(
            ca=directory / "ca.pem",
            server_cert=directory / "server.pem",
            server_key=directory / "server-key.pem",
            client_cert=directory / "client-certificate.pem",
            client_key=directory / "client-certificate-key.pem",
        )
        _write(pki.ca, _cert_pem(ca_cert))
        _write(pki.server_cert, _cert_pem(server_cert) + _cert_pem(ca_cert))
        _write(pki.server_key, _key_pem(server_key), private=True)
        _write(pki.client_cert, _cert_pem(client_cert))
        _write(pki.client_key, _key_pem(client_key), private=True)
        return pki


def thumbprints(certificate_pem: bytes) -> tuple[str, str]:
    """Return the SHA-1 and SHA-256 thumbprints of a PEM certificate as upper-case hex."""
    cert = x509.load_pem_x509_certificate(certificate_pem)
    return (
        cert.fingerprint(hashes.SHA1()).hex().upper(),  # noqa: S303 - x5t is SHA-1 by definition
        cert.fingerprint(hashes.SHA256()).hex().upper(),
    )


def _server_names(host: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    try:
        extra: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        extra = x509.DNSName(host)
    if extra not in names:
        names.append(extra)
    return names


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
    not_before: dt.datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + _VALIDITY)
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    path.write_bytes(data)
    if private:
        path.chmod(_PRIVATE)
