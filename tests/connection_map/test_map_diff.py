"""The map diff: connections added, removed and changed field by field."""

from __future__ import annotations

from typing import Any

from connection_map import ConnectionMapDocument, diff_maps


def _map(version: int, *entries: dict[str, Any]) -> ConnectionMapDocument:
    return ConnectionMapDocument.model_validate({"version": version, "connections": list(entries)})


def _saml(cid: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": cid,
        "protocol": "saml",
        "saml": {"idp_entity_id": f"https://idp.{cid}.example"},
        "new_provider": {"url": f"https://new.example/sso/{cid}"},
        **extra,
    }


def test_added_removed_and_changed_fields_by_dotted_path() -> None:
    live = _map(1, _saml("acme"), _saml("globex"), _saml("initech"))
    new = _map(
        2,
        _saml("acme", new_provider={"url": "https://new.example/eu/acme", "mode": "form_post"}),
        _saml("globex"),
        _saml("hooli"),
    )

    diff = diff_maps(live, new)

    assert (diff.added, diff.removed) == (("hooli",), ("initech",))
    (acme,) = diff.changed
    assert acme.id == "acme"
    assert {(f.field, f.before, f.after) for f in acme.fields} == {
        ("new_provider.url", "https://new.example/sso/acme", "https://new.example/eu/acme"),
        ("new_provider.mode", "redirect", "form_post"),
    }
    assert diff.to_json()["changed"][0]["id"] == "acme"


def test_the_same_connections_in_another_order_and_version_are_no_change() -> None:
    live = _map(1, _saml("acme"), _saml("globex"))
    new = _map(7, _saml("globex"), _saml("acme"))
    assert diff_maps(live, new).empty


def test_a_field_that_appears_is_a_change_from_nothing() -> None:
    live = _map(1, {"id": "hooli", "protocol": "oidc"})
    new = _map(2, _saml("hooli") | {"protocol": "oidc", "saml": None})
    (hooli,) = diff_maps(live, new).changed
    assert ("new_provider.url", None, "https://new.example/sso/hooli") in {
        (f.field, f.before, f.after) for f in hooli.fields
    }


def test_without_a_live_map_everything_is_added() -> None:
    diff = diff_maps(None, _map(1, _saml("b"), _saml("a")))
    assert diff.added == ("a", "b") and not diff.removed and not diff.changed
