"""Reading X.509 certificates from PEM text (a file on a host, or what `openssl s_client
-showcerts` printed), with the `cryptography` library: who a certificate is for, who signed
it, until when, and for which names.

`cryptography` is imported when a certificate is first read: its OpenSSL bindings add about
8 MiB to a process, and a console whose hosts name no TLS endpoint never reads one."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography import x509

_PEM = re.compile(r"-----BEGIN CERTIFICATE-----\s.*?-----END CERTIFICATE-----", re.S)
MAX_CERTIFICATES = 32
"""More than this in one text is not a chain anyone serves; the rest is left unread."""


@dataclass(frozen=True, slots=True)
class Certificate:
    """The facts of one certificate an operator acts on."""

    subject: str
    issuer: str
    not_before: float
    not_after: float
    names: tuple[str, ...]
    """DNS names and IP addresses of its subjectAltName (the common name if it has none)."""
    self_signed: bool

    def days_left(self, now: float) -> float:
        return (self.not_after - now) / 86400

    def covers(self, name: str) -> bool:
        """Whether `name` (a host name or an address) is one it is valid for; `*.example.com`
        covers one label, as browsers read it (RFC 6125)."""
        wanted = name.lower().rstrip(".")
        for pattern in (n.lower() for n in self.names):
            if pattern == wanted:
                return True
            wild = pattern.startswith("*.") and "." in wanted and not _is_address(wanted)
            if wild and wanted.split(".", 1)[1] == pattern[2:]:
                return True
        return False


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _common_name(name: x509.Name) -> str:
    from cryptography.x509.oid import NameOID

    found = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = found[0].value if found else ""
    return value if isinstance(value, str) else value.decode(errors="replace")


def _names(cert: x509.Certificate) -> tuple[str, ...]:
    from cryptography import x509
    from cryptography.x509.oid import ExtensionOID

    try:
        alt = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    except x509.ExtensionNotFound:
        common = _common_name(cert.subject)
        return (common,) if common else ()
    assert isinstance(alt, x509.SubjectAlternativeName)
    dns = alt.get_values_for_type(x509.DNSName)
    addresses = [str(a) for a in alt.get_values_for_type(x509.IPAddress)]
    return (*dns, *addresses)


def _when(moment: datetime) -> float:
    return moment.timestamp()


def read_certificates(text: str) -> list[Certificate]:
    """The certificates in PEM text, in the order given (a chain: the leaf first). A block
    that is not a certificate cryptography can read raises ValueError naming its place."""
    from cryptography import x509

    found: list[Certificate] = []
    for index, block in enumerate(_PEM.findall(text)[:MAX_CERTIFICATES]):
        try:
            cert = x509.load_pem_x509_certificate(block.encode())
            found.append(
                Certificate(
                    subject=cert.subject.rfc4514_string(),
                    issuer=cert.issuer.rfc4514_string(),
                    not_before=_when(cert.not_valid_before_utc),
                    not_after=_when(cert.not_valid_after_utc),
                    names=_names(cert),
                    self_signed=cert.subject == cert.issuer,
                )
            )
        except ValueError as error:
            raise ValueError(f"certificate {index + 1}: {error}") from None
    return found
