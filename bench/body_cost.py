"""How authswitch's own per-callback steps grow with the body: CPU µs per request in-process.

    python -m bench.body_cost            # ~30 s; --rounds 5 on a noisy machine

Mints one signed SAMLResponse per size (2, 8, 64, 200 KB of POST body), then times, on this
process's CPU clock, the steps authswitch adds to a proxy for every SAML callback: the form
parse of the raw body (intake) and the hardened SAMLResponse read (base64, byte checks, lxml on
the recycled reader thread, the Issuer walk). The HTTP server and client are not included:
they are what any proxy pays (`python -m bench.run` measures them side by side). Printed per
size and per KB, so a step that grows worse than linearly shows.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from bench.saml_corpus import ACS_URL, SP_ENTITY_ID
from proxy.callback.intake import parse_fields
from proxy.callback.saml_response import inspect_saml_response
from proxy.demo.idp import DemoIdP
from proxy.demo.keys import generate_keypair

SIZES_KB = (2, 8, 64, 200)
FORM = b"application/x-www-form-urlencoded"
LIMIT = 256 * 1024


def _body(idp: DemoIdP, kb: int) -> bytes:
    padding = 0
    body = b""
    for _ in range(4):  # converge on the target body size
        body = idp.mint_form_body(
            destination=ACS_URL,
            audience=SP_ENTITY_ID,
            name_id="user@customer.example.com",
            padding_bytes=padding,
            relay_state="https://app.example.com/dashboard",
        )
        missing = kb * 1024 - len(body)
        if abs(missing) < 64 or (missing < 0 and padding == 0):
            break
        padding = max(0, padding + missing * 3 // 4)
    return body


def _per_call_us(step: Callable[[], object], seconds: float) -> float:
    calls = 0
    started = time.process_time()
    while (elapsed := time.process_time() - started) < seconds:
        for _ in range(20):
            step()
        calls += 20
    return elapsed / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.0, help="per step, size and round")
    args = parser.parse_args()
    idp = DemoIdP("https://idp.example.com/metadata", generate_keypair("bench-body-cost"))
    print("| body | form parse µs | SAML read µs | together µs | per KB µs |")
    print("|---:|---:|---:|---:|---:|")
    for kb in SIZES_KB:
        body = _body(idp, kb)
        value = parse_fields(b"", body, FORM, 64).get("SAMLResponse")
        assert value is not None

        def form(body: bytes = body) -> object:
            return parse_fields(b"", body, FORM, 64)

        def saml(value: str = value) -> object:
            return inspect_saml_response(value, max_decoded_bytes=LIMIT)

        form_us = statistics.median(_per_call_us(form, args.seconds) for _ in range(args.rounds))
        saml_us = statistics.median(_per_call_us(saml, args.seconds) for _ in range(args.rounds))
        total = form_us + saml_us
        print(
            f"| {len(body) / 1024:.1f} KB | {form_us:.1f} | {saml_us:.1f} | {total:.1f} "
            f"| {total / (len(body) / 1024):.2f} |"
        )


if __name__ == "__main__":
    main()
