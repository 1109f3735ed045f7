"""Amazon Cognito's user-pool API, served by moto (`ThreadedMotoServer`) on loopback.

moto is the well-kept Cognito emulator: pools, users and identity providers are created through
the same API (boto3) an operator's tooling uses, and the exports read them back over HTTP. moto
does not check SigV4 signatures nor throttle: those stay with the hand-written server in
users_export/vendor_servers.py (FakeCognito).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

REGION = "eu-west-1"
ACCESS_KEY_ID = "AKIAMOTOREADONLY"
SECRET_ACCESS_KEY = "SEEKRIT-moto-secret-access-key"


@dataclass(frozen=True)
class CognitoEmulator:
    url: str

    def client(self) -> Any:
        """A boto3 cognito-idp client of the emulator (the operator's side: creates things)."""
        return boto3.client(
            "cognito-idp",
            region_name=REGION,
            endpoint_url=self.url,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
        )

    def new_pool(self, name: str) -> str:
        """A fresh user pool's id (`<region>_<id>`): moto's state is per process, so each test
        works in a pool of its own."""
        answer = self.client().create_user_pool(PoolName=name)
        return str(answer["UserPool"]["Id"])

    def credentials_file(self, directory: Path) -> Path:
        path = directory / "aws-credentials"
        path.write_text(
            f"[default]\naws_access_key_id = {ACCESS_KEY_ID}\n"
            f"aws_secret_access_key = {SECRET_ACCESS_KEY}\n"
        )
        path.chmod(0o600)
        return path


@pytest.fixture(scope="session")
def cognito_emulator() -> Iterator[CognitoEmulator]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield CognitoEmulator(f"http://{host}:{port}")
    finally:
        server.stop()
