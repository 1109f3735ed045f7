"""The realistic connections CSV fixture, with generated certificates and keys filled in."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from tests.connection_map.conftest import FIXTURES, make_certificate

TEMPLATE = FIXTURES / "connections.csv"
_CERT = re.compile(r"^@CERT:(.+)@$")

# Rows of the fixture that are broken on purpose: (row, column) as the importer must report.
BROKEN = {
    (6, "idpEntityId"),  # initech: no entity id, no metadata URL
    (8, "idpUrl"),  # umbrella: no scheme
    (11, "x509Cert"),  # cyberdyne: a private key pasted as the certificate
    (13, "clientSecret"),  # wonka: OIDC without its secret
    (15, None),  # stark: SAML and OIDC values on one row
    (18, "externalId"),  # globex again: same id as row 3
    (20, "idpInitiatedEnabled"),  # gringotts: "sometimes"
    (22, "requestSigningKey"),  # dunder: not a private key (a secret all the same)
    (24, "domains"),  # bluth: bluth..example
    (25, "discoveryEndpoint"),  # sterling: ftp://
    (27, "externalId"),  # nameless: no id
    (29, "externalId"),  # los pollos: a space in the id
}
BROKEN_IDS = {"initech", "umbrella", "cyberdyne", "wonka", "stark", "gringotts", "dunder"}
BROKEN_IDS |= {"bluth", "sterling", "", "los pollos"}
CLIENT_SECRET_SUFFIX = "_Zk8q2LwV9xT4mR7p"
NOT_A_KEY_SECRET = "S3cr3t-signing-key-do-not-echo"


def render(key: rsa.RSAPrivateKey, sp_key_pem: str, *, drop_broken: bool = False) -> str:
    """The fixture with '@CERT:name@' and '@KEY@' cells replaced (quoted, multi-line)."""
    rows = list(csv.reader(io.StringIO(TEMPLATE.read_text(), newline="")))
    header, body = rows[0], rows[1:]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    seen: set[str] = set()
    for cells in body:
        ext = cells[header.index("externalId")]
        if drop_broken and (ext in BROKEN_IDS or ext in seen):
            continue
        seen.add(ext)
        writer.writerow([_fill(cell, key, sp_key_pem) for cell in cells])
    return out.getvalue()


def _fill(cell: str, key: rsa.RSAPrivateKey, sp_key_pem: str) -> str:
    if cell == "@KEY@":
        return sp_key_pem
    found = _CERT.match(cell)
    if found:
        return make_certificate(f"{found.group(1)} IdP signing", key=key)
    return cell


def write(tmp: Path, text: str, name: str = "connections.csv") -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8", newline="")
    return path
