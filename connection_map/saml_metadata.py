"""Reading a SAML IdP's metadata and folding it into a connection.

The document is parsed by ``foundation.hardened_xml``, as the proxy's SAMLResponse reader does:
UTF-8 only, any DOCTYPE refused by a byte scan before libxml2 sees the document (it opens
external DTDs even with entity loading off), no entities, no network, no huge trees.
A signed document can be checked against a pinned certificate or fingerprint first
(metadata_signature.py); without a pin the signature is not checked: fetch the metadata over
https from the IdP itself, or review the certificates the import reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from lxml import etree
from pydantic import ValidationError

from connection_map.certificates import CertificateError, certificate_pem_from_base64
from connection_map.csv_import import ImportProblem, ImportRefused
from connection_map.model import Connection, ConnectionMapDocument, Protocol
from foundation.hardened_xml import XmlRefusal, XmlRefused, parse_untrusted_xml

MD: Final = "urn:oasis:names:tc:SAML:2.0:metadata"
DS: Final = "http://www.w3.org/2000/09/xmldsig#"
SAML2_PROTOCOL: Final = "urn:oasis:names:tc:SAML:2.0:protocol"
BINDING: Final = "urn:oasis:names:tc:SAML:2.0:bindings:{}"
# The binding a new provider sends AuthnRequests with first: it becomes the exported idpUrl.
_PREFERRED_BINDINGS: Final = (BINDING.format("HTTP-Redirect"), BINDING.format("HTTP-POST"))
_REFUSALS: Final[dict[XmlRefusal, str]] = {
    "not_markup": "is not UTF-8 XML (it must start with '<'; UTF-16 and UTF-32 are not accepted)",
    "not_xml": "is not well-formed XML",
    "bad_encoding": "is not UTF-8 or declares an encoding other than UTF-8",
    "bad_declaration": "is not well-formed XML (the XML declaration must come first, version 1.0)",
    "doctype": "contains a DOCTYPE, which SAML metadata must not",
}


class MetadataError(ValueError):
    """The metadata can't be used; the message never quotes the document."""


@dataclass(frozen=True, slots=True)
class IdpMetadata:
    entity_id: str
    sso_services: tuple[tuple[str, str], ...]  # (binding, location), preferred binding first
    signing_certificates: tuple[str, ...]  # canonical PEM
    name_id_formats: tuple[str, ...]
    want_authn_requests_signed: bool


def parse_idp_metadata(data: bytes, *, entity_id: str | None = None) -> IdpMetadata:
    """The IdP in `data` (the only one, or the one named `entity_id`), or MetadataError."""
    root = _parse(data)
    idps = {
        entity.get("entityID", ""): descriptor
        for entity in _entities(root)
        if (descriptor := _idp_descriptor(entity)) is not None
    }
    if entity_id is not None:
        descriptor = idps.get(entity_id)
        if descriptor is None:
            raise MetadataError(f"has no IdP with entity id {entity_id!r}")
        return _read_idp(entity_id, descriptor)
    if len(idps) == 1:
        ((only, descriptor),) = idps.items()
        return _read_idp(only, descriptor)
    if not idps:
        if root.find(f".//{{{MD}}}SPSSODescriptor") is not None:
            raise MetadataError("describes a service provider (SPSSODescriptor), not an IdP")
        raise MetadataError("has no SAML 2.0 IdP (IDPSSODescriptor)")
    raise MetadataError(f"describes {len(idps)} IdPs: choose one with --entity-id")


def metadata_root(data: bytes) -> etree._Element:
    """The metadata's root element, parsed hardened (MetadataError if it is not metadata)."""
    return _parse(data)


def _parse(data: bytes) -> etree._Element:
    try:
        root = parse_untrusted_xml(data)
    except XmlRefused as exc:
        refusal = exc.reason
    else:
        if root.tag not in (f"{{{MD}}}EntityDescriptor", f"{{{MD}}}EntitiesDescriptor"):
            raise MetadataError("is not SAML metadata (no EntityDescriptor)")
        return root
    raise MetadataError(_REFUSALS[refusal])  # outside the except: no parser text chained


def _entities(root: etree._Element) -> list[etree._Element]:
    if root.tag == f"{{{MD}}}EntityDescriptor":
        return [root]
    return list(root.iter(f"{{{MD}}}EntityDescriptor"))


def _idp_descriptor(entity: etree._Element) -> etree._Element | None:
    for descriptor in entity.findall(f"{{{MD}}}IDPSSODescriptor"):
        if SAML2_PROTOCOL in descriptor.get("protocolSupportEnumeration", "").split():
            return descriptor
    return None


def _read_idp(entity_id: str, descriptor: etree._Element) -> IdpMetadata:
    if not entity_id:
        raise MetadataError("has an EntityDescriptor without an entityID")
    services = [
        (element.get("Binding", ""), element.get("Location", ""))
        for element in descriptor.findall(f"{{{MD}}}SingleSignOnService")
    ]
    if not services or not all(location for _, location in services):
        raise MetadataError("has no SingleSignOnService with a Location")
    services.sort(key=_binding_rank)
    certificates: list[str] = []
    for key in descriptor.findall(f"{{{MD}}}KeyDescriptor"):
        if key.get("use", "signing") != "signing":
            continue
        for element in key.iter(f"{{{DS}}}X509Certificate"):
            try:
                pem = certificate_pem_from_base64(element.text or "")
            except CertificateError as exc:
                raise MetadataError(f"signing certificate #{len(certificates) + 1} {exc}") from None
            if pem not in certificates:
                certificates.append(pem)
    if not certificates:
        raise MetadataError("has no signing certificate (KeyDescriptor use='signing')")
    formats = [
        (element.text or "").strip() for element in descriptor.findall(f"{{{MD}}}NameIDFormat")
    ]
    return IdpMetadata(
        entity_id=entity_id,
        sso_services=tuple(services),
        signing_certificates=tuple(certificates),
        name_id_formats=tuple(dict.fromkeys(f for f in formats if f)),
        want_authn_requests_signed=descriptor.get("WantAuthnRequestsSigned") in ("true", "1"),
    )


def _binding_rank(service: tuple[str, str]) -> int:
    binding = service[0]
    return _PREFERRED_BINDINGS.index(binding) if binding in _PREFERRED_BINDINGS else 2


def import_idp_metadata(
    document: ConnectionMapDocument,
    metadata: IdpMetadata,
    connection_id: str,
    *,
    source: str,
    metadata_url: str | None = None,
) -> ConnectionMapDocument:
    """`document` with connection `connection_id` created or updated from the IdP's metadata."""
    existing = next((c for c in document.connections if c.id == connection_id), None)
    if existing is not None and existing.protocol is not Protocol.SAML:
        raise ImportRefused(
            source,
            [ImportProblem("is an oidc connection in the map", connection_id=connection_id)],
        )
    raw: dict[str, Any] = (
        existing.model_dump()
        if existing is not None
        else {"id": connection_id, "protocol": "saml", "saml": {}}
    )
    saml: dict[str, Any] = dict(raw.get("saml") or {})
    saml.update(
        idp_entity_id=metadata.entity_id,
        idp_sso_urls=[
            {"url": location, "binding": binding or None}
            for binding, location in metadata.sso_services
        ],
        signing_certificates=list(metadata.signing_certificates),
        idp_name_id_formats=list(metadata.name_id_formats),
    )
    if len(metadata.name_id_formats) == 1:
        saml["name_id_format"] = metadata.name_id_formats[0]
    if metadata_url is not None:
        saml["idp_metadata_url"] = metadata_url
    if metadata.want_authn_requests_signed:
        signing = dict(saml.get("request_signing") or {})
        saml["request_signing"] = {**signing, "enabled": True}
    raw["saml"] = saml
    try:
        connection = Connection.model_validate(raw)
        connections = [connection if c.id == connection_id else c for c in document.connections]
        if existing is None:
            connections.append(connection)
        return ConnectionMapDocument(version=document.version + 1, connections=tuple(connections))
    except ValidationError as exc:
        problems = [
            ImportProblem(
                error["msg"].removeprefix("Value error, "),
                column=".".join(str(p) for p in error["loc"]) or None,
                connection_id=connection_id,
            )
            for error in exc.errors(include_url=False, include_input=False)
        ]
        raise ImportRefused(source, problems) from None
