"""`authswitch broker test`: one check against the configured legacy and new provider, a clear
line per step, the password never echoed, exit codes by outcome."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from proxy.cli.exit_codes import ExitCode
from proxy.cli.main import app
from proxy.demo.loopback_server import LoopbackServer
from tests.conftest import free_port, write_proxy_files
from tests.proxy.broker.broker_support import (
    ALICE,
    HOOK_SECRET,
    UNKNOWN,
    WRONG,
    LegacyLogin,
    ScimServer,
    serve,
)

TEMPLATE = {"login": "{identifier}", "secret": "{password}"}


@pytest.fixture
def legacy() -> Iterator[LoopbackServer]:
    server = serve(LegacyLogin(users={ALICE[0]: ALICE[1]}), "legacy-login")
    yield server
    server.stop()


@pytest.fixture
def scim() -> Iterator[ScimServer]:
    server = ScimServer()
    yield server
    server.server.stop()


def _config(directory: Path, verifier_url: str, provisioner: dict[str, Any] | None) -> Path:
    (directory / "hook-secret").write_bytes(HOOK_SECRET)
    broker: dict[str, Any] = {
        "enabled": True,
        "secret_file": "hook-secret",
        "verifier": {"type": "http_login", "url": verifier_url, "template": TEMPLATE},
    }
    if provisioner is not None:
        broker["provisioner"] = provisioner
    return write_proxy_files(directory, "http://127.0.0.1:9", "http://127.0.0.1:9", broker=broker)


def _run(config: Path, identifier: str, *extra: str, prompt: str | None = None) -> Result:
    args = ["broker", "test", "--config", str(config), "--identifier", identifier, *extra]
    return CliRunner().invoke(app, args, input=prompt)


def _password_file(directory: Path, password: str) -> str:
    path = directory / "password"
    path.write_text(password + "\n")
    return str(path)


def test_verify_and_provision_then_already_present(
    tmp_path: Path, legacy: LoopbackServer, scim: ScimServer
) -> None:
    config = _config(tmp_path, f"{legacy.url}/login", {"url": scim.base_url})
    password = _password_file(tmp_path, ALICE[1])

    first = _run(config, ALICE[0], "--password-file", password, "--provision")
    second = _run(config, ALICE[0], "--password-file", password, "--provision")

    assert first.exit_code == ExitCode.OK, first.output
    assert first.output.splitlines() == [
        f"verify: verified (email: {ALICE[0]}, email_verified: true)",
        "provision: provisioned",
    ]
    assert second.output.splitlines()[-1] == "provision: already present"
    assert second.exit_code == ExitCode.OK
    assert [u["userName"] for u in scim.users()] == [ALICE[0]]
    assert scim.stored_password(ALICE[0]) == ALICE[1]


def test_the_prompt_hides_the_password_and_without_provision_nothing_is_created(
    tmp_path: Path, legacy: LoopbackServer, scim: ScimServer
) -> None:
    config = _config(tmp_path, f"{legacy.url}/login", {"url": scim.base_url})

    result = _run(config, ALICE[0], prompt=ALICE[1] + "\n")

    assert result.exit_code == ExitCode.OK, result.output
    assert "password:" in result.output
    assert ALICE[1] not in result.output
    assert result.output.splitlines()[-1].startswith("verify: verified")
    assert scim.users() == []


@pytest.mark.parametrize("identifier", [ALICE[0], UNKNOWN])
def test_wrong_password_or_unknown_user_is_denied_and_nothing_provisioned(
    tmp_path: Path, legacy: LoopbackServer, scim: ScimServer, identifier: str
) -> None:
    config = _config(tmp_path, f"{legacy.url}/login", {"url": scim.base_url})

    result = _run(
        config, identifier, "--password-file", _password_file(tmp_path, WRONG), "--provision"
    )

    assert result.exit_code == ExitCode.FAILED
    assert result.output.splitlines() == ["verify: denied (wrong password or unknown user)"]
    assert scim.users() == []


def test_legacy_down_is_reported_with_the_reason_type(tmp_path: Path) -> None:
    config = _config(tmp_path, f"http://127.0.0.1:{free_port()}/login", None)

    result = _run(config, ALICE[0], "--password-file", _password_file(tmp_path, ALICE[1]))

    assert result.exit_code == ExitCode.LEGACY_UNAVAILABLE
    assert result.output.splitlines() == [
        "verify: legacy unavailable (LegacyUnavailable: legacy login endpoint unreachable or "
        "too slow)"
    ]
    assert ALICE[1] not in result.output


def test_a_provider_that_does_not_answer_fails_the_provision_step(
    tmp_path: Path, legacy: LoopbackServer
) -> None:
    scim_url = f"http://127.0.0.1:{free_port()}/v2"
    config = _config(tmp_path, f"{legacy.url}/login", {"url": scim_url})

    result = _run(
        config, ALICE[0], "--password-file", _password_file(tmp_path, ALICE[1]), "--provision"
    )

    assert result.exit_code == ExitCode.PROVISIONING_FAILED
    lines = result.output.splitlines()
    assert lines[0].startswith("verify: verified")
    assert lines[1].startswith("provision: failed (ProvisioningFailed: SCIM request failed")
    assert ALICE[1] not in result.output


def test_provision_without_a_provisioner_is_a_usage_error(
    tmp_path: Path, legacy: LoopbackServer
) -> None:
    config = _config(tmp_path, f"{legacy.url}/login", None)

    result = _run(
        config, ALICE[0], "--password-file", _password_file(tmp_path, ALICE[1]), "--provision"
    )

    assert result.exit_code == ExitCode.USAGE
    assert "key 'broker.provisioner' is not set" in result.stderr


def test_a_config_without_a_verifier_is_a_usage_error(tmp_path: Path) -> None:
    config = write_proxy_files(tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9")
    document = yaml.safe_load(config.read_text())
    assert "broker" not in document

    result = _run(config, ALICE[0], "--password-file", _password_file(tmp_path, ALICE[1]))

    assert result.exit_code == ExitCode.USAGE
    assert "key 'broker.verifier' is not set" in result.stderr
