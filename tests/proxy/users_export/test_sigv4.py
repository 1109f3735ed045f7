"""SigV4 against the AWS Signature Version 4 test suite's published vectors (credentials
AKIDEXAMPLE / wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 2015-08-30T12:36:00Z, us-east-1,
service "service")."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from proxy.users_export.sigv4 import AwsCredentials, sign

CREDENTIALS = AwsCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
WHEN = datetime(2015, 8, 30, 12, 36, tzinfo=UTC)
SCOPE = "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"


@pytest.mark.parametrize(
    ("vector", "method", "query", "signature"),
    [
        (
            "get-vanilla",
            "GET",
            [],
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ),
        (
            "post-vanilla",
            "POST",
            [],
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
        ),
        (
            "get-vanilla-query-order-key-case",
            "GET",
            [("Param2", "value2"), ("Param1", "value1")],
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        ),
    ],
)
def test_aws_published_vectors(
    vector: str, method: str, query: list[tuple[str, str]], signature: str
) -> None:
    headers = sign(
        CREDENTIALS,
        method=method,
        host="example.amazonaws.com",
        path="/",
        query=query,
        headers={},
        body=b"",
        region="us-east-1",
        service="service",
        when=WHEN,
    )
    assert headers["X-Amz-Date"] == "20150830T123600Z"
    assert headers["Authorization"] == (
        f"AWS4-HMAC-SHA256 {SCOPE}, SignedHeaders=host;x-amz-date, Signature={signature}"
    ), vector


def test_a_session_token_is_signed_and_sent() -> None:
    with_token = AwsCredentials("AKIDEXAMPLE", CREDENTIALS.secret_access_key, "SESSION")
    headers = sign(
        with_token,
        method="POST",
        host="example.amazonaws.com",
        path="/",
        query=[],
        headers={"Content-Type": "application/x-amz-json-1.1"},
        body=b"{}",
        region="us-east-1",
        service="cognito-idp",
        when=WHEN,
    )
    assert headers["X-Amz-Security-Token"] == "SESSION"
    assert (
        "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token,"
        in (headers["Authorization"])
    )
