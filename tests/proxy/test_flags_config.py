"""The `flags` section of the config: file (default) or Redis backend, validated at the edge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from flags import FileFlagProvider, RedisFlagProvider
from proxy.app import AuthSwitch
from proxy.config import ConfigError, load_config
from tests.conftest import write_proxy_files


def _config(tmp_path: Path, flags: dict[str, Any]) -> Path:
    return write_proxy_files(tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9", flags=flags)


def test_the_file_only_form_stays_valid_and_means_the_file_backend(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, {"file": "flags.yaml", "audit_file": "a/trail.jsonl"}))

    assert config.flags.backend == "file"
    assert config.flags.file == tmp_path / "flags.yaml"
    assert config.flags.audit_file == tmp_path / "a" / "trail.jsonl"
    assert isinstance(AuthSwitch(config).flag_provider, FileFlagProvider)


def test_redis_backend_with_defaults_and_overrides(tmp_path: Path) -> None:
    config = load_config(
        _config(tmp_path, {"backend": "redis", "redis": {"key_prefix": "authswitch:{prod}"}})
    )

    redis = config.flags.redis
    assert (redis.url, redis.key_prefix) == ("redis://127.0.0.1:6379/0", "authswitch:{prod}")
    assert (redis.resync_seconds, redis.socket_timeout_seconds) == (5.0, 0.5)
    assert redis.stale_error_after_seconds == 60.0
    assert config.flags.file is None
    provider = AuthSwitch(config).flag_provider
    assert isinstance(provider, RedisFlagProvider)
    assert provider.keys.doc == "authswitch:{prod}:flags:doc"


@pytest.mark.parametrize(
    ("flags", "key", "problem"),
    [
        ({"backend": "file"}, "flags", "'file' is required when backend is 'file'"),
        ({"backend": "etcd", "file": "f.yaml"}, "flags.backend", "'file' or 'redis'"),
        ({"backend": "redis", "redis": {"key_prefix": "a b"}}, "flags.redis.key_prefix", "pattern"),
        ({"backend": "redis", "redis": {"resync_seconds": 0}}, "flags.redis.resync_seconds", "> 0"),
        ({"backend": "redis", "redis": {"bogus": 1}}, "flags.redis.bogus", "Extra inputs"),
    ],
)
def test_a_bad_flags_section_names_the_key(
    tmp_path: Path, flags: dict[str, Any], key: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(_config(tmp_path, flags))

    message = str(raised.value)
    assert f"key '{key}'" in message
    assert problem.replace("> 0", "greater than 0") in message


def test_a_bad_redis_url_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = _config(tmp_path, {"backend": "redis", "redis": {"url": "http://:SEEKRIT@x/0"}})

    with pytest.raises(ConfigError) as raised:
        load_config(path)

    assert "flags.redis.url" in str(raised.value)
    assert "SEEKRIT" not in str(raised.value)


def test_readyz_reports_the_file_backend_and_its_version(tmp_path: Path) -> None:
    path = _config(tmp_path, {"file": "flags.yaml"})
    (tmp_path / "flags.yaml").write_text(yaml.safe_dump({"version": 4}))
    app = AuthSwitch(load_config(path))
    app.flag_provider.initialize(None)  # type: ignore[arg-type]
    try:
        _, report = app.readiness()
    finally:
        app.flag_provider.shutdown()

    flags = report["checks"]["flags"]  # type: ignore[index]
    assert (flags["backend"], flags["version"], flags["has_state"]) == ("file", 4, True)
    assert (flags["stale"], flags["last_error"]) == (False, None)


def test_redis_password_comes_from_the_password_file(tmp_path: Path) -> None:
    from proxy.config import ConfigError, parse_config

    secret = tmp_path / "redis-password"
    secret.write_text("s3cret-from-file\n")
    raw = {
        "legacy": {"url": "http://legacy.internal"},
        "connection_map": "connections.yaml",
        "flags": {"backend": "redis", "redis": {"password_file": "redis-password"}},
        "routes": [{"path": "/acs", "protocol": "saml", "identify": ["saml_issuer"]}],
    }
    config = parse_config(raw, source=tmp_path / "authswitch.yaml")
    assert config.flags.redis.password() == "s3cret-from-file"
    secret.unlink()
    with pytest.raises(ConfigError, match="password_file") as caught:
        config.flags.redis.password()
    assert "s3cret" not in str(caught.value)


def test_a_redis_ca_file_is_resolved_and_needs_tls(tmp_path: Path) -> None:
    tls = {"backend": "redis", "redis": {"url": "rediss://redis:6380/0", "ca_file": "ca.pem"}}
    config = load_config(_config(tmp_path, tls))
    assert config.flags.redis.ca_file == tmp_path / "ca.pem"

    plain = {"backend": "redis", "redis": {"url": "redis://redis:6379/0", "ca_file": "ca.pem"}}
    with pytest.raises(ConfigError, match=r"key 'flags\.redis': .*'ca_file' is set but the url"):
        load_config(_config(tmp_path, plain))
