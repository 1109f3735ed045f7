"""The benchmark's requests: one signed ~8 KB SAMLResponse POST per IdP, for ~200 IdPs.

Each IdP has its own entity id and RSA key; responses are minted and signed by the project's
demo IdP (python3-saml ``add_sign``, RSA-SHA256) and written once to a file that the wrk script
cycles through: one request per line, ``<path>\\t<urlencoded body>``. A JSON manifest next to it
names the connection behind each line. Every request goes to one callback path
(`CALLBACK_PATH`, identified by Issuer); `with_connection_paths` writes the same requests (same
bodies, same order), each posted to its connection's own path instead (`PATH_ROUTE`,
identified by path).

Run: ``python -m bench.saml_corpus`` (bench.run does it when the corpus is missing).
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass, replace
from pathlib import Path

CALLBACK_PATH = "/login/callback"
# The per-connection callback route of the path-identified scenarios.
PATH_ROUTE = "/sso/{connection}/acs"
SP_ENTITY_ID = "https://app.example.com/saml/metadata"
ACS_URL = "https://app.example.com" + CALLBACK_PATH
TARGET_SAML_RESPONSE_BYTES = 8 * 1024
FORMAT_VERSION = 2


@dataclass(frozen=True)
class CorpusEntry:
    """One prepared request and the connection it belongs to."""

    index: int
    connection_id: str
    idp_entity_id: str
    path: str


def connection_id(index: int) -> str:
    return f"conn-{index:03d}"


def idp_entity_id(index: int) -> str:
    # Entity ids vary in shape the way real ones do (URLs of several lengths, URNs).
    shapes = (
        "https://idp{i}.example.com/saml/metadata",
        "http://www.okta.com/exk{i:05d}abcdEFGH0x7",
        "https://sts.windows.net/{i:08x}-1f2e-4d3c-9b8a-{i:012x}/",
        "urn:example:idp:customer-{i}",
    )
    return shapes[index % len(shapes)].format(i=index)


def connection_path(connection_id: str) -> str:
    """The connection's own callback path under `PATH_ROUTE`."""
    return PATH_ROUTE.format(connection=connection_id)


def corpus_base(data_dir: Path, connections: int) -> Path:
    """Where the corpus of `connections` IdPs lives (``<base>.tsv``, ``<base>.json``): one file
    per size, so that switching sizes doesn't mint the default corpus again."""
    return data_dir / ("corpus" if connections == 200 else f"corpus-{connections}")


def is_migrated_in_mix(entry: CorpusEntry) -> bool:
    """The half/half scenario migrates every other connection."""
    return entry.index % 2 == 0


def generate(out: Path, connections: int, seed: int = 7) -> list[CorpusEntry]:
    """Mint the requests into ``out.tsv`` and the manifest into ``out.json``."""
    from proxy.demo.idp import DemoIdP
    from proxy.demo.keys import generate_keypair

    entries: list[CorpusEntry] = []
    lines: list[str] = []
    for index in range(connections):
        entity_id = idp_entity_id(index)
        idp = DemoIdP(entity_id, generate_keypair(f"idp-{index}"))
        padding = 0
        for _ in range(3):  # converge on the target SAMLResponse size
            body = idp.mint_form_body(
                destination=ACS_URL,
                audience=SP_ENTITY_ID,
                name_id=f"user{index}@customer{index}.example.com",
                padding_bytes=padding,
                relay_state=f"https://app.example.com/dashboard?tenant={index}",
            )
            saml_size = _saml_response_size(body)
            missing = TARGET_SAML_RESPONSE_BYTES - saml_size
            if abs(missing) < 64 or (missing < 0 and padding == 0):
                break
            padding = max(0, padding + missing * 3 // 4)
        entries.append(CorpusEntry(index, connection_id(index), entity_id, CALLBACK_PATH))
        lines.append(f"{CALLBACK_PATH}\t{body.decode('ascii')}")
    # Shuffle so consecutive requests come from different connections (and, in the mix,
    # alternate unpredictably between migrated and not).
    order = list(range(connections))
    random.Random(seed).shuffle(order)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".tsv").write_text("".join(lines[i] + "\n" for i in order), encoding="ascii")
    manifest = {
        "format": FORMAT_VERSION,
        "connections": connections,
        "entries": [entries[i].__dict__ for i in order],
    }
    out.with_suffix(".json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return [entries[i] for i in order]


def load(out: Path, connections: int) -> list[CorpusEntry] | None:
    """The manifest of an existing corpus of the right shape, else None."""
    try:
        manifest = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if manifest.get("format") != FORMAT_VERSION or manifest.get("connections") != connections:
        return None
    if not out.with_suffix(".tsv").is_file():
        return None
    return [CorpusEntry(**entry) for entry in manifest["entries"]]


def ensure(out: Path, connections: int) -> list[CorpusEntry]:
    """Load the corpus, minting it first if it is missing or stale."""
    return load(out, connections) or generate(out, connections)


def with_connection_paths(out: Path, entries: list[CorpusEntry]) -> list[CorpusEntry]:
    """The corpus's requests, same bodies and order, each posted to `connection_path` of its
    connection, into ``<out>-paths.tsv``; the entries with their new paths.

    Only the path changes: the SAMLResponse still names `ACS_URL` as its Destination, which
    authswitch doesn't route by, so the path-identified scenarios read exactly the same bytes
    as the Issuer-identified ones.
    """
    lines = out.with_suffix(".tsv").read_text(encoding="ascii").splitlines()
    moved = [replace(entry, path=connection_path(entry.connection_id)) for entry in entries]
    bodies = [line.partition("\t")[2] for line in lines]
    text = "".join(f"{e.path}\t{body}\n" for e, body in zip(moved, bodies, strict=True))
    paths_tsv = path_corpus_tsv(out)
    if not paths_tsv.is_file() or paths_tsv.read_text(encoding="ascii") != text:
        paths_tsv.write_text(text, encoding="ascii")
    return moved


def path_corpus_tsv(out: Path) -> Path:
    return out.with_name(out.name + "-paths.tsv")


def _saml_response_size(body: bytes) -> int:
    from urllib.parse import parse_qs

    return len(parse_qs(body.decode("ascii"))["SAMLResponse"][0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / ".data" / "corpus")
    parser.add_argument("--connections", type=int, default=200)
    args = parser.parse_args()
    entries = generate(args.out, args.connections)
    sizes = [len(line) for line in args.out.with_suffix(".tsv").read_text().splitlines()]
    print(
        f"{len(entries)} requests -> {args.out.with_suffix('.tsv')} "
        f"(line bytes min {min(sizes)}, max {max(sizes)})"
    )


if __name__ == "__main__":
    main()
