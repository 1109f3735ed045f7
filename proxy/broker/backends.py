"""The legacy verifier and the provisioner a `broker` configuration names, built."""

from __future__ import annotations

from pathlib import Path

from proxy.broker.config import Broker as BrokerConfig
from proxy.broker.config import HashFileVerifier as HashFileConfig
from proxy.broker.config import HttpLoginVerifier as HttpLoginConfig
from proxy.broker.config import KratosProvisioner as KratosConfig
from proxy.broker.config import WorkosProvisioner as WorkosConfig
from proxy.broker.config import read_secret_file
from proxy.broker.hash_file import HashFileVerifier, firebase_parameters
from proxy.broker.http_login import HttpLoginVerifier
from proxy.broker.kratos_identities import KratosProvisioner
from proxy.broker.oauth2_password import OAuth2PasswordVerifier
from proxy.broker.provisioning import Provisioner
from proxy.broker.scim import ScimProvisioner
from proxy.broker.verifier import Verifier
from proxy.broker.workos import WorkosProvisioner


def verifier_for(config: BrokerConfig) -> Verifier:
    """The configured verifier (reads its files: a bad one raises ConfigError)."""
    settings = config.verifier
    assert settings is not None
    if isinstance(settings, HashFileConfig):
        firebase = settings.firebase
        return HashFileVerifier(
            settings.path,
            firebase_parameters(
                firebase.signer_key_file,
                firebase.salt_separator,
                firebase.rounds,
                firebase.mem_cost,
            )
            if firebase is not None
            else None,
        )
    if isinstance(settings, HttpLoginConfig):
        return HttpLoginVerifier(
            str(settings.url),
            body=settings.body,
            template=settings.template,
            success_status=settings.success_status,
            timeout_seconds=settings.timeout_seconds,
        )
    return OAuth2PasswordVerifier(
        str(settings.token_url),
        client_id=settings.client_id,
        client_secret=read_optional_secret(
            settings.client_secret_file, "broker.verifier.client_secret_file"
        ),
        client_auth=settings.client_auth,
        scope=settings.scope,
        timeout_seconds=settings.timeout_seconds,
    )


def provisioner_for(config: BrokerConfig) -> Provisioner | None:
    """The configured provisioner, or None."""
    settings = config.provisioner
    if settings is None:
        return None
    if isinstance(settings, WorkosConfig):
        api_key = read_secret_file(settings.api_key_file, "broker.provisioner.api_key_file")
        return WorkosProvisioner(
            str(settings.url), api_key=api_key.decode(), timeout_seconds=settings.timeout_seconds
        )
    token = read_optional_secret(settings.token_file, "broker.provisioner.token_file")
    if isinstance(settings, KratosConfig):
        return KratosProvisioner(
            str(settings.url),
            token=token,
            schema_id=settings.schema_id,
            identifier_trait=settings.identifier_trait,
            timeout_seconds=settings.timeout_seconds,
        )
    return ScimProvisioner(str(settings.url), token=token, timeout_seconds=settings.timeout_seconds)


def read_optional_secret(path: Path | None, key: str) -> str | None:
    """The secret in `path`, if a path is set."""
    return None if path is None else read_secret_file(path, key).decode()
