"""How authswitch's own per-callback steps grow with the body: CPU µs per request in-process.

    python -m bench.body_cost            # ~40 s; --rounds 5 on a noisy machine

Mints one SAMLResponse per size, then times, on this process's CPU clock, the steps authswitch
adds to a proxy for every SAML callback: the form parse of the raw body (intake) and the
hardened SAMLResponse read (base64, byte checks, lxml on the recycled reader thread, the Issuer
walk). The HTTP server and client are not included: they are what any proxy pays
(`python -m bench.run` measures them side by side).

The bodies (each with a RelayState): 8, 64 and 200 KB are the benchmark corpus's kind, a
Response and its Assertion both signed by the demo IdP (RSA-SHA256), padded with attribute
values; a doubly signed response is never smaller than ~8 KB, so the 2 KB row is the same
Response and Assertion unsigned (~2.5 KB, the smallest the demo IdP mints: what an IdP that
signs nothing, or a test IdP, sends), with an unsigned one padded to 8 KB beside it so that the
step from 2 to 8 KB compares like with like. Printed per size, per KB, and per KB added since
the previous body of the same kind, so a step that grows worse than linearly shows.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.saml_corpus import ACS_URL, SP_ENTITY_ID
from proxy.callback.intake import parse_fields
from proxy.callback.saml_response import inspect_saml_response
from proxy.demo.idp import DemoIdP
from proxy.demo.keys import generate_keypair

FORM = b"application/x-www-form-urlencoded"
LIMIT = 256 * 1024


@dataclass(frozen=True)
class Body:
    kb: int  # the target POST body size; the smallest response of its kind may be larger
    signed: bool  # Response and Assertion both signed, else neither

    @property
    def kind(self) -> str:
        return "signed" if self.signed else "unsigned"


BODIES = (
    Body(2, signed=False),
    Body(8, signed=False),
    Body(8, signed=True),
    Body(64, signed=True),
    Body(200, signed=True),
)


def _body(idp: DemoIdP, wanted: Body) -> tuple[bytes, int]:
    """The POST body closest to `wanted.kb`, and the attribute padding it needed."""
    padding = 0
    body = b""
    for _ in range(4):  # converge on the target body size
        body = idp.mint_form_body(
            destination=ACS_URL,
            audience=SP_ENTITY_ID,
            name_id="user@customer.example.com",
            padding_bytes=padding,
            relay_state="https://app.example.com/dashboard",
            sign_assertion=wanted.signed,
            sign_response=wanted.signed,
        )
        missing = wanted.kb * 1024 - len(body)
        if abs(missing) < 64 or (missing < 0 and padding == 0):
            break
        padding = max(0, padding + missing * 3 // 4)
    return body, padding


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
    print(
        "| body | SAMLResponse | form parse µs | SAML read µs | together µs "
        "| form µs/KB | SAML µs/KB | together µs/KB | µs per KB added |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    previous: dict[bool, tuple[float, float]] = {}  # kind -> (KB, together µs)
    for wanted in BODIES:
        body, padding = _body(idp, wanted)
        value = parse_fields(b"", body, FORM, 64).get("SAMLResponse")
        assert value is not None

        def form(body: bytes = body) -> object:
            return parse_fields(b"", body, FORM, 64)

        def saml(value: str = value) -> object:
            return inspect_saml_response(value, max_decoded_bytes=LIMIT)

        form_us = statistics.median(_per_call_us(form, args.seconds) for _ in range(args.rounds))
        saml_us = statistics.median(_per_call_us(saml, args.seconds) for _ in range(args.rounds))
        total = form_us + saml_us
        kb = len(body) / 1024
        step = ""
        if wanted.signed in previous:
            last_kb, last_total = previous[wanted.signed]
            step = f"{(total - last_total) / (kb - last_kb):.2f}"
        previous[wanted.signed] = (kb, total)
        what = "Response + Assertion signed" if wanted.signed else "unsigned"
        what += f", {padding:,} B of padding" if padding else ", no padding"
        print(
            f"| {kb:.1f} KB | {what} | {form_us:.1f} | {saml_us:.1f} | {total:.1f} "
            f"| {form_us / kb:.2f} | {saml_us / kb:.2f} | {total / kb:.2f} | {step} |"
        )
    print(
        "µs per KB added: (together - together of the previous body of the same kind) / "
        "(KB - its KB); flat down the column means linear in the body size."
    )


if __name__ == "__main__":
    main()
