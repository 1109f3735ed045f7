"""One Redis settings model and client factory, against real redis-servers (plain and TLS)."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from foundation.config_error import ConfigError
from foundation.redis_settings import RedisSettings
from tests.conftest import free_port
from tests.flags.redis_support import PrivateRedis, private_redis  # noqa: F401


def _ping_async(settings: RedisSettings) -> bool:
    async def ping() -> bool:
        client = settings.async_client("authswitch-test")
        try:
            return bool(await client.ping())
        finally:
            await client.aclose()

    return asyncio.run(ping())


def test_the_password_file_wins_over_a_password_in_the_url(
    tmp_path: Path,
    private_redis: PrivateRedis,  # noqa: F811
) -> None:
    private_redis.client().config_set("requirepass", "from-the-secret-file")
    secret = tmp_path / "redis-password"
    secret.write_text("from-the-secret-file\n")
    url = f"redis://:stale-url-password@127.0.0.1:{private_redis.port}/0"
    settings = RedisSettings(url=url, password_file=secret, client_name=True)

    client = settings.client("authswitch-test")
    assert client.ping()
    assert client.client_getname() == "authswitch-test"
    assert _ping_async(settings)
    with pytest.raises(redis.AuthenticationError):
        RedisSettings(url=url).client("authswitch-test").ping()


def test_an_unreadable_password_file_names_the_key_not_the_content(tmp_path: Path) -> None:
    class Section(RedisSettings):
        config_key = "flags.redis"

    settings = Section(password_file=tmp_path / "missing")
    with pytest.raises(ConfigError, match=r"^flags\.redis\.password_file '.*missing': cannot read"):
        settings.password()


def test_relative_files_resolve_against_the_config_directory(tmp_path: Path) -> None:
    settings = RedisSettings(
        url="rediss://redis:6380/0", password_file=Path("pw"), ca_file=Path("ca.pem")
    ).resolve_paths(tmp_path)
    assert (settings.password_file, settings.ca_file) == (tmp_path / "pw", tmp_path / "ca.pem")


def test_a_ca_file_without_tls_is_refused() -> None:
    with pytest.raises(ValidationError, match="'ca_file' is set but the url is not rediss://"):
        RedisSettings(url="redis://redis:6379/0", ca_file=Path("ca.pem"))


def test_a_cli_gets_a_more_patient_timeout_than_a_replica(
    private_redis: PrivateRedis,  # noqa: F811
) -> None:
    settings = RedisSettings(url=private_redis.url, socket_timeout_seconds=0.2)
    replica, cli = settings.client("r"), settings.client("c", min_socket_timeout=2.0)
    assert replica.connection_pool.connection_kwargs["socket_timeout"] == 0.2
    assert cli.connection_pool.connection_kwargs["socket_timeout"] == 2.0
    private_redis.freeze()
    try:
        with pytest.raises(redis.TimeoutError):
            replica.ping()  # gives up once, no retry: the caller's backoff decides
    finally:
        private_redis.thaw()


# -- TLS -----------------------------------------------------------------------------------------


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey | None,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    else:
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        builder = builder.add_extension(san, False)
    return builder.sign(issuer_key or key, hashes.SHA256())


def _pem(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A redis-server that speaks TLS only, with a certificate from a CA of the test's own."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is required for the TLS test (apt: redis-server)")
    ca_key, server_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca = _certificate("authswitch test CA", ca_key, None, None)
    server = _certificate("redis", server_key, ca, ca_key)
    ca_file = _pem(tmp_path / "ca.pem", ca.public_bytes(serialization.Encoding.PEM))
    cert_file = _pem(tmp_path / "server.pem", server.public_bytes(serialization.Encoding.PEM))
    key_file = _pem(
        tmp_path / "server.key",
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    port = free_port()
    command = [
        binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
        "--tls-cert-file", str(cert_file), "--tls-key-file", str(key_file),
        "--tls-ca-cert-file", str(ca_file), "--tls-auth-clients", "no",
        "--save", "", "--appendonly", "no", "--dir", str(tmp_path),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        probe = RedisSettings(url=f"rediss://127.0.0.1:{port}/0", ca_file=ca_file)
        deadline = time.monotonic() + 10
        while True:
            try:
                probe.client("probe").ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError("TLS redis-server did not start") from None
                time.sleep(0.05)
        yield port, ca_file
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_tls_server_is_verified_with_the_configured_ca_file(
    tls_redis: tuple[int, Path],
) -> None:
    port, ca_file = tls_redis
    url = f"rediss://127.0.0.1:{port}/0"
    settings = RedisSettings(url=url, ca_file=ca_file)
    assert settings.client("authswitch-test").ping()
    assert _ping_async(settings)
    # Without it, the system's CAs don't know the server: the connection is refused, not trusted.
    with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        RedisSettings(url=url).client("authswitch-test").ping()
