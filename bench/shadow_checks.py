"""Shadow checks: checks per second per core, and what 100 % sampling adds to a callback's p50.

    python -m bench.shadow_checks            # from the repository root, ~1 minute

1. **Checks/s per core**: one thread checks the same 8 KB signed SAMLResponse (Response and
   Assertion signed, RSA-SHA256, minted by ``DemoIdP``) for a few seconds; the thread's CPU time
   gives checks per CPU-second. Reference, in the same run: python3-saml's
   ``OneLogin_Saml2_Response.is_valid`` on the same response with the same settings, which is
   what the new provider's own validation costs.
2. **Added p50**: authswitch in this process (uvicorn on loopback, one worker) in front of a
   bare ASGI legacy answering 200; one client sends 8 KB SAML callbacks one at a time (c=1,
   keep-alive) that fall through to legacy, with sampling off and at 100 % (queue 256, 2
   workers), in alternating rounds; medians of the rounds' p50s. The checks run in the same
   process, so they compete for the GIL and the CPU exactly as in production.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from connection_map import Connection
from flags import RolloutState, write_rollout_state
from proxy.app import AuthSwitch
from proxy.config import load_config
from proxy.demo.idp import DemoIdP
from proxy.demo.keys import generate_keypair
from proxy.demo.loopback_server import LoopbackServer
from proxy.shadow.saml_check import check_saml_response, request_data_for, sp_settings
from proxy.shadow.settings import ShadowConnection

ENTITY_ID = "https://idp.bench.example/saml"
ACS = "https://legacy.bench.example/login/callback"
SP = "https://legacy.bench.example/sp"
FORM = {"content-type": "application/x-www-form-urlencoded"}


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per throughput measurement")
    parser.add_argument("--requests", type=int, default=400, help="per latency round")
    parser.add_argument("--rounds", type=int, default=3)
    return parser.parse_args()


def _padded_response(idp: DemoIdP) -> str:
    padding = 0
    while True:  # pad until the base64 SAMLResponse is 8 KB
        response = idp.mint_response(
            destination=ACS, audience=SP, name_id="bench@example.com", padding_bytes=padding
        )
        if len(response) >= 8192:
            return response
        padding += (8192 - len(response)) * 3 // 4 + 16


def _connection(idp: DemoIdP) -> Connection:
    return Connection.model_validate(
        {
            "id": "bench",
            "protocol": "saml",
            "saml": {
                "idp_entity_id": ENTITY_ID,
                "signing_certificates": [idp.keys.cert_pem],
                "attributes": {"email": "email"},
            },
            "legacy": {"callback_url": ACS, "sp_entity_id": SP},
            "new_provider": {"url": "https://new.bench.example/sso/bench"},
        }
    )


def _per_cpu_second(work: Any, seconds: float) -> float:
    work()  # warm
    started, count = time.thread_time(), 0
    wall_end = time.perf_counter() + seconds
    while time.perf_counter() < wall_end:
        work()
        count += 1
    return count / (time.thread_time() - started)


def throughput(seconds: float) -> tuple[float, float]:
    from onelogin.saml2.response import OneLogin_Saml2_Response

    idp = DemoIdP(ENTITY_ID, generate_keypair("idp.bench.example"))
    response = _padded_response(idp)
    connection = _connection(idp)
    accepts = ShadowConnection()
    assert check_saml_response(response, connection, accepts).accepted
    settings = sp_settings(ENTITY_ID, [idp.keys.cert_pem], ACS, SP)
    request = request_data_for(ACS)

    def reference() -> None:
        assert OneLogin_Saml2_Response(settings, response).is_valid(request)

    shadow = _per_cpu_second(lambda: check_saml_response(response, connection, accepts), seconds)
    return shadow, _per_cpu_second(reference, seconds)


async def _legacy(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _proxy_config(directory: Path, legacy_url: str, idp: DemoIdP, rate: float) -> Path:
    entry = _connection(idp).model_dump(mode="json", exclude_none=True)
    (directory / "connections.yaml").write_text(
        yaml.safe_dump({"version": 1, "connections": [entry]})
    )
    write_rollout_state(directory / "flags.yaml", RolloutState())
    config = {
        "legacy": {"url": legacy_url},
        "connection_map": "connections.yaml",
        "flags": {"file": "flags.yaml"},
        "routes": [{"path": "/login/callback", "protocol": "saml", "identify": ["saml_issuer"]}],
        "logging": {"level": "warning"},
        "shadow": {"default_sample_rate": rate},
    }
    path = directory / f"authswitch-{rate}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _p50(url: str, body: bytes, requests: int) -> tuple[float, int]:
    times = []
    with httpx.Client(timeout=10) as client:
        for _ in range(50):
            client.post(url, content=body, headers=FORM)
        for _ in range(requests):
            started = time.perf_counter()
            answer = client.post(url, content=body, headers=FORM)
            times.append(time.perf_counter() - started)
            assert answer.status_code == 200, answer.status_code
    return statistics.median(times), requests + 50


def latency(requests: int, rounds: int) -> dict[str, Any]:
    idp = DemoIdP(ENTITY_ID, generate_keypair("idp.bench.example"))
    body = httpx.QueryParams({"SAMLResponse": _padded_response(idp), "RelayState": "r"})
    payload = str(body).encode()
    results: dict[float, list[float]] = {0.0: [], 1.0: []}
    checked = dropped = 0
    with tempfile.TemporaryDirectory() as tmp, LoopbackServer(_legacy, name="legacy") as legacy:
        for round_ in range(rounds):
            for rate in (0.0, 1.0) if round_ % 2 == 0 else (1.0, 0.0):
                app = AuthSwitch(load_config(_proxy_config(Path(tmp), legacy.url, idp, rate)))
                with LoopbackServer(app, name="authswitch") as server:
                    p50, _sent = _p50(server.url + "/login/callback", payload, requests)
                    if app.shadow is not None:
                        app.shadow.drain()
                        checked += app.shadow.queued
                        dropped += app.shadow.dropped
                results[rate].append(p50)
    off, on = statistics.median(results[0.0]), statistics.median(results[1.0])
    return {"off": off, "on": on, "checked": checked, "dropped": dropped}


def main() -> None:
    args = _arguments()
    shadow, reference = throughput(args.seconds)
    print("checks per CPU-second, 8 KB signed response (RSA-SHA256):")
    print(f"  shadow check (authswitch)        {shadow:8.0f}")
    print(f"  python3-saml is_valid (reference) {reference:7.0f}")
    print(f"  ratio shadow / reference          {shadow / reference:7.2f}")
    figures = latency(args.requests, args.rounds)
    print(f"callback p50 at c=1, {args.rounds} rounds x {args.requests} requests:")
    print(f"  sampling off   {figures['off'] * 1000:7.3f} ms")
    print(f"  sampling 100 % {figures['on'] * 1000:7.3f} ms")
    print(f"  added p50      {(figures['on'] - figures['off']) * 1000:7.3f} ms")
    print(f"  samples checked {figures['checked']}, dropped {figures['dropped']}")


if __name__ == "__main__":
    main()
