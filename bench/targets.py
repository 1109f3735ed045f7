"""What the benchmark measures: the direct upstream, the reference proxies, authswitch's modes.

Each target knows how to start (argv for a port), which requests it gets (the corpus posted to
one callback path, or each request to its connection's own path), what a correct answer to each
looks like (checked on every request before any load), and, for authswitch, writes the config,
connection map and flags file of its scenario.
"""

from __future__ import annotations

import dataclasses
import functools
import http.client
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.processes import free_port
from bench.saml_corpus import CALLBACK_PATH, PATH_ROUTE, CorpusEntry, is_migrated_in_mix

DIRECT = "direct"
NAIVE = "ref-naive"
RAW_AIOHTTP = "ref-raw-aiohttp"
RAW_HTTPX = "ref-raw-httpx"
RAW_HTTPX_AIOHTTP = "ref-raw-httpx-aiohttp"
RAW_NOFORWARD = "ref-raw-noforward"
RAW_CHECKED = "ref-raw-checked"
AUTHSWITCH_SCENARIOS = (
    "fallthrough",
    "passthrough",
    "redirect",
    "proxy",
    "mix",
    "path-redirect",
    "path-mix",
)
# The scenarios named `path-*` route `PATH_ROUTE` with `identify: [path]` and post each request
# to its connection's own path; the others route `CALLBACK_PATH` by Issuer.
PATH_PREFIX = "path-"


@dataclass(frozen=True)
class Context:
    """What every target needs to start and to be checked."""

    upstream_port: int
    corpus: tuple[CorpusEntry, ...]
    corpus_tsv: Path
    work_dir: Path
    authswitch: Path | None
    authswitch_log_level: str
    # Another checkout's console script (`--before`): its scenarios run as `before-authswitch-*`.
    before_authswitch: Path | None = None
    # The same requests, each posted to its connection's own path
    # (`saml_corpus.with_connection_paths`).
    path_corpus: tuple[CorpusEntry, ...] = ()
    path_corpus_tsv: Path | None = None
    # Connections in the generated map: the corpus's, then filler ones no request names, up to
    # this many (0: the corpus's alone).
    map_size: int = 0

    def requests(self, target: Target) -> tuple[tuple[CorpusEntry, ...], Path]:
        """The requests `target` is sent and the file wrk reads them from."""
        if not target.by_path:
            return self.corpus, self.corpus_tsv
        if self.path_corpus_tsv is None:
            raise ValueError(f"{target.name} needs the path corpus")
        return self.path_corpus, self.path_corpus_tsv


Check = Callable[[Context, CorpusEntry, int, http.client.HTTPResponse], str | None]
Argv = Callable[[Context, int], list[str]]


@dataclass(frozen=True)
class Target:
    name: str
    group: str  # "direct" | "reference" | "authswitch"
    description: str
    argv: Argv
    check: Check
    by_path: bool = False  # each request posted to its connection's own path (PATH_ROUTE)


def new_provider_url(context: Context, entry: CorpusEntry) -> str:
    return f"http://127.0.0.1:{context.upstream_port}/new/{entry.connection_id}/acs"


def _reached_legacy(
    context: Context, entry: CorpusEntry, status: int, response: http.client.HTTPResponse
) -> str | None:
    path = response.getheader("x-bench-path")
    if status != 200 or path != entry.path:
        return f"expected 200 from legacy {entry.path}, got {status} from {path}"
    return None


def _redirected(
    context: Context, entry: CorpusEntry, status: int, response: http.client.HTTPResponse
) -> str | None:
    location = response.getheader("location")
    if status != 307 or location != new_provider_url(context, entry):
        return f"expected 307 to {new_provider_url(context, entry)}, got {status} to {location}"
    return None


def _proxied_to_new(
    context: Context, entry: CorpusEntry, status: int, response: http.client.HTTPResponse
) -> str | None:
    path = response.getheader("x-bench-path")
    expected = f"/new/{entry.connection_id}/acs"
    if status != 200 or path != expected:
        return f"expected 200 from new provider {expected}, got {status} from {path}"
    return None


def _mixed(
    context: Context, entry: CorpusEntry, status: int, response: http.client.HTTPResponse
) -> str | None:
    if is_migrated_in_mix(entry):
        return _redirected(context, entry, status, response)
    return _reached_legacy(context, entry, status, response)


def _ok(
    context: Context, entry: CorpusEntry, status: int, response: http.client.HTTPResponse
) -> str | None:
    return None if status == 200 else f"expected 200, got {status}"


def _upstream_argv(context: Context, port: int) -> list[str]:
    return [sys.executable, "-m", "bench.upstream", "--port", str(port)]


def _reference_argv(kind: str) -> Argv:
    def argv(context: Context, port: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "bench.reference_proxies",
            "--kind",
            kind,
            "--port",
            str(port),
            "--upstream",
            f"http://127.0.0.1:{context.upstream_port}",
        ]

    return argv


def _checked_argv(context: Context, port: int) -> list[str]:
    """`ref-raw-checked` routes the mix scenario's connections by Issuer, as authswitch-mix."""
    connections = context.work_dir / "ref-raw-checked-connections.json"
    connections.write_text(
        json.dumps(
            {
                entry.idp_entity_id: [
                    entry.connection_id,
                    new_provider_url(context, entry) if is_migrated_in_mix(entry) else None,
                ]
                for entry in context.corpus
            }
        )
    )
    return [*_reference_argv("raw-checked")(context, port), "--connections", str(connections)]


def _authswitch_argv(scenario: str, *, before: bool = False) -> Argv:
    def argv(context: Context, port: int) -> list[str]:
        script = context.before_authswitch if before else context.authswitch
        assert script is not None
        config = write_authswitch_config(context, scenario, port)
        serve = [str(script), "serve", "--config", str(config)]
        if scenario != "fallthrough-traced":
            return serve
        # Spans go, in batches, to the bench upstream, which answers 200 to any POST as an
        # OTLP/HTTP collector does: what exporting costs authswitch, not what a collector does.
        endpoint = f"http://127.0.0.1:{context.upstream_port}/v1/traces"
        return ["env", f"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT={endpoint}", *serve]

    return argv


def write_authswitch_config(context: Context, scenario: str, port: int) -> Path:
    """config.yaml + connections.yaml + flags.yaml for one scenario; returns the config path."""
    directory = context.work_dir / f"authswitch-{scenario}"
    directory.mkdir(parents=True, exist_ok=True)
    by_path = scenario.startswith(PATH_PREFIX)
    kind = scenario.removeprefix(PATH_PREFIX)
    mode = "proxy" if kind == "proxy" else "redirect"
    if kind in ("fallthrough", "fallthrough-traced"):
        migrated: list[CorpusEntry] = []
    elif kind == "mix":
        migrated = [entry for entry in context.corpus if is_migrated_in_mix(entry)]
    else:
        migrated = list(context.corpus)
    connections: list[dict[str, object]] = [
        {
            "id": entry.connection_id,
            "protocol": "saml",
            "saml": {"idp_entity_id": entry.idp_entity_id},
            "new_provider": {"url": new_provider_url(context, entry), "mode": mode},
            "assessment": "transparent",
        }
        for entry in sorted(context.corpus, key=lambda e: e.index)
    ]
    flags = {
        "version": 1,
        "salt": "bench",
        "kill_all": False,
        "stage_percent": 0,
        "canary": [],
        "overrides": {entry.connection_id: "on" for entry in migrated},
    }
    config = {
        "listen": {"host": "127.0.0.1", "port": port},
        "legacy": {"url": f"http://127.0.0.1:{context.upstream_port}"},
        "connection_map": "connections.yaml",
        "flags": {"file": "flags.yaml"},
        # passthrough: the callback route is elsewhere, so every request is streamed to legacy
        # as a non-callback request (the bulk of a legacy host's traffic).
        "routes": [
            {"path": PATH_ROUTE, "protocol": "saml", "identify": ["path"]}
            if by_path
            else {
                "path": "/elsewhere/acs" if scenario == "passthrough" else CALLBACK_PATH,
                "protocol": "saml",
                "identify": ["saml_issuer"],
            }
        ],
        "logging": {"level": context.authswitch_log_level},
        # A free port rather than the default, which another process may hold.
        "ops": {"host": "127.0.0.1", "port": free_port()},
    }
    if scenario == "fallthrough-traced":  # only then: a --before checkout may not know the key
        config["tracing"] = {"enabled": True}
    _write_connection_map(directory / "connections.yaml", connections, context)
    for name, document in (("flags.yaml", flags), ("config.yaml", config)):
        (directory / name).write_text(yaml.safe_dump(document, sort_keys=False))
    return directory / "config.yaml"


def _write_connection_map(path: Path, corpus: list[dict[str, object]], context: Context) -> None:
    """The corpus's connections, then filler ones up to `context.map_size`.

    A scenario's map is the same for the whole run (the upstream's port doesn't change), so it
    is written once: 100 000 connections are ~140 MB.
    """
    filler = context.map_size - len(corpus)
    if filler <= 0:
        if context.map_size and filler < 0:
            raise ValueError(f"map size {context.map_size} < the corpus's {len(corpus)} IdPs")
        path.write_text(yaml.safe_dump({"version": 1, "connections": corpus}, sort_keys=False))
        return
    if path.is_file():
        return
    with path.open("w", encoding="utf-8") as out:
        out.write(yaml.safe_dump({"version": 1}, sort_keys=False))
        out.write("connections:\n")
        out.write(yaml.safe_dump(corpus, sort_keys=False))
        out.write(filler_connections(filler))


@functools.cache
def filler_connections(count: int) -> str:
    """`count` connections that no corpus request names, as YAML sequence items.

    Realistic ones, as `bench.connection_map_scale` generates them (two thirds SAML with their
    own Okta-style entity id, certificate, SSO URL, legacy ACS; one third OIDC with their own
    callback path; ids `org000000-saml`, never `conn-*`), each item one JSON flow mapping on a
    line: what YAML reads the same as block style, written in ~1 s rather than ~50 s.
    """
    from bench.connection_map_scale import generate, signing_certificates

    document = generate(count, signing_certificates(8))
    return "".join(f"- {json.dumps(item)}\n" for item in document["connections"])


REFERENCES = (
    Target(
        DIRECT,
        "direct",
        "wrk straight to the upstream (the latency baseline)",
        _upstream_argv,
        _reached_legacy,
    ),
    Target(
        NAIVE,
        "reference",
        "Starlette + request.form() + httpx + StreamingResponse",
        _reference_argv("naive"),
        _reached_legacy,
    ),
    Target(
        RAW_AIOHTTP,
        "reference",
        "minimal raw-ASGI proxy, aiohttp ClientSession",
        _reference_argv("raw-aiohttp"),
        _reached_legacy,
    ),
    Target(
        RAW_HTTPX,
        "reference",
        "the same raw-ASGI proxy with httpx.AsyncClient",
        _reference_argv("raw-httpx"),
        _reached_legacy,
    ),
    Target(
        RAW_HTTPX_AIOHTTP,
        "reference",
        "the same with httpx over httpx-aiohttp's transport",
        _reference_argv("raw-httpx-aiohttp"),
        _reached_legacy,
    ),
    Target(
        RAW_CHECKED,
        "reference",
        "raw-aiohttp doing the mix by hand: Issuer read, 307 or forward, JSON log line, metrics",
        _checked_argv,
        _mixed,
    ),
    Target(
        RAW_NOFORWARD,
        "reference",
        "raw ASGI reading the body, answering 200 itself",
        _reference_argv("raw-noforward"),
        _ok,
    ),
)

AUTHSWITCH = (
    Target(
        "authswitch-fallthrough",
        "authswitch",
        "no connection migrated: every callback identified, then proxied to legacy",
        _authswitch_argv("fallthrough"),
        _reached_legacy,
    ),
    Target(
        "authswitch-fallthrough-traced",
        "authswitch",
        "the same with OpenTelemetry tracing on: 6 spans per callback, exported over OTLP/HTTP",
        _authswitch_argv("fallthrough-traced"),
        _reached_legacy,
    ),
    Target(
        "authswitch-passthrough",
        "authswitch",
        "no callback route matches: every request streamed to legacy unread",
        _authswitch_argv("passthrough"),
        _reached_legacy,
    ),
    Target(
        "authswitch-redirect",
        "authswitch",
        "all migrated, mode redirect: Issuer identified, 307, no upstream call",
        _authswitch_argv("redirect"),
        _redirected,
    ),
    Target(
        "authswitch-proxy",
        "authswitch",
        "all migrated, mode proxy: Issuer identified, proxied to the new provider",
        _authswitch_argv("proxy"),
        _proxied_to_new,
    ),
    Target(
        "authswitch-mix",
        "authswitch",
        "half migrated (307), half proxied to legacy",
        _authswitch_argv("mix"),
        _mixed,
    ),
    Target(
        "authswitch-path-redirect",
        "authswitch",
        "all migrated, mode redirect: identified by path only (/sso/{connection}/acs), 307",
        _authswitch_argv("path-redirect"),
        _redirected,
        by_path=True,
    ),
    Target(
        "authswitch-path-mix",
        "authswitch",
        "identified by path only: half migrated (307), half proxied to legacy",
        _authswitch_argv("path-mix"),
        _mixed,
        by_path=True,
    ),
)


def before_targets() -> tuple[Target, ...]:
    """The authswitch scenarios again, run by the `--before` checkout's console script."""
    return tuple(
        dataclasses.replace(
            target,
            name=f"before-{target.name}",
            argv=_authswitch_argv(target.name.removeprefix("authswitch-"), before=True),
        )
        for target in AUTHSWITCH
    )


def check_target(target: Target, context: Context, port: int) -> list[str]:
    """Send every corpus request once; the problems found (empty when all answers are right)."""
    problems: list[str] = []
    entries, tsv = context.requests(target)
    lines = tsv.read_text(encoding="ascii").splitlines()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for entry, line in zip(entries, lines, strict=True):
            path, body = line.split("\t", 1)
            if path != entry.path:  # the file and its manifest disagree: mint them again
                problems.append(f"{entry.connection_id}: {tsv.name} posts to {path}")
                break
            connection.request(
                "POST",
                path,
                body=body,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            response = connection.getresponse()
            response.read()
            problem = target.check(context, entry, response.status, response)
            if problem:
                problems.append(f"{entry.connection_id}: {problem}")
                if len(problems) >= 3:
                    break
    finally:
        connection.close()
    return problems
