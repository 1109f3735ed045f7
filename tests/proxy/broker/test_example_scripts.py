"""The shipped provider-side scripts, run under Node.js against a real broker: the Auth0
custom database login script and the Cognito migrate user Lambda.

Node.js is a system package: CI installs it (.ci/run) and these tests fail there without it; on
a developer machine without it they are reported as skipped, with how to install it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.proxy.broker.broker_support import (
    ALICE,
    COGNITO_DENIED,
    UNKNOWN,
    WRONG,
    BrokerEnv,
    cognito_answer,
    cognito_event,
)
from tests.proxy.broker.conftest import StartBroker

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
NODE = shutil.which("node") or shutil.which("nodejs")

# Auth0's runtime gives login scripts `configuration`, `WrongUsernameOrPasswordError` and the
# axios module; this harness gives the same, axios being a thin shim over Node's fetch.
AUTH0_HARNESS = """
const fs = require("fs");
const vm = require("vm");
const [script, url, secret, email, password] = process.argv.slice(2);
class WrongUsernameOrPasswordError extends Error {}
const axios = {
  post: async (target, data, options) => {
    const response = await fetch(target, {
      method: "POST",
      headers: { "content-type": "application/json", ...options.headers },
      body: JSON.stringify(data),
      signal: AbortSignal.timeout(options.timeout),
    });
    const text = await response.text();
    return { status: response.status, data: text ? JSON.parse(text) : null };
  },
};
const sandbox = {
  require: (name) => { if (name !== "axios") throw new Error(name); return axios; },
  configuration: { AUTHSWITCH_URL: url, AUTHSWITCH_SECRET: secret },
  WrongUsernameOrPasswordError,
};
const login = vm.runInNewContext(fs.readFileSync(script, "utf8") + "\\nlogin", sandbox);
login(email, password, (error, profile) => {
  const kind = error === null ? null : error instanceof WrongUsernameOrPasswordError
    ? "WrongUsernameOrPasswordError" : "Error";
  console.log(JSON.stringify({ error: kind, profile: profile ?? null }));
});
"""

COGNITO_HARNESS = """
const [script, eventJson] = process.argv.slice(2);
const { handler } = await import(script);
try {
  console.log(JSON.stringify({ event: await handler(JSON.parse(eventJson)) }));
} catch (error) {
  console.log(JSON.stringify({ thrown: error.message }));
}
"""


@pytest.fixture
def node() -> str:
    if NODE is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Node.js is required in CI (apt-get install nodejs)")
        pytest.skip("Node.js not installed here (apt-get install nodejs); CI runs this test")
    return NODE


def _auth0(node: str, env: BrokerEnv, tmp_path: Path, email: str, password: str) -> Any:
    harness = tmp_path / "auth0-harness.cjs"
    harness.write_text(AUTH0_HARNESS)
    url = f"{env.url}/_authswitch/broker/auth0"
    run = subprocess.run(
        [node, str(harness), str(EXAMPLES / "auth0-login.js"), url, env.secret.decode(), email,
         password],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return json.loads(run.stdout)


def _cognito(node: str, env: BrokerEnv, tmp_path: Path, event: dict[str, Any]) -> Any:
    script = EXAMPLES / "cognito-migrate-user.mjs"  # an ES module, as Lambda's Node.js runs it
    harness = tmp_path / "cognito-harness.mjs"
    harness.write_text(COGNITO_HARNESS)
    run = subprocess.run(
        [node, str(harness), script.as_uri(), json.dumps(event)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        env={
            **os.environ,
            "AUTHSWITCH_URL": f"{env.url}/_authswitch/broker/cognito",
            "AUTHSWITCH_SECRET": env.secret.decode(),
        },
    )
    return json.loads(run.stdout)


def test_the_auth0_login_script_imports_a_verified_user(
    node: str, start_broker: StartBroker, tmp_path: Path
) -> None:
    env = start_broker()

    right = _auth0(node, env, tmp_path, *ALICE)
    wrong = _auth0(node, env, tmp_path, ALICE[0], WRONG)
    unknown = _auth0(node, env, tmp_path, UNKNOWN, WRONG)

    assert right == {
        "error": None,
        "profile": {"user_id": ALICE[0], "email": ALICE[0], "email_verified": True},
    }
    assert wrong == unknown == {"error": "WrongUsernameOrPasswordError", "profile": None}
    assert [u["userName"] for u in env.scim.users()] == [ALICE[0]]


def test_the_auth0_login_script_tells_a_wrong_hook_secret_from_a_wrong_password(
    node: str, start_broker: StartBroker, tmp_path: Path
) -> None:
    env = start_broker()
    env.secret = b"not-the-hook-secret-at-all"

    answer = _auth0(node, env, tmp_path, *ALICE)

    # Both are 401, but only "wrong_credentials" is the user's fault: this is an error to fix.
    assert answer == {"error": "Error", "profile": None}
    assert env.scim.users() == []


def test_the_cognito_lambda_returns_the_migrated_user_or_throws(
    node: str, start_broker: StartBroker, tmp_path: Path
) -> None:
    env = start_broker()

    right = _cognito(node, env, tmp_path, cognito_event(*ALICE))
    wrong = _cognito(node, env, tmp_path, cognito_event(ALICE[0], WRONG))
    reset = _cognito(node, env, tmp_path, cognito_event(ALICE[0], None))

    assert right == {"event": cognito_answer(ALICE[0], email=ALICE[0], email_verified="true")}
    assert wrong == reset == {"thrown": COGNITO_DENIED["errorMessage"]}
    assert [u["userName"] for u in env.scim.users()] == [ALICE[0]]
