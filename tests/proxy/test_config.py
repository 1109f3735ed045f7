"""The service configuration: defaults, path resolution, and one clear message per bad file."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from proxy.config import ConfigError, Strategy, load_config, parse_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "authswitch.yaml"

MINIMAL: dict[str, Any] = {
    "legacy": {"url": "http://legacy.internal:9000"},
    "connection_map": "connections.yaml",
    "flags": {"file": "flags.yaml"},
    "routes": [{"path": "/login/callback", "protocol": "saml", "identify": ["saml_issuer"]}],
}


def _write(directory: Path, document: Any, name: str = "authswitch.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def _with(**changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(MINIMAL)
    document.update(changes)
    return document


def _error_for(tmp_path: Path, document: Any) -> tuple[Path, str]:
    path = _write(tmp_path, document)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return path, str(caught.value)


def test_minimal_config_gets_every_documented_default(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, MINIMAL))

    assert (config.listen.host, config.listen.port) == ("127.0.0.1", 8080)
    assert config.legacy.preserve_host is True
    assert config.flags.poll_interval_seconds == 0.5
    route = config.routes[0]
    assert route.query_param == "connection"
    assert route.methods == ("GET", "POST")
    assert (config.bounce_back.param, config.bounce_back.value) == (
        "authswitch_fallback",
        "legacy",
    )
    assert config.limits.max_body_bytes == 256 * 1024
    assert config.limits.max_fields == 64
    assert config.timeouts.connect_seconds == 3.0
    assert config.timeouts.read_seconds == 30.0
    assert config.timeouts.body_seconds == 15.0
    assert config.timeouts.upstream_keepalive_seconds == 4.0
    assert config.forwarding.trust_forwarded_headers is False
    assert config.forwarding.forward_cookies_to_new_provider is False
    assert config.forwarding.form_post_redirect_sources == ("https:",)
    assert config.logging.level == "info"
    assert config.ops_prefix == "/_authswitch"


def test_example_file_spells_out_exactly_the_defaults() -> None:
    """The shipped example claims to list every key with its default: hold it to that."""
    example = load_config(EXAMPLE)
    raw = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    required_only = {
        "legacy": {"url": raw["legacy"]["url"]},
        "connection_map": raw["connection_map"],
        "flags": {"file": raw["flags"]["file"]},
        "routes": [
            {key: route[key] for key in ("path", "protocol", "identify")} for route in raw["routes"]
        ],
    }
    defaults = parse_config(required_only, source=EXAMPLE)

    assert example == defaults


def test_relative_paths_are_resolved_against_the_config_files_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_dir = tmp_path / "etc" / "authswitch"
    config_dir.mkdir(parents=True)
    _write(config_dir, _with(connection_map="maps/connections.yaml"))
    elsewhere = tmp_path / "run"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    config = load_config(config_dir / "authswitch.yaml")

    assert config.connection_map == config_dir / "maps" / "connections.yaml"
    assert config.flags.file == config_dir / "flags.yaml"


def test_a_config_path_relative_to_the_working_directory_still_finds_its_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "conf").mkdir()
    _write(tmp_path / "conf", MINIMAL)
    monkeypatch.chdir(tmp_path)

    config = load_config("conf/authswitch.yaml")

    assert config.connection_map.resolve() == (tmp_path / "conf" / "connections.yaml").resolve()
    assert config.flags.file.resolve() == (tmp_path / "conf" / "flags.yaml").resolve()


def test_absolute_paths_are_kept(tmp_path: Path) -> None:
    elsewhere = tmp_path / "shared" / "connections.yaml"
    config = load_config(_write(tmp_path, _with(connection_map=str(elsewhere))))
    assert config.connection_map == elsewhere


def test_form_post_redirect_sources_accept_schemes_origins_and_wildcard_hosts(
    tmp_path: Path,
) -> None:
    sources = ["https:", "https://app.example.com", "https://*.example.com:8443"]
    config = load_config(
        _write(tmp_path, _with(forwarding={"form_post_redirect_sources": sources}))
    )
    assert config.forwarding.form_post_redirect_sources == tuple(sources)


def test_route_options_and_strategies_are_read(tmp_path: Path) -> None:
    route = {
        "path": "/sso/{connection}/acs",
        "protocol": "saml",
        "identify": ["path", "query", "saml_issuer"],
        "query_param": "conn",
        "methods": ["POST"],
    }
    config = load_config(_write(tmp_path, _with(routes=[route])))
    loaded = config.routes[0]
    assert loaded.identify == (Strategy.PATH, Strategy.QUERY, Strategy.SAML_ISSUER)
    assert loaded.query_param == "conn"
    assert loaded.methods == ("POST",)


def _route(**fields: Any) -> dict[str, Any]:
    return {"path": "/login/callback", "protocol": "saml", "identify": ["saml_issuer"], **fields}


BAD_VALUES = [
    pytest.param(_with(legacy={}), "legacy.url", "Field required", id="missing-legacy-url"),
    pytest.param(
        _with(legacy={"url": "not a url"}), "legacy.url", "valid URL", id="legacy-url-not-a-url"
    ),
    pytest.param(
        _with(legacy={"url": "ftp://legacy.internal"}),
        "legacy.url",
        "URL scheme should be 'http' or 'https'",
        id="legacy-url-not-http",
    ),
    pytest.param(
        _with(legacy={"url": "http://legacy.internal/?tenant=a"}),
        "legacy.url",
        "must not have a query or fragment",
        id="legacy-url-with-query",
    ),
    pytest.param(
        _with(legacy={"url": "http://legacy.internal/#top"}),
        "legacy.url",
        "must not have a query or fragment",
        id="legacy-url-with-fragment",
    ),
    pytest.param(
        _with(listen={"host": "0.0.0.0", "prot": 8080}),
        "listen.prot",
        "Extra inputs are not permitted",
        id="unknown-nested-key",
    ),
    pytest.param(
        _with(route=[]), "route", "Extra inputs are not permitted", id="unknown-top-level-key"
    ),
    pytest.param(
        _with(routes=[_route(identify=["path"])]),
        "routes.0",
        "strategy 'path' needs a '{connection}' segment in the path",
        id="path-strategy-without-connection-segment",
    ),
    pytest.param(
        _with(routes=[_route(path="/sso/{tenant}/acs", identify=["path"])]),
        "routes.0",
        "strategy 'path' needs a '{connection}' segment in the path",
        id="path-strategy-with-another-segment-name",
    ),
    pytest.param(
        _with(
            routes=[_route(), _route(path="/oidc/callback", protocol="oidc")],
        ),
        "routes.1",
        "strategy 'saml_issuer' only applies to saml routes",
        id="saml-issuer-on-oidc-route",
    ),
    pytest.param(
        _with(routes=[_route(identify=["saml_issuer", "query", "saml_issuer"])]),
        "routes.0",
        "a strategy is listed twice in 'identify'",
        id="duplicate-strategy",
    ),
    pytest.param(
        _with(routes=[_route(identify=["relay_state"])]),
        "routes.0.identify.0",
        "Input should be 'path', 'query', 'saml_issuer', 'callback_path', 'relay_state_prefix' or "
        "'oidc_state'",
        id="unknown-strategy",
    ),
    pytest.param(
        _with(routes=[_route(identify=[])]),
        "routes.0.identify",
        "at least 1 item",
        id="no-strategy",
    ),
    pytest.param(_with(routes=[]), "routes", "at least 1 item", id="no-routes"),
    pytest.param(
        _with(routes=[_route(path="login/callback")]),
        "routes.0.path",
        "String should match pattern '^/'",
        id="route-path-not-absolute",
    ),
    pytest.param(
        _with(routes=[_route(), _route(path="/other"), _route()]),
        "routes",
        "route path '/login/callback' is listed more than once",
        id="duplicate-route-path",
    ),
    pytest.param(
        _with(
            routes=[
                _route(path="/sso/{connection}/{connection}", protocol="oidc", identify=["path"])
            ]
        ),
        "routes.0",
        "'{connection}' appears more than once in the path",
        id="parameter-named-twice-in-path",
    ),
    pytest.param(
        _with(limits={"max_body_bytes": 1023}),
        "limits.max_body_bytes",
        "greater than or equal to 1024",
        id="body-limit-too-small",
    ),
    pytest.param(
        _with(limits={"max_body_bytes": 16 * 1024 * 1024 + 1}),
        "limits.max_body_bytes",
        "less than or equal to 16777216",
        id="body-limit-too-large",
    ),
    pytest.param(
        _with(limits={"max_fields": 0}),
        "limits.max_fields",
        "greater than or equal to 1",
        id="max-fields-zero",
    ),
    pytest.param(
        _with(limits={"max_fields": 10_001}),
        "limits.max_fields",
        "less than or equal to 10000",
        id="max-fields-too-large",
    ),
    pytest.param(
        _with(timeouts={"body_seconds": 0}),
        "timeouts.body_seconds",
        "greater than 0",
        id="body-timeout-zero",
    ),
    pytest.param(
        _with(listen={"port": 65536}),
        "listen.port",
        "less than or equal to 65535",
        id="port-out-of-range",
    ),
    pytest.param(
        _with(flags={"file": "flags.yaml", "poll_interval_seconds": 0}),
        "flags.poll_interval_seconds",
        "greater than 0",
        id="poll-interval-zero",
    ),
    pytest.param(
        _with(ops_prefix="/_authswitch/ops"),
        "ops_prefix",
        "String should match pattern",
        id="ops-prefix-with-slash",
    ),
    pytest.param(
        _with(forwarding={"form_post_redirect_sources": ["https://app.example; script-src *"]}),
        "forwarding.form_post_redirect_sources.0",
        "String should match pattern",
        id="csp-source-injection",
    ),
    pytest.param(
        _with(forwarding={"form_post_redirect_sources": ["'unsafe-inline'"]}),
        "forwarding.form_post_redirect_sources.0",
        "String should match pattern",
        id="csp-keyword-source",
    ),
    pytest.param(
        _with(forwarding={"form_post_redirect_sources": ["https://app.example/after/login"]}),
        "forwarding.form_post_redirect_sources.0",
        "String should match pattern",
        id="csp-source-with-path",
    ),
    pytest.param(
        _with(logging={"level": "trace"}),
        "logging.level",
        "Input should be 'debug', 'info', 'warning' or 'error'",
        id="unknown-log-level",
    ),
]


@pytest.mark.parametrize(("document", "key", "problem"), BAD_VALUES)
def test_bad_value_names_file_key_and_problem(
    tmp_path: Path, document: dict[str, Any], key: str, problem: str
) -> None:
    path, message = _error_for(tmp_path, document)

    assert message.startswith(f"config '{path}': ")
    assert f"key '{key}': " in message
    assert problem in message


def test_every_problem_is_reported_in_one_message(tmp_path: Path) -> None:
    document = _with(legacy={"url": "http://legacy.internal/?a=b"}, limits={"max_fields": 0})
    _, message = _error_for(tmp_path, document)
    assert "key 'legacy.url'" in message
    assert "key 'limits.max_fields'" in message


def test_error_message_does_not_echo_the_value(tmp_path: Path) -> None:
    document = _with(legacy={"url": "http://ops:hunter2@legacy.internal/?token=abc"})
    _, message = _error_for(tmp_path, document)
    assert "key 'legacy.url'" in message
    assert "hunter2" not in message and "token=abc" not in message


@pytest.mark.parametrize(
    ("content", "line"),
    [
        ("legacy:\n  url: http://ops:hunter2@legacy.internal\n bad: indent\n", 3),
        ("legacy:\n  url: http://legacy.internal\nlisten:\n\tport: 80\n", 4),
    ],
    ids=["bad-indentation", "tab-indentation"],
)
def test_invalid_yaml_names_the_file_and_line_without_quoting_it(
    tmp_path: Path, content: str, line: int
) -> None:
    path = tmp_path / "authswitch.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"config '{path}': invalid YAML at line {line}, column ")
    assert "hunter2" not in message and "indent" not in message and "port" not in message


def test_a_key_given_twice_is_an_error_not_last_one_wins(tmp_path: Path) -> None:
    path = tmp_path / "authswitch.yaml"
    path.write_text("legacy:\n  url: http://a.internal\n  url: http://b.internal\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"config '{path}': invalid YAML at line 3")
    assert "duplicate key 'url'" in str(caught.value)


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "authswitch.yaml"
    path.write_text("")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"config '{path}': the file is empty"


@pytest.mark.parametrize("content", ["- legacy\n- routes\n", "just a string\n", "42\n"], ids=repr)
def test_top_level_must_be_a_mapping(tmp_path: Path, content: str) -> None:
    path = tmp_path / "authswitch.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"config '{path}': top level must be a mapping"


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"config '{path}': cannot read file: No such file or directory"


def test_parse_config_refuses_a_non_mapping_and_names_the_source() -> None:
    with pytest.raises(ConfigError, match=r"^config 'inline\.yaml': top level must be a mapping$"):
        parse_config(["routes"], source=Path("inline.yaml"))
