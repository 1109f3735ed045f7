"""A small server-rendered SVG chart: callbacks per minute and success per side over time.

No script and no style attribute (the CSP allows neither): the sides differ by line pattern
and label as well as by colour.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from proxy.console.page import esc

_WIDTH, _HEIGHT, _PAD = 640, 150, 36


@dataclass(frozen=True, slots=True)
class MinuteCounts:
    minute: int
    """Minutes since the epoch."""
    legacy_calls: int
    new_calls: int
    legacy_ok: int
    legacy_failed: int
    new_ok: int
    new_failed: int


def outcome_charts(minutes: Sequence[MinuteCounts]) -> str:
    if not minutes or not any(m.legacy_calls or m.new_calls for m in minutes):
        return '<p class="nodata">No callbacks counted in this window: no data to chart.</p>'
    calls = _chart(
        "Callbacks per minute",
        minutes,
        [("legacy", [m.legacy_calls for m in minutes]), ("new", [m.new_calls for m in minutes])],
        None,
    )
    success = _chart(
        "Success rate per minute (%)",
        minutes,
        [
            ("legacy", [_rate(m.legacy_ok, m.legacy_failed) for m in minutes]),
            ("new", [_rate(m.new_ok, m.new_failed) for m in minutes]),
        ],
        100.0,
    )
    return calls + success


def _rate(ok: int, failed: int) -> float | None:
    total = ok + failed
    return 100.0 * ok / total if total else None


def _chart(
    title: str,
    minutes: Sequence[MinuteCounts],
    series: list[tuple[str, list[int] | list[float | None]]],
    top: float | None,
) -> str:
    values = [v for _, points in series for v in points if v is not None]
    ceiling = top if top is not None else max(max(values, default=0), 1)
    span = max(len(minutes) - 1, 1)

    def x(i: int) -> float:
        return _PAD + i * (_WIDTH - 2 * _PAD) / span

    def y(v: float) -> float:
        return _HEIGHT - _PAD + -(v / ceiling) * (_HEIGHT - 2 * _PAD)

    lines = []
    for side, points in series:
        coords = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(points) if v is not None)
        dash = ' stroke-dasharray="6 4"' if side == "new" else ""
        colour = "#1f5fa8" if side == "new" else "#6b6b6b"
        lines.append(
            f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"{dash}>'
            f"<title>{side}</title></polyline>"
        )
    total = {side: sum(v for v in points if v is not None) for side, points in series}
    summary = "; ".join(f"{side}: {v:g}" for side, v in total.items())
    return (
        f'<figure><svg role="img" viewBox="0 0 {_WIDTH} {_HEIGHT}" width="100%" '
        f'aria-label="{esc(title)}"><title>{esc(title)}</title>'
        f'<line x1="{_PAD}" y1="{_HEIGHT - _PAD}" x2="{_WIDTH - _PAD}" y2="{_HEIGHT - _PAD}" '
        'stroke="#999"/>'
        f'<text x="4" y="{_PAD - 6}" font-size="11">{ceiling:g}</text>'
        f'<text x="4" y="{_HEIGHT - _PAD}" font-size="11">0</text>'
        + "".join(lines)
        + f'<text x="{_WIDTH - 160}" y="14" font-size="11">legacy: solid grey</text>'
        + f'<text x="{_WIDTH - 160}" y="28" font-size="11">new: dashed blue</text>'
        + f"</svg><figcaption>{esc(title)} over {len(minutes)} minutes"
        + (f" (totals: {esc(summary)})" if top is None else "")
        + "</figcaption></figure>"
    )
