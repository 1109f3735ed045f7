"""The `console:` section: off by default, checked once at start-up with messages naming the key."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from proxy.config import ConfigError, load_config
from proxy.console.app import build_console_app

MINIMAL: dict[str, Any] = {
    "legacy": {"url": "http://legacy.internal:8080"},
    "connection_map": "connections.yaml",
    "flags": {"file": "flags.yaml"},
    "routes": [{"path": "/login/callback", "protocol": "saml", "identify": ["saml_issuer"]}],
}
ENABLED = {
    "enabled": True,
    "sign_in": "trusted_header",
    "trusted_header": {"proxies": ["10.0.0.0/8", "fd00::/8"]},
    "roles": {"viewer_groups": ["engineering"]},
    "session_secret_file": "secrets/console",
}


def _load(tmp_path: Path, console: dict[str, Any]) -> Any:
    document = copy.deepcopy(MINIMAL)
    document["console"] = console
    path = tmp_path / "authswitch.yaml"
    path.write_text(yaml.safe_dump(document))
    return load_config(path)


def _error(tmp_path: Path, console: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, console)
    return str(caught.value)


def test_off_by_default_and_a_disabled_console_cannot_be_built(tmp_path: Path) -> None:
    config = _load(tmp_path, {})
    assert config.console.enabled is False
    assert config.console.session_max_age_seconds == 8 * 3600
    assert config.console.secure_cookie is True and config.console.same_site == "lax"
    with pytest.raises(ValueError, match=r"console\.enabled is false"):
        build_console_app(config)


def test_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    oidc = {"issuer": "https://login.company.example", "client_id": "c", "client_secret_file": "s"}
    config = _load(tmp_path, {**ENABLED, "sign_in": "oidc", "oidc": oidc})
    assert config.console.session_secret_file == tmp_path / "secrets/console"
    assert config.console.oidc.client_secret_file == tmp_path / "s"


@pytest.mark.parametrize(
    ("console", "expected"),
    [
        ({"enabled": True}, "needs sign_in"),
        ({**ENABLED, "trusted_header": None}, "add a 'trusted_header' section"),
        ({**ENABLED, "session_secret_file": None}, "needs session_secret_file"),
        ({**ENABLED, "roles": {}}, "names nobody"),
        ({**ENABLED, "trusted_header": {"proxies": []}}, "console.trusted_header.proxies"),
        ({**ENABLED, "trusted_header": {"proxies": ["not-a-cidr"]}}, "console.trusted_header"),
        ({**ENABLED, "sign_in": "saml"}, "console.sign_in"),
        ({**ENABLED, "sesion_max_age_seconds": 60}, "console.sesion_max_age_seconds"),
        (
            {
                **ENABLED,
                "sign_in": "oidc",
                "oidc": {"issuer": "https://idp.example", "client_id": "c"},
                "same_site": "strict",
            },
            "same_site 'strict' loses the session",
        ),
    ],
)
def test_a_bad_console_section_is_one_clear_message(
    tmp_path: Path, console: dict[str, Any], expected: str
) -> None:
    message = _error(tmp_path, console)
    assert expected in message
    assert "authswitch.yaml" in message


def test_a_short_or_missing_session_secret_is_refused_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "connections.yaml").write_text("version: 1\nconnections: []\n")
    config = _load(tmp_path, ENABLED)
    with pytest.raises(ConfigError, match=r"console\.session_secret_file.*cannot read"):
        build_console_app(config)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets/console").write_text("too-short")
    with pytest.raises(ConfigError, match="at least 32 bytes") as caught:
        build_console_app(config)
    assert "too-short" not in str(caught.value)
