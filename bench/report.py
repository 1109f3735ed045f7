"""Turning the rounds' measurements into medians, same-round ratios, tables and goal checks.

Ratios and added latencies are computed within each round (targets of one round ran minutes
apart, interleaved), then the median over rounds is reported: drift on a shared machine cancels
out of a ratio far better than out of absolute figures.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import median

from bench.load import LoadResult
from bench.targets import DIRECT, NAIVE, RAW_AIOHTTP, RAW_HTTPX, RAW_HTTPX_AIOHTTP, RAW_NOFORWARD


@dataclass(frozen=True)
class Phase:
    """One wrk phase and the server's CPU time over it."""

    load: LoadResult
    cpu_seconds: float

    @property
    def cpu_us_per_request(self) -> float:
        return self.cpu_seconds * 1e6 / self.load.requests if self.load.requests else 0.0


@dataclass(frozen=True)
class Measurement:
    """A target's low-load (c=1) and high-load phases in one round."""

    low: Phase
    high: Phase


Rounds = list[dict[str, Measurement]]  # one dict per round: target name -> measurement


def _per_round(rounds: Rounds, name: str, value: Callable[[Measurement], float]) -> float | None:
    values = [value(r[name]) for r in rounds if name in r]
    return median(values) if values else None


def _relative(
    rounds: Rounds, name: str, reference: str, value: Callable[[Measurement, Measurement], float]
) -> float | None:
    values = [value(r[name], r[reference]) for r in rounds if name in r and reference in r]
    return median(values) if values else None


@dataclass(frozen=True)
class Row:
    name: str
    rps: float | None
    p50_us: float | None
    p99_us: float | None
    x_raw: float | None
    x_naive: float | None
    cpu_x_raw: float | None  # reference CPU µs/req / this target's: noise-robust efficiency
    cpu_x_naive: float | None
    cpu_of_raw: float | None  # this target's CPU µs/req / the reference's (lower is better)
    low_p50_us: float | None
    low_p99_us: float | None
    added_p50_us: float | None
    cpu_us: float | None
    errors: int


def summarize(rounds: Rounds, names: Sequence[str]) -> list[Row]:
    rows = []
    for name in names:
        if not any(name in r for r in rounds):
            continue
        rows.append(
            Row(
                name=name,
                rps=_per_round(rounds, name, lambda m: m.high.load.rps),
                p50_us=_per_round(rounds, name, lambda m: m.high.load.p50_us),
                p99_us=_per_round(rounds, name, lambda m: m.high.load.p99_us),
                x_raw=_relative(rounds, name, RAW_AIOHTTP, _rps_ratio),
                x_naive=_relative(rounds, name, NAIVE, _rps_ratio),
                cpu_x_raw=_relative(rounds, name, RAW_AIOHTTP, _cpu_ratio),
                cpu_x_naive=_relative(rounds, name, NAIVE, _cpu_ratio),
                cpu_of_raw=_relative(rounds, name, RAW_AIOHTTP, lambda m, r: 1 / _cpu_ratio(m, r)),
                low_p50_us=_per_round(rounds, name, lambda m: m.low.load.p50_us),
                low_p99_us=_per_round(rounds, name, lambda m: m.low.load.p99_us),
                added_p50_us=_relative(rounds, name, DIRECT, _added_p50),
                cpu_us=_per_round(rounds, name, lambda m: m.high.cpu_us_per_request),
                errors=sum(
                    r[name].low.load.errors + r[name].high.load.errors for r in rounds if name in r
                ),
            )
        )
    return rows


def _rps_ratio(m: Measurement, reference: Measurement) -> float:
    return m.high.load.rps / reference.high.load.rps


def _cpu_ratio(m: Measurement, reference: Measurement) -> float:
    return reference.high.cpu_us_per_request / m.high.cpu_us_per_request


def _added_p50(m: Measurement, reference: Measurement) -> float:
    return m.low.load.p50_us - reference.low.load.p50_us


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "n/a" if value is None else format(value, spec) + suffix


def main_table(rows: Sequence[Row], high_connections: int) -> str:
    c = high_connections
    lines = [
        f"| target | req/s (c={c}) | p50 (c={c}) | p99 (c={c}) | x raw-ASGI+aiohttp | x naive "
        "| p50 (c=1) | p99 (c=1) | added p50 over direct (c=1) | server CPU µs/req |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.name}{f' (errors: {row.errors})' if row.errors else ''} "
            f"| {_fmt(row.rps, ',.0f')} | {_fmt(_ms(row.p50_us), '.2f', ' ms')} "
            f"| {_fmt(_ms(row.p99_us), '.2f', ' ms')} | {_fmt(row.x_raw, '.2f')} "
            f"| {_fmt(row.x_naive, '.1f')} | {_fmt(row.low_p50_us, '.0f', ' µs')} "
            f"| {_fmt(row.low_p99_us, '.0f', ' µs')} | {_fmt(row.added_p50_us, '+.0f', ' µs')} "
            f"| {_fmt(row.cpu_us, '.0f')} |"
        )
    return "\n".join(lines)


def client_table(rounds: Rounds) -> str:
    """What each HTTP client adds on top of the same raw-ASGI app that answers by itself."""
    lines = [
        "| client (raw-ASGI proxy) | req/s (high) | CPU µs/req | client CPU µs/req "
        "(minus no-forward app) | added p50 over direct (c=1) | added p50 over no-forward (c=1) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    clients = (
        (RAW_AIOHTTP, "aiohttp"),
        (RAW_HTTPX_AIOHTTP, "httpx + httpx-aiohttp transport"),
        (RAW_HTTPX, "httpx"),
    )
    for name, label in clients:
        if not any(name in r for r in rounds):
            lines.append(f"| {label} | skipped | | | | |")
            continue
        client_cpu = _relative(
            rounds,
            name,
            RAW_NOFORWARD,
            lambda m, ref: m.high.cpu_us_per_request - ref.high.cpu_us_per_request,
        )
        lines.append(
            f"| {label} | {_fmt(_per_round(rounds, name, lambda m: m.high.load.rps), ',.0f')} "
            f"| {_fmt(_per_round(rounds, name, lambda m: m.high.cpu_us_per_request), '.0f')} "
            f"| {_fmt(client_cpu, '.0f')} "
            f"| {_fmt(_relative(rounds, name, DIRECT, _added_p50), '+.0f', ' µs')} "
            f"| {_fmt(_relative(rounds, name, RAW_NOFORWARD, _added_p50), '+.0f', ' µs')} |"
        )
    return "\n".join(lines)


def goals(rows: Sequence[Row]) -> list[str]:
    """The issue's goals, each with the measured figure and PASS / FAIL / n/a."""
    by_name = {row.name: row for row in rows}

    def check(label: str, name: str, attr: str, op: str, limit: float, unit: str) -> str:
        row = by_name.get(name)
        value = getattr(row, attr) if row else None
        if value is None:
            return f"n/a   {label}: not measured"
        ok = value >= limit if op == ">=" else value <= limit
        line = f"{'PASS' if ok else 'FAIL'}  {label}: {value:.2f}{unit} ({op} {limit:g}{unit})"
        by_cpu = getattr(row, "cpu_" + attr, None)
        if by_cpu is not None:
            line += f"; by CPU µs/req: {by_cpu:.2f}x"
        return line

    return [
        check("mixed (Issuer) vs raw-ASGI+aiohttp", "authswitch-mix", "x_raw", ">=", 1.0, "x"),
        check(
            "pass-through vs raw-ASGI+aiohttp", "authswitch-passthrough", "x_raw", ">=", 1.0, "x"
        ),
        check("fall-through vs naive", "authswitch-fallthrough", "x_naive", ">=", 10, "x"),
        check("redirect (Issuer) vs naive", "authswitch-redirect", "x_naive", ">=", 10, "x"),
        check("redirect added p50 (c=1)", "authswitch-redirect", "added_p50_us", "<=", 150, " µs"),
        check("proxy added p50 (c=1)", "authswitch-proxy", "added_p50_us", "<=", 250, " µs"),
        check(
            "identification by path only (path-mix), CPU µs/req vs raw-ASGI+aiohttp's",
            "authswitch-path-mix",
            "cpu_of_raw",
            "<=",
            0.8,
            "x",
        ),
    ]


def _ms(us: float | None) -> float | None:
    return None if us is None else us / 1000
