"""`authswitch demo`: real signed SAML logins through the proxy at each rollout step.

Everything runs in this process on loopback ports: per-connection demo IdPs with generated
keys, a legacy SP and a new-provider SP that validate with python3-saml, and authswitch with
the embedded file flag provider. Each step rewrites the flags file (as an SRE would), waits
for the proxy to pick it up, drives one browser-like login per connection and checks where
it landed against the rollout rules.
"""

from __future__ import annotations

import html
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx
import yaml

from connection_map import Connection, read_connection_map_document
from flags import FileFlagProvider, RolloutState, evaluate, write_rollout_state
from proxy.app import AuthSwitch
from proxy.config import Ops, load_config
from proxy.demo.idp import DemoIdP
from proxy.demo.keys import generate_keypair
from proxy.demo.loopback_server import LoopbackServer
from proxy.demo.saml_validation import TrustedIdP
from proxy.demo.service_provider import create_service_provider_app
from proxy.ops.ops_listener import OpsListener

SALT = "authswitch-demo"
ACS_PATH = "/login/callback"
# id -> (forwarding mode, migration assessment)
DEMO_CONNECTIONS: dict[str, tuple[str, str]] = {
    "acme": ("redirect", "transparent"),
    "globex": ("form_post", "transparent"),
    "hooli": ("proxy", "transparent"),
    "stark": ("redirect", "transparent"),
    "wayne": ("form_post", "transparent"),
    "umbrella": ("redirect", "needs_idp_change"),
}


@dataclass(frozen=True)
class Step:
    title: str
    state: dict[str, Any]


STEPS = (
    Step("stage 0 %: everyone on legacy", {"stage_percent": 0}),
    Step("canary: acme", {"stage_percent": 0, "canary": ["acme"]}),
    Step("stage 25 % (sticky buckets) + canary", {"stage_percent": 25, "canary": ["acme"]}),
    Step("stage 100 %", {"stage_percent": 100, "canary": ["acme"]}),
    Step("kill switch for globex", {"stage_percent": 100, "overrides": {"globex": "off"}}),
    Step("global kill switch", {"stage_percent": 100, "kill_all": True}),
)


@dataclass(frozen=True)
class Login:
    connection: str
    mode: str
    expected: str
    landed: str
    valid: bool
    why: str
    error: str | None

    @property
    def ok(self) -> bool:
        return self.landed == self.expected and self.valid


class Demo:
    """The demo's parties and files; `with Demo() as demo:` starts and stops them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.proxy = LoopbackServer(name="authswitch")
        self.acs_url = self.proxy.url + ACS_PATH
        self.sp_entity_id = self.proxy.url + "/saml/metadata"
        self.idps = {
            cid: DemoIdP(f"https://idp.{cid}.example/saml", generate_keypair(f"demo-idp-{cid}"))
            for cid in DEMO_CONNECTIONS
        }
        trusted = [TrustedIdP(cid, i.entity_id, i.keys.cert_pem) for cid, i in self.idps.items()]
        self.legacy = LoopbackServer(self._provider("legacy", trusted), name="legacy")
        self.new = LoopbackServer(self._provider("new", trusted), name="new")
        self.config_path = self._write_files()
        self.app = AuthSwitch(load_config(self.config_path))
        self.proxy.app = self.app
        document = read_connection_map_document(self.directory / "connections.yaml")
        self.connections = document.connections
        self.version = 0

    def _provider(self, name: str, trusted: list[TrustedIdP]) -> Any:
        return create_service_provider_app(
            name=name,
            sp_entity_id=self.sp_entity_id,
            public_acs_url=self.acs_url,
            trusted_idps=trusted,
        )

    def _write_files(self) -> Path:
        entries = [
            {
                "id": cid,
                "protocol": "saml",
                "saml": {"idp_entity_id": self.idps[cid].entity_id},
                "new_provider": {"url": f"{self.new.url}/sso/{cid}/acs", "mode": mode},
                "assessment": assessment,
                **(
                    {"assessment_reasons": ["assertion encryption key cannot be exported"]}
                    if assessment != "transparent"
                    else {}
                ),
            }
            for cid, (mode, assessment) in DEMO_CONNECTIONS.items()
        ]
        (self.directory / "connections.yaml").write_text(
            yaml.safe_dump({"version": 1, "connections": entries}, sort_keys=False)
        )
        write_rollout_state(self.directory / "flags.yaml", RolloutState(salt=SALT))
        config = {
            "listen": {"host": "127.0.0.1", "port": self.proxy.port},
            "legacy": {"url": self.legacy.url},
            "connection_map": "connections.yaml",
            "flags": {"file": "flags.yaml", "poll_interval_seconds": 0.1},
            "routes": [{"path": ACS_PATH, "protocol": "saml", "identify": ["saml_issuer"]}],
            "logging": {"level": "warning"},
        }
        path = self.directory / "authswitch.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def __enter__(self) -> Demo:
        self.legacy.start()
        self.new.start()
        self.proxy.start()
        return self

    def __exit__(self, *_: object) -> None:
        for server in (self.proxy, self.new, self.legacy):
            server.stop()

    def apply(self, step: Step) -> RolloutState:
        """Write the flags file and wait until the running proxy has read it."""
        self.version += 1
        state = RolloutState.model_validate({"salt": SALT, "version": self.version, **step.state})
        write_rollout_state(self.directory / "flags.yaml", state)
        provider = self.app.flag_provider
        assert isinstance(provider, FileFlagProvider)
        deadline = time.monotonic() + 5
        while provider.state.version != self.version:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the proxy did not pick up flags version {self.version}")
            time.sleep(0.02)
        return state

    def login(self, connection: Connection, state: RolloutState, client: httpx.Client) -> Login:
        expected, why = _expectation(connection, state)
        idp = self.idps[connection.id]
        body = idp.mint_form_body(
            destination=self.acs_url,
            audience=self.sp_entity_id,
            name_id=f"user@{connection.id}.example",
            relay_state=f"/dashboard?from={connection.id}",
        )
        verdict = _browser_post(client, self.acs_url, body)
        mode = connection.new_provider.mode.value if connection.new_provider else "-"
        return Login(
            connection.id,
            mode,
            expected,
            str(verdict.get("landed")),
            bool(verdict.get("valid")),
            why,
            verdict.get("error"),
        )


def _expectation(connection: Connection, state: RolloutState) -> tuple[str, str]:
    if not connection.migratable:
        reasons = ", ".join(connection.assessment_reasons) or connection.assessment.value
        return "legacy", f"{connection.assessment.value}: {reasons}"
    decision = evaluate(state, connection.id)
    return decision.route, decision.reason


_FORM_ACTION = re.compile(r'<form[^>]*action="([^"]+)"')
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]*)" value="([^"]*)">')


def _browser_post(client: httpx.Client, url: str, body: bytes) -> dict[str, Any]:
    """POST a callback the way a browser would, following a 307 or an auto-posting form."""
    headers = {"content-type": "application/x-www-form-urlencoded"}
    response = client.post(url, content=body, headers=headers)
    if response.status_code == 307:
        response = client.post(response.headers["location"], content=body, headers=headers)
    elif response.headers.get("content-type", "").startswith("text/html"):
        action = _FORM_ACTION.search(response.text)
        if action is None:
            return {"landed": "nowhere", "valid": False, "error": "no form in the page"}
        fields = {html.unescape(k): html.unescape(v) for k, v in _HIDDEN.findall(response.text)}
        response = client.post(html.unescape(action.group(1)), data=fields)
    try:
        answer: dict[str, Any] = response.json()
    except ValueError:
        return {"landed": "nowhere", "valid": False, "error": f"HTTP {response.status_code}"}
    return answer


def _print_step(out: TextIO, number: int, step: Step, logins: list[Login]) -> None:
    out.write(f"\nStep {number}: {step.title}\n")
    header = ("connection", "mode", "expected", "landed", "validated", "result", "why")
    rows = [
        (
            login.connection,
            login.mode,
            login.expected,
            login.landed,
            "yes" if login.valid else f"NO ({login.error})",
            "ok" if login.ok else "WRONG",
            login.why,
        )
        for login in logins
    ]
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        out.write("  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
        out.write("\n")


def run_demo(*, serve_forever: bool = False, out: TextIO = sys.stdout) -> int:
    """Run every step; 0 when every login landed where expected and validated there."""
    with tempfile.TemporaryDirectory(prefix="authswitch-demo-") as tmp, Demo(Path(tmp)) as demo:
        out.write(
            f"authswitch demo: proxy {demo.proxy.url}, legacy SP {demo.legacy.url}, "
            f"new-provider SP {demo.new.url}\n"
            f"Each login is a SAML Response signed by the connection's own IdP key, posted to "
            f"{demo.acs_url} and validated by python3-saml where it lands.\n"
        )
        failures = 0
        with httpx.Client(timeout=10, follow_redirects=False) as client:
            for number, step in enumerate(STEPS, start=1):
                state = demo.apply(step)
                logins = [demo.login(c, state, client) for c in demo.connections]
                failures += sum(not login.ok for login in logins)
                _print_step(out, number, step, logins)
        total = len(STEPS) * len(demo.connections)
        verdict = "PASS" if failures == 0 else "FAIL"
        out.write(
            f"\n{verdict}: {total - failures}/{total} logins landed where expected and validated.\n"
        )
        if serve_forever:
            _serve(demo, out)
        return 0 if failures == 0 else 1


def _serve(demo: Demo, out: TextIO) -> None:
    sample = demo.directory / "acme-login.txt"
    sample.write_bytes(
        demo.idps["acme"].mint_form_body(
            destination=demo.acs_url, audience=demo.sp_entity_id, name_id="user@acme.example"
        )
    )
    # The ops endpoints are on a listener of their own, never on the proxy's port.
    ops = OpsListener(Ops(port=0), demo.app.readiness).start()
    out.write(
        "\nThe demo keeps running (Ctrl+C to stop). Try:\n"
        f"  curl -i {ops.url}/readyz\n"
        f"  curl -i -X POST {demo.acs_url} -H 'content-type: application/x-www-form-urlencoded' "
        f"--data-binary @{sample}\n"
        f"  curl -s {ops.url}/metrics | grep authswitch_callbacks_total\n"
        f"Edit the flags in {demo.directory / 'flags.yaml'} and post again (a signed response "
        "is valid for 5 minutes and once only at each SP).\n"
    )
    out.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        out.write("stopped\n")
    finally:
        ops.stop()
