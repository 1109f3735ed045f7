"""What the benchmark measures: the direct upstream, the reference proxies, authswitch's modes.

Each target knows how to start (argv for a port), what a correct answer to each corpus request
looks like (checked on every request before any load), and, for authswitch, writes the config,
connection map and flags file of its scenario.
"""

from __future__ import annotations

import dataclasses
import http.client
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.processes import free_port
from bench.saml_corpus import CALLBACK_PATH, CorpusEntry, is_migrated_in_mix

DIRECT = "direct"
NAIVE = "ref-naive"
RAW_AIOHTTP = "ref-raw-aiohttp"
RAW_HTTPX = "ref-raw-httpx"
RAW_HTTPX_AIOHTTP = "ref-raw-httpx-aiohttp"
RAW_NOFORWARD = "ref-raw-noforward"
AUTHSWITCH_SCENARIOS = ("fallthrough", "passthrough", "redirect", "proxy", "mix")


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


Check = Callable[[Context, CorpusEntry, int, http.client.HTTPResponse], str | None]
Argv = Callable[[Context, int], list[str]]


@dataclass(frozen=True)
class Target:
    name: str
    group: str  # "direct" | "reference" | "authswitch"
    description: str
    argv: Argv
    check: Check


def new_provider_url(context: Context, entry: CorpusEntry) -> str:
    return f"http://127.0.0.1:{context.upstream_port}/new/{entry.connection_id}/acs"


def _reached_legacy(
    context: Context, entry: CorpusEntry, status: int, response: http.client.HTTPResponse
) -> str | None:
    path = response.getheader("x-bench-path")
    if status != 200 or path != CALLBACK_PATH:
        return f"expected 200 from legacy {CALLBACK_PATH}, got {status} from {path}"
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
    mode = "proxy" if scenario == "proxy" else "redirect"
    if scenario in ("fallthrough", "fallthrough-traced"):
        migrated: list[CorpusEntry] = []
    elif scenario == "mix":
        migrated = [entry for entry in context.corpus if is_migrated_in_mix(entry)]
    else:
        migrated = list(context.corpus)
    connections = {
        "version": 1,
        "connections": [
            {
                "id": entry.connection_id,
                "protocol": "saml",
                "saml": {"idp_entity_id": entry.idp_entity_id},
                "new_provider": {"url": new_provider_url(context, entry), "mode": mode},
                "assessment": "transparent",
            }
            for entry in sorted(context.corpus, key=lambda e: e.index)
        ],
    }
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
            {
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
    for name, document in (
        ("connections.yaml", connections),
        ("flags.yaml", flags),
        ("config.yaml", config),
    ):
        (directory / name).write_text(yaml.safe_dump(document, sort_keys=False))
    return directory / "config.yaml"


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
    lines = context.corpus_tsv.read_text(encoding="ascii").splitlines()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for entry, line in zip(context.corpus, lines, strict=True):
            path, body = line.split("\t", 1)
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
