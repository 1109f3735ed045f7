"""Checking signed SAML metadata against a pinned certificate or SHA-256 fingerprint.

The document must carry exactly one enveloped signature, directly under its root, whose one
Reference covers the whole document (URI "" or "#" + the root's ID, that ID held by no other
element): a signature over a part would let the rest be changed, and a second element with the
signed ID is the classic wrapping attack. xmlsec (through python3-saml's binding) checks the
signature with the pinned certificate, or with the certificate in the signature's KeyInfo once
its SHA-256 fingerprint equals the pinned one. Any change to a signed byte is then refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

import xmlsec
from lxml import etree

from connection_map.saml_metadata import DS, MetadataError, metadata_root


@dataclass(frozen=True, slots=True)
class SignaturePin:
    """What the metadata's signature must verify against: a certificate, or a fingerprint."""

    certificate_pem: str | None = None
    sha256_fingerprint: str | None = None  # hex; colons and case ignored

    def __post_init__(self) -> None:
        if (self.certificate_pem is None) == (self.sha256_fingerprint is None):
            raise ValueError("pin a certificate or a fingerprint, one of them")


def verify_metadata_signature(data: bytes, pin: SignaturePin) -> None:
    """Return when `data` is signed over its whole document by the pinned key; else
    MetadataError saying why (never quoting the document)."""
    root = metadata_root(data)
    signatures = root.findall(f"{{{DS}}}Signature")
    if not signatures:
        raise MetadataError("is not signed, but its signature is pinned")
    if len(signatures) > 1 or len(root.findall(f".//{{{DS}}}Signature")) > 1:
        raise MetadataError("has more than one signature")
    signature = signatures[0]
    _check_reference(root, signature)
    certificate = pin.certificate_pem or _pinned_key_info_certificate(signature, pin)
    xmlsec.tree.add_ids(root, ["ID"])
    context = xmlsec.SignatureContext()
    try:
        context.key = xmlsec.Key.from_memory(
            certificate, xmlsec.constants.KeyDataFormatCertPem, None
        )
    except xmlsec.Error:
        raise MetadataError(
            "cannot be checked: the pinned certificate is not a PEM certificate"
        ) from None
    try:
        context.verify(signature)
    except xmlsec.Error:
        raise MetadataError("has a signature that does not verify with the pinned key") from None


def _check_reference(root: etree._Element, signature: etree._Element) -> None:
    references = signature.findall(f"{{{DS}}}SignedInfo/{{{DS}}}Reference")
    root_id = root.get("ID")
    covers = {""} | ({f"#{root_id}"} if root_id else set())
    if len(references) != 1 or references[0].get("URI") not in covers:
        raise MetadataError("has a signature that does not cover the whole document")
    if root_id and len(root.xpath("//@ID[. = $id]", id=root_id)) != 1:
        raise MetadataError("has another element with the signed root's ID")


def _pinned_key_info_certificate(signature: etree._Element, pin: SignaturePin) -> str:
    """The KeyInfo certificate as PEM, if its SHA-256 fingerprint is the pinned one."""
    assert pin.sha256_fingerprint is not None
    wanted = pin.sha256_fingerprint.replace(":", "").strip().lower()
    for element in signature.iter(f"{{{DS}}}X509Certificate"):
        try:
            der = base64.b64decode("".join((element.text or "").split()), validate=True)
        except binascii.Error:
            continue
        if hmac.compare_digest(hashlib.sha256(der).hexdigest(), wanted):
            body = base64.b64encode(der).decode()
            lines = [body[i : i + 64] for i in range(0, len(body), 64)]
            return (
                "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"
            )
    raise MetadataError("is not signed with the certificate of the pinned fingerprint")
