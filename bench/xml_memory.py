"""Memory under hostile XML: RSS after N valid and N hostile SAML responses, side by side.

Each scenario runs in a fresh process: N responses of 8 KB (250 element names each) read by
`inspect_saml_response`, either always the same names (valid-like) or names never seen before
(hostile); with the recycling reader thread (what authswitch does) and, as the reference, read
on the calling thread (what it did before). Prints RSS after each run and the ratios.

    .venv/bin/python -m bench.xml_memory            # N = 100 000 (about a minute)
    .venv/bin/python -m bench.xml_memory --n 20000
"""

from __future__ import annotations

import argparse
import subprocess
import sys

_SCENARIO = """
import base64, sys, time, uuid
from proxy.callback import saml_response
n, hostile, recycle = int(sys.argv[1]), sys.argv[2] == "hostile", sys.argv[3] == "recycle"
read = saml_response.inspect_saml_response if recycle else (
    lambda v: saml_response._facts_of(saml_response._decode_base64(v, 262144)))
def doc(names, salt):
    body = "".join(f"<n{salt}{i}/>" for i in range(names))
    xml = ('<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="r" '
           f'Version="2.0"><samlp:Extensions>{body}</samlp:Extensions></samlp:Response>')
    return base64.b64encode(xml.encode()).decode()
same = doc(250, "x" * 32)
started = time.perf_counter()
for _ in range(n):
    value = doc(250, uuid.uuid4().hex) if hostile else same
    try:
        read(value)
    except Exception:
        pass
elapsed = time.perf_counter() - started
rss = int(open("/proc/self/statm").read().split()[1]) * 4096
print(rss, elapsed)
"""


def _run(n: int, kind: str, mode: str) -> tuple[int, float]:
    out = subprocess.run(
        [sys.executable, "-c", _SCENARIO, str(n), kind, mode],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return int(out[0]), float(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    n = parser.parse_args().n
    print(f"N = {n} responses of ~8 KB, 250 element names each")
    print("| reader | RSS after N valid-like | RSS after N hostile | hostile / valid |")
    print("|---|---:|---:|---:|")
    for mode, label in (("recycle", "recycling thread (authswitch)"), ("inline", "calling thread")):
        valid, _ = _run(n, "valid", mode)
        hostile, _ = _run(n, "hostile", mode)
        print(
            f"| {label} | {valid / 2**20:.0f} MB | {hostile / 2**20:.0f} MB | "
            f"{hostile / valid:.2f} |"
        )


if __name__ == "__main__":
    main()
