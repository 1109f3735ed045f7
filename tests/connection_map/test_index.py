"""The in-memory connection index: lookups by id, by SAML issuer and by OIDC callback path."""

from __future__ import annotations

from typing import Any

from connection_map import ConnectionMap, ConnectionMapDocument, IssuerMatch

SHARED_ISSUER = "https://sts.globex.example/adfs/services/trust"


def saml(cid: str, issuer: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": cid, "protocol": "saml"}
    if issuer is not None:
        entry["saml"] = {"idp_entity_id": issuer}
    return entry


def oidc(cid: str, callback_path: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": cid, "protocol": "oidc"}
    if callback_path is not None:
        entry["oidc"] = {"callback_path": callback_path}
    return entry


def build(*connections: dict[str, Any], version: int = 7) -> ConnectionMap:
    document = ConnectionMapDocument.model_validate(
        {"version": version, "connections": list(connections)}
    )
    return ConnectionMap.build(document, source="connections.yaml")


MAP = build(
    saml("acme", "https://idp.acme.example/saml"),
    saml("globex-us", SHARED_ISSUER),
    saml("globex-eu", SHARED_ISSUER),
    saml("path-only"),
    oidc("hooli", "/oauth2/callback/hooli"),
    oidc("piper"),
)


def test_lookup_by_id() -> None:
    acme = MAP.get("acme")
    assert acme is not None and acme.id == "acme"
    assert MAP.get("ACME") is None
    assert MAP.get("nobody") is None


def test_a_unique_issuer_identifies_its_connection() -> None:
    match = MAP.by_issuer("https://idp.acme.example/saml")
    assert match == IssuerMatch(MAP.get("acme"))
    assert match is not None and match.ambiguous == ()


def test_a_shared_issuer_is_ambiguous_and_names_every_sharer_sorted() -> None:
    assert MAP.by_issuer(SHARED_ISSUER) == IssuerMatch(None, ("globex-eu", "globex-us"))


def test_issuers_match_exactly() -> None:
    assert MAP.by_issuer("https://idp.acme.example/saml/") is None
    assert MAP.by_issuer("https://IDP.acme.example/saml") is None
    assert MAP.by_issuer(" https://idp.acme.example/saml") is None
    assert MAP.by_issuer("") is None


def test_callback_path_identifies_its_oidc_connection() -> None:
    hooli = MAP.by_callback_path("/oauth2/callback/hooli")
    assert hooli is not None and hooli.id == "hooli"
    assert MAP.by_callback_path("/oauth2/callback/hooli/") is None
    assert MAP.by_callback_path("/oauth2/callback/HOOLI") is None
    assert MAP.by_callback_path("/oauth2/callback/piper") is None


def test_size_iteration_version_and_source() -> None:
    assert len(MAP) == 6
    assert [c.id for c in MAP] == ["acme", "globex-us", "globex-eu", "path-only", "hooli", "piper"]
    assert MAP.version == 7
    assert MAP.source == "connections.yaml"


def test_an_empty_map_finds_nothing() -> None:
    empty = build(version=0)
    assert len(empty) == 0 and list(empty) == []
    assert empty.get("acme") is None
    assert empty.by_issuer("https://idp.acme.example/saml") is None
    assert empty.by_callback_path("/oauth2/callback/hooli") is None


def test_entries_without_an_entity_id_or_callback_path_are_not_indexed() -> None:
    """Imported from a metadata URL or a CSV: known, but not recognisable by Issuer or path."""
    connections = build(
        {"id": "oscorp", "protocol": "saml", "saml": {"idp_metadata_url": "https://idp/md"}},
        {"id": "duff", "protocol": "oidc", "oidc": {"client_id": "abc"}},
        saml("acme", "https://idp.acme.example/saml"),
    )
    assert len(connections) == 3 and connections.get("oscorp") is not None
    assert connections.by_issuer("https://idp.acme.example/saml") == IssuerMatch(
        connections.get("acme")
    )
    assert list(connections._by_issuer) == ["https://idp.acme.example/saml"]
    assert dict(connections._by_callback_path) == {}


def test_the_package_never_imports_the_proxy_or_the_flags() -> None:
    import ast
    from pathlib import Path

    package = Path(__file__).resolve().parents[2] / "connection_map"
    for module in package.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            for name in names:
                assert name.split(".")[0] not in {"proxy", "flags"}, f"{module.name}: {name}"


def with_prefix(cid: str, prefix: str) -> dict[str, Any]:
    return {**saml(cid), "relay_state_prefix": prefix}


PREFIXED = build(
    with_prefix("acme", "acme:"),
    with_prefix("globex", "gx-"),
    with_prefix("initech", "initech/eu/"),
    saml("no-prefix"),
)


def test_relay_state_prefix_finds_the_one_connection_whose_prefix_starts_it() -> None:
    found = {
        relay_state: (c.id if (c := PREFIXED.by_relay_state(relay_state)) else None)
        for relay_state in (
            "acme:/dashboard",
            "acme:",
            "gx-42",
            "initech/eu/home",
            "initech/us/home",  # a prefix's start is not the prefix
            "acme",  # shorter than the prefix
            "ACME:/dashboard",  # prefixes are exact, case included
            "https://app.example.com/return",
            "",
        )
    }
    assert found == {
        "acme:/dashboard": "acme",
        "acme:": "acme",
        "gx-42": "globex",
        "initech/eu/home": "initech",
        "initech/us/home": None,
        "acme": None,
        "ACME:/dashboard": None,
        "https://app.example.com/return": None,
        "": None,
    }


def test_relay_state_lookup_cost_does_not_grow_with_the_map() -> None:
    # 5000 prefixes of one length: one slice and one dict lookup, whatever the map's size.
    big = build(*(with_prefix(f"c{n}", f"t{n:05d}:") for n in range(5000)))
    assert big._relay_state_prefix_lengths == (7,)
    hit = big.by_relay_state("t04321:/home")
    assert hit is not None and hit.id == "c4321"
    assert big.by_relay_state("x" * 100_000) is None
    assert MAP.by_relay_state("anything") is None  # a map without prefixes
