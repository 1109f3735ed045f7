"""`flags.backend: openfeature`: any OpenFeature provider named in the config decides the route.

The provider under test is flagd's own, in its file mode (in process, no daemon): signed SAML
callbacks over real HTTP land where the flagd flag definition says, and follow it when the file
changes under the running proxy.
"""

from __future__ import annotations

import importlib
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from openfeature import api
from openfeature.provider.in_memory_provider import InMemoryProvider
from openfeature.provider.no_op_provider import NoOpProvider
from typer.testing import CliRunner

from connection_map import Connection
from connection_map.routes import Identification, Outcome
from proxy.app import AuthSwitch
from proxy.callback.decide import RouteDecider
from proxy.cli.exit_codes import ExitCode
from proxy.cli.main import app as cli_app
from proxy.config import ConfigError, OpenFeatureFlag, Strategy, load_config
from proxy.demo.idp import DemoIdP
from proxy.demo.loopback_server import LoopbackServer
from tests.conftest import (
    LEGACY_SP_ENTITY_ID,
    PUBLIC_ACS,
    ProxyEnv,
    write_proxy_files,
)
from tests.proxy.openfeature_helpers import connection_list_provider

FORM = {"content-type": "application/x-www-form-urlencoded"}
FLAGD = "openfeature.contrib.provider.flagd:FlagdProvider"
HELPERS = "tests.proxy.openfeature_helpers"


# -- helpers -----------------------------------------------------------------------------------


@pytest.fixture
def flagd() -> None:
    # The test extra installs it; a missing package must fail here, not skip.
    importlib.import_module("openfeature.contrib.provider.flagd")


def _write_flagd(path: Path, flags: dict[str, Any]) -> None:
    """Replace the flagd file atomically, with a later mtime: flagd reloads on a newer mtime."""
    previous = path.stat().st_mtime if path.exists() else None
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(
        json.dumps({"$schema": "https://flagd.dev/schema/v0/flags.json", "flags": flags})
    )
    if previous is not None:
        os.utime(temp, (previous + 1, previous + 1))
    os.replace(temp, path)


def _route_flag(new: list[str], **variants: str) -> dict[str, Any]:
    """flagd: the string flag `authswitch.route`, "new" for the listed connection ids."""
    return {
        "state": "ENABLED",
        "variants": {"new": "new", "legacy": "legacy", **variants},
        "defaultVariant": "legacy",
        "targeting": {"if": [{"in": [{"var": "targetingKey"}, new]}, "new", "legacy"]},
    }


def _switch(on: bool) -> dict[str, Any]:
    """flagd: a boolean flag of one connection."""
    return {
        "state": "ENABLED",
        "variants": {"on": True, "off": False},
        "defaultVariant": "on" if on else "off",
    }


def _flagd_options(path: Path) -> dict[str, Any]:
    # deadline_ms is also how often flagd's file mode looks at the file.
    return {"resolver_type": "file", "offline_flag_source_path": str(path), "deadline_ms": 100}


@contextmanager
def _proxy(
    tmp_path: Path, providers: dict[str, LoopbackServer], openfeature: dict[str, Any]
) -> Iterator[ProxyEnv]:
    legacy, new = providers["legacy"], providers["new"]
    flags = {"backend": "openfeature", "openfeature": openfeature}
    config = load_config(write_proxy_files(tmp_path, legacy.url, new.url, flags=flags))
    app = AuthSwitch(config)
    with LoopbackServer(app, name="authswitch") as server:
        env = ProxyEnv(tmp_path, server, app, legacy, new)
        yield env
        env.stop_ops()


def _access(logs: pytest.LogCaptureFixture, connection: str) -> list[dict[str, Any]]:
    return [
        record.fields  # type: ignore[attr-defined]
        for record in logs.records
        if record.name == "authswitch.access"
        and getattr(record, "fields", {}).get("connection") == connection
    ]


def _landed(env: ProxyEnv, response: httpx.Response) -> str:
    """Where the browser ends up: 307 / auto-posting form / proxied or forwarded answer."""
    if response.status_code == 307:
        return "new" if response.headers["location"].startswith(env.new.url) else "elsewhere"
    if response.headers["content-type"].startswith("text/html"):
        return "new" if f'action="{env.new.url}/' in response.text else "elsewhere"
    verdict = response.json()
    assert verdict["valid"], verdict
    return str(verdict["landed"])


def _callback(
    env: ProxyEnv, logs: pytest.LogCaptureFixture, idp: DemoIdP, connection: str
) -> tuple[str, str]:
    """Post a signed callback; (where it landed, the decision's reason)."""
    body = idp.mint_form_body(
        destination=PUBLIC_ACS, audience=LEGACY_SP_ENTITY_ID, name_id="alice@example.com"
    )
    before = len(_access(logs, connection))
    response = httpx.post(env.url + "/login/callback", content=body, headers=FORM, timeout=10)
    landed = _landed(env, response)
    deadline = time.monotonic() + 5
    while len(records := _access(logs, connection)) == before:
        assert time.monotonic() < deadline, "no access log record for the callback"
        time.sleep(0.01)
    fields = records[-1]
    assert fields["destination"] == landed, (fields, landed)
    return landed, str(fields["reason"])


def _eventually(check: Callable[[], bool], deadline: float = 5.0) -> None:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < deadline, f"not true within {deadline} s"
        time.sleep(0.05)


# -- flagd, file mode --------------------------------------------------------------------------


def test_one_flagd_string_flag_targeted_by_connection_id_routes_and_follows_the_file(
    flagd: None,
    tmp_path: Path,
    providers: dict[str, LoopbackServer],
    idps: dict[str, DemoIdP],
    captured_logs: pytest.LogCaptureFixture,
) -> None:
    flag_file = tmp_path / "flagd.json"
    _write_flagd(flag_file, {"authswitch.route": _route_flag(["acme", "initech", "umbrella"])})
    settings = {"provider": FLAGD, "options": _flagd_options(flag_file)}  # flag: the default

    with _proxy(tmp_path, providers, settings) as env:
        assert type(env.app.flag_provider).__name__ == "FlagdProvider"
        ready = httpx.get(env.ops_url + "/readyz", timeout=5)
        assert ready.status_code == 200
        assert ready.json()["checks"]["flags"] == {"provider_status": "READY"}

        def route(connection: str) -> tuple[str, str]:
            return _callback(env, captured_logs, idps[connection], connection)

        assert route("acme") == ("new", "new")  # redirect mode: the 307
        assert route("initech") == ("new", "new")  # proxy mode: the new provider's answer
        assert route("globex") == ("legacy", "legacy")
        # The connection map still wins over the flag.
        assert route("umbrella") == ("legacy", "assessment_needs_idp_change")

        _write_flagd(flag_file, {"authswitch.route": _route_flag(["globex"])})
        _eventually(lambda: route("globex") == ("new", "new"))  # form-post mode
        assert route("acme") == ("legacy", "legacy")
        assert route("initech") == ("legacy", "legacy")


def test_a_flagd_boolean_flag_per_connection(
    flagd: None,
    tmp_path: Path,
    providers: dict[str, LoopbackServer],
    idps: dict[str, DemoIdP],
    captured_logs: pytest.LogCaptureFixture,
) -> None:
    flag_file = tmp_path / "flagd.json"
    _write_flagd(
        flag_file, {"sso.acme.migrated": _switch(True), "sso.globex.migrated": _switch(False)}
    )
    settings = {
        "provider": FLAGD,
        "options": _flagd_options(flag_file),
        "flag": {"key_template": "sso.{connection}.migrated", "type": "boolean"},
    }

    with _proxy(tmp_path, providers, settings) as env:

        def route(connection: str) -> tuple[str, str]:
            return _callback(env, captured_logs, idps[connection], connection)

        assert route("acme") == ("new", "on")
        assert route("globex") == ("legacy", "off")
        assert route("initech") == ("legacy", "flag_error_flag_not_found")  # no flag of its own

        _write_flagd(
            flag_file,
            {
                "sso.acme.migrated": _switch(False),
                "sso.globex.migrated": _switch(False),
                "sso.initech.migrated": _switch(True),
            },
        )
        _eventually(lambda: route("initech") == ("new", "on"))
        assert route("acme") == ("legacy", "off")


def test_flagd_values_that_are_not_a_route_go_to_legacy_without_being_echoed(
    flagd: None,
    tmp_path: Path,
    providers: dict[str, LoopbackServer],
    idps: dict[str, DemoIdP],
    captured_logs: pytest.LogCaptureFixture,
) -> None:
    flag_file = tmp_path / "flagd.json"
    odd = _route_flag([], odd="SEEKRIT-maybe", **{"go new, please!": "new"})
    odd["targeting"] = {
        "if": [
            {"==": [{"var": "targetingKey"}, "acme"]},
            "odd",
            {"==": [{"var": "targetingKey"}, "initech"]},
            "go new, please!",
            "legacy",
        ]
    }
    _write_flagd(flag_file, {"authswitch.route": odd})
    settings = {"provider": FLAGD, "options": _flagd_options(flag_file)}

    with _proxy(tmp_path, providers, settings) as env:
        assert _callback(env, captured_logs, idps["acme"], "acme") == ("legacy", "flag_bad_value")
        # A variant that does not look like a code is not made a reason (nor a metrics label).
        assert _callback(env, captured_logs, idps["initech"], "initech") == ("new", "flag")
    assert not [r for r in captured_logs.records if "SEEKRIT" in r.getMessage() + str(r.__dict__)]

    # The same string flag asked for as a boolean: the SDK's type check, legacy.
    settings["flag"] = {"key": "authswitch.route", "type": "boolean"}
    with _proxy(tmp_path, providers, settings) as env:
        assert _callback(env, captured_logs, idps["acme"], "acme") == (
            "legacy",
            "flag_error_type_mismatch",
        )


def test_a_missing_flagd_file_fails_the_start_up(
    flagd: None, tmp_path: Path, providers: dict[str, LoopbackServer]
) -> None:
    settings = {"provider": FLAGD, "options": _flagd_options(tmp_path / "absent.json")}
    flags = {"backend": "openfeature", "openfeature": settings}
    config = load_config(
        write_proxy_files(tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9", flags=flags)
    )
    app = AuthSwitch(config)
    server = LoopbackServer(app, name="authswitch")
    try:
        with pytest.raises(RuntimeError, match="failed to start"):  # the lifespan start-up failed
            server.start()
    finally:
        server.stop()
        app.flag_provider.shutdown()  # its file watcher outlives the failed start-up


# -- any provider, through the config's import path --------------------------------------------


@pytest.mark.parametrize(
    ("flag", "options", "expected"),
    [
        ({}, {"new": ["acme"]}, {"acme": ("new", "on"), "globex": ("legacy", "off")}),
        (
            {"type": "boolean"},
            {"new": ["acme"], "boolean": True, "variants": False},
            {"acme": ("new", "flag_on"), "globex": ("legacy", "flag_off")},
        ),
        (
            {"key": "sso.route"},
            {"new": ["globex"], "key": "sso.route", "variants": False},
            {"acme": ("legacy", "flag"), "globex": ("new", "flag")},
        ),
    ],
)
def test_any_provider_factory_with_options_from_the_config(
    tmp_path: Path,
    providers: dict[str, LoopbackServer],
    idps: dict[str, DemoIdP],
    captured_logs: pytest.LogCaptureFixture,
    flag: dict[str, Any],
    options: dict[str, Any],
    expected: dict[str, tuple[str, str]],
) -> None:
    settings: dict[str, Any] = {
        "provider": f"{HELPERS}:connection_list_provider",
        "options": options,
    }
    if flag:
        settings["flag"] = {"key": "authswitch.route", **flag}
    with _proxy(tmp_path, providers, settings) as env:
        assert isinstance(env.app.flag_provider, InMemoryProvider)
        for connection, route in expected.items():
            assert _callback(env, captured_logs, idps[connection], connection) == route


def test_the_decider_caches_a_context_and_a_key_per_connection() -> None:
    domain = "openfeature-backend-test"
    provider = connection_list_provider(["acme"], key="sso.acme.migrated", boolean=True)
    api.set_provider_and_wait(provider, domain)
    flag = OpenFeatureFlag(key_template="sso.{connection}.migrated", type="boolean")
    decider = RouteDecider(api.get_client(domain), flag)
    connection = Connection.model_validate(
        {
            "id": "acme",
            "protocol": "saml",
            "assessment": "transparent",
            "new_provider": {"url": "https://new.example/acs", "mode": "redirect"},
            "saml": {"idp_entity_id": "https://idp.acme.example/metadata"},
        }
    )
    identified = Identification(Outcome.IDENTIFIED, connection, Strategy.SAML_ISSUER)
    try:
        for _ in range(3):
            decision = decider.decide(identified, "saml", bounced_back=False, unsolicited=False)
            assert (decision.destination, decision.reason) == ("new", "on")
        assert decider._keys == {"acme": "sso.acme.migrated"}
        assert list(decider._contexts) == ["acme"]
    finally:
        api.set_provider_and_wait(NoOpProvider(), domain)


# -- configuration errors ----------------------------------------------------------------------


def _config(tmp_path: Path, flags: dict[str, Any]) -> Path:
    return write_proxy_files(tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9", flags=flags)


def _openfeature(**settings: Any) -> dict[str, Any]:
    return {"backend": "openfeature", "openfeature": {"provider": FLAGD, **settings}}


@pytest.mark.parametrize(
    ("flags", "key", "problem"),
    [
        ({"backend": "openfeature"}, "flags", "'openfeature' is required when backend is"),
        (
            {"file": "flags.yaml", "openfeature": {"provider": FLAGD}},
            "flags",
            "'openfeature' is set but backend is 'file'",
        ),
        ({"backend": "etcd"}, "flags.backend", "or 'openfeature'"),
        (_openfeature(provider="flagd"), "flags.openfeature.provider", "'package.module:"),
        (
            _openfeature(provider="no_such_provider_pkg.sub:Provider"),
            "flags.openfeature.provider",
            "cannot import module 'no_such_provider_pkg.sub': ModuleNotFoundError",
        ),
        (
            _openfeature(provider="openfeature.provider.in_memory_provider:NoSuchProvider"),
            "flags.openfeature.provider",
            "has no attribute 'NoSuchProvider'",
        ),
        (
            _openfeature(provider="flags:FLAG_KEY"),
            "flags.openfeature.provider",
            "'flags:FLAG_KEY' is not callable",
        ),
        (
            _openfeature(provider=f"{HELPERS}:connection_list_provider", options={"old": []}),
            "flags.openfeature",
            "'options' do not fit the provider's parameters: missing a required argument: 'new'",
        ),
        (
            _openfeature(provider=f"{HELPERS}:connection_list_provider", options={"no-kw": 1}),
            "flags.openfeature.options",
            "'no-kw' is not a keyword argument name",
        ),
        (
            _openfeature(flag={"key_template": "sso.migrated", "type": "boolean"}),
            "flags.openfeature.flag",
            "'key_template' must contain '{connection}'",
        ),
        (
            _openfeature(flag={"key_template": "sso.{connection}.{env}"}),
            "flags.openfeature.flag",
            "no braces besides '{connection}'",
        ),
        (
            _openfeature(flag={"key": "a", "key_template": "{connection}"}),
            "flags.openfeature.flag",
            "give one of 'key' and 'key_template', not both",
        ),
        (
            _openfeature(flag={"key": "authswitch route"}),
            "flags.openfeature.flag.key",
            "String should match pattern",
        ),
        (
            _openfeature(flag={"key": "authswitch.route", "type": "integer"}),
            "flags.openfeature.flag.type",
            "'string' or 'boolean'",
        ),
    ],
)
def test_a_bad_openfeature_section_names_the_key(
    tmp_path: Path, flags: dict[str, Any], key: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(_config(tmp_path, flags))

    message = str(raised.value)
    assert f"key '{key}'" in message and problem in message, message


def test_flagd_options_are_checked_against_its_parameters(flagd: None, tmp_path: Path) -> None:
    for options, problem in [
        ({"resolver_type": "daemonless"}, "'options.resolver_type': 'daemonless' is not one of"),
        ({"resolver": "file"}, "unexpected keyword argument 'resolver'"),
    ]:
        with pytest.raises(ConfigError) as raised:
            load_config(_config(tmp_path, _openfeature(options=options)))
        assert "key 'flags.openfeature'" in str(raised.value) and problem in str(raised.value)
    # A string names an enum member by value or by name; YAML has no enums.
    config = load_config(
        _config(tmp_path, _openfeature(options=_flagd_options(tmp_path / "f.json")))
    )
    assert config.flags.openfeature is not None
    assert config.flags.openfeature.flag == OpenFeatureFlag(key="authswitch.route", type="string")
    # Without a key, the flag is the one the built-in backends serve.
    flag = {"type": "boolean"}
    config = load_config(
        _config(tmp_path, _openfeature(options=_flagd_options(tmp_path), flag=flag))
    )
    assert config.flags.openfeature is not None
    assert config.flags.openfeature.flag == OpenFeatureFlag(key="authswitch.route", type="boolean")


@pytest.mark.parametrize(
    ("factory", "problem"),
    [
        ("refusing_provider", "could not be created: ValueError: unknown environment 'nowhere'"),
        ("not_a_provider", "returned object, not an OpenFeature provider"),
    ],
)
def test_a_provider_that_cannot_be_built_is_a_config_error(
    tmp_path: Path, factory: str, problem: str
) -> None:
    flags = {"backend": "openfeature", "openfeature": {"provider": f"{HELPERS}:{factory}"}}
    config = load_config(_config(tmp_path, flags))

    with pytest.raises(ConfigError) as raised:
        AuthSwitch(config)

    assert f"flags.openfeature.provider '{HELPERS}:{factory}'" in str(raised.value)
    assert problem in str(raised.value)


def test_serve_refuses_an_unimportable_provider_before_starting(tmp_path: Path) -> None:
    path = _config(tmp_path, _openfeature(provider="no_such_provider_pkg:Provider"))

    result = CliRunner().invoke(cli_app, ["serve", "--config", str(path)])

    assert result.exit_code == 2
    assert "flags.openfeature.provider" in result.output
    assert "cannot import module 'no_such_provider_pkg'" in result.output


def test_the_flags_cli_says_it_does_not_manage_another_flag_system(tmp_path: Path) -> None:
    flags = {
        "backend": "openfeature",
        "openfeature": {
            "provider": f"{HELPERS}:connection_list_provider",
            "options": {"new": ["acme"]},
        },
    }
    path = _config(tmp_path, flags)

    result = CliRunner().invoke(cli_app, ["flags", "status", "--config", str(path)])

    assert result.exit_code == ExitCode.USAGE
    assert "manage only the 'file' and 'redis' backends" in result.output
