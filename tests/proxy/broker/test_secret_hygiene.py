"""Credentials never reach a log line, an audit record, a metric or an error message."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from proxy.broker.credential import Credential, Password
from proxy.broker.hook_auth import sign
from proxy.broker.kratos_identities import KratosProvisioner
from proxy.broker.provisioning import ProvisioningFailed
from proxy.broker.scim import ScimProvisioner
from proxy.broker.verifier import Profile
from proxy.broker.workos import WorkosProvisioner
from tests.flags.redis_support import RedisTarget, free_port
from tests.proxy.broker.broker_support import ALICE, BOB, UNKNOWN, WRONG, hook_body
from tests.proxy.broker.conftest import StartBroker


def test_logs_audit_and_metrics_carry_no_credential(
    start_broker: StartBroker, captured_logs: pytest.LogCaptureFixture
) -> None:
    env = start_broker()
    for door in ("generic", "okta", "kratos", "cognito", "auth0"):
        env.call(door, *ALICE)
        env.call(door, BOB[0], WRONG)
        env.call(door, UNKNOWN, WRONG)

    metrics_text = httpx.get(f"{env.ops_url}/metrics").text
    lines = [captured_logs.handler.format(r) for r in captured_logs.records]

    for secret in (ALICE[1], BOB[1], WRONG, "SEEKRIT", ALICE[0], BOB[0], UNKNOWN):
        assert secret not in metrics_text
        assert not [line for line in lines if secret in line]
    audit = [r for r in captured_logs.records if r.name == "authswitch.broker.audit"]
    # One record per provisioning attempt: created once, then found there by the other doors.
    assert [r.__dict__["fields"]["result"] for r in audit] == [
        "provisioned",
        *["already_present"] * 4,
    ]
    hashes = {r.__dict__["fields"]["identifier_hash"] for r in audit}
    assert len(hashes) == 1 and len(next(iter(hashes))) == 32
    assert 'authswitch_broker_provisioning_total{door="generic",outcome="provisioned"}' in (
        metrics_text
    )


def test_a_credential_never_prints() -> None:
    credential = Credential(ALICE[0], Password(ALICE[1]))

    assert ALICE[1] not in repr(credential)
    assert ALICE[1] not in str(credential.password)
    assert ALICE[1] not in json.dumps({"c": str(credential)})


def test_a_failed_provisioning_names_no_payload() -> None:
    async def create() -> None:
        provisioner = ScimProvisioner(
            f"http://127.0.0.1:{free_port()}/v2", token=None, timeout_seconds=0.5
        )
        await provisioner.start()
        try:
            await provisioner.create(Credential(ALICE[0], Password(ALICE[1])), Profile())
        finally:
            await provisioner.close()

    with pytest.raises(ProvisioningFailed) as failure:
        asyncio.run(create())

    assert ALICE[1] not in str(failure.value)
    # Raised "from None": a traceback doesn't show scim2-client's error and its payload.
    assert failure.value.__suppress_context__


@pytest.mark.parametrize("kind", ["workos", "kratos"])
def test_a_failed_user_api_call_names_no_password_or_key(kind: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    provisioner: WorkosProvisioner | KratosProvisioner = (
        WorkosProvisioner(url, api_key="sk_test_SEEKRIT-key", timeout_seconds=0.5)
        if kind == "workos"
        else KratosProvisioner(
            url,
            token="SEEKRIT-token",
            schema_id="default",
            identifier_trait="email",
            timeout_seconds=0.5,
        )
    )

    async def create() -> None:
        await provisioner.start()
        try:
            await provisioner.create(Credential(*ALICE[:1], Password(ALICE[1])), Profile(ALICE[0]))
        finally:
            await provisioner.close()

    with pytest.raises(ProvisioningFailed) as failure:
        asyncio.run(create())

    for secret in (ALICE[1], "SEEKRIT", ALICE[0]):
        assert secret not in str(failure.value)
    assert failure.value.__suppress_context__


def test_refused_and_replayed_signatures_leave_no_signature_or_secret_in_logs(
    start_broker: StartBroker, captured_logs: pytest.LogCaptureFixture, shared_redis: RedisTarget
) -> None:
    env = start_broker(authentication="hmac")
    body = json.dumps(hook_body("generic", *ALICE)).encode()
    signature = sign(env.secret, body)
    url = f"{env.url}/_authswitch/broker/generic"
    for sent in (signature, signature, "t=1,v1=" + "ab" * 32, "sha256=SEEKRIT-not-hex"):
        httpx.post(url, content=body, headers={"x-authswitch-signature": sent}, timeout=10)

    lines = [captured_logs.handler.format(r) for r in captured_logs.records]
    digest = signature.split("v1=")[1]
    keys = [k.decode() for k in shared_redis.client().scan_iter(match=f"{env.prefix}:*")]

    assert [line for line in lines if "replayed signature" in line]
    for secret in (digest, "ab" * 32, "SEEKRIT", env.secret.decode(), ALICE[1]):
        assert not [line for line in lines if secret in line]
        assert not [key for key in keys if secret in key]
