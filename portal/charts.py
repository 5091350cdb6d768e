"""Charts as inline SVG rendered on the server: nothing for the browser to fetch or run."""

from __future__ import annotations

import math
from collections.abc import Callable

from markupsafe import Markup, escape

# Tick steps in rate units (0.1 to 20 percentage points): the axis uses the first that gives
# at most six ticks.
_STEPS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)


def _rate_axis(low: float, high: float) -> tuple[float, float, float]:
    """A y range (low, high, step) around the rates, on round percentages, within [0, 1]."""
    span = max(high - low, 0.004)
    step = next((s for s in _STEPS if span * 1.4 / s <= 5), _STEPS[-1])
    low = max(0.0, math.floor((low - span * 0.2) / step) * step)
    high = min(1.0, math.ceil((high + span * 0.2) / step) * step)
    if high <= low:
        low, high = max(0.0, high - step), min(1.0, low + step)
    return low, high, step


def line_chart(
    points: list[tuple[str, float]],
    title: str,
    format_rate: Callable[[float], str],
    width: int = 960,
    height: int = 240,
) -> Markup:
    """Rates over run dates: a line with a dot and a label per run."""
    left, right, top, bottom = 64, 16, 16, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    if not points:
        parts.append("</svg>")
        return Markup("".join(parts))
    rates = [rate for _, rate in points]
    low, high, step = _rate_axis(min(rates), max(rates))

    def x(i: int) -> float:
        return left + (plot_w / 2 if len(points) == 1 else plot_w * i / (len(points) - 1))

    def y(rate: float) -> float:
        return top + plot_h * (1 - (rate - low) / (high - low))

    for tick in range(round((high - low) / step) + 1):
        rate = low + step * tick
        parts.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y(rate):.1f}" '
            f'y2="{y(rate):.1f}"/><text class="axis" x="{left - 6}" y="{y(rate) + 4:.1f}" '
            f'text-anchor="end">{escape(format_rate(rate))}</text>'
        )
    path = " ".join(f"{'M' if i == 0 else 'L'}{x(i):.1f},{y(r):.1f}" for i, (_, r) in
                    enumerate(points))
    parts.append(f'<path class="line" d="{path}"/>')
    label_every = max(1, len(points) // 8)
    for i, (run_date, rate) in enumerate(points):
        parts.append(
            f'<circle class="dot" cx="{x(i):.1f}" cy="{y(rate):.1f}" r="3.5">'
            f"<title>{escape(run_date)}: {escape(format_rate(rate))}</title></circle>"
        )
        if i % label_every == 0 or i == len(points) - 1:
            # The outermost dates are anchored inwards so they are never cut off.
            anchor = ("end" if i == len(points) - 1 and len(points) > 1
                      else "start" if i == 0 and len(points) > 1 else "middle")
            parts.append(
                f'<text class="axis" x="{x(i):.1f}" y="{height - bottom + 18}" '
                f'text-anchor="{anchor}">{escape(run_date)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(
    bars: list[tuple[str, float, bool]],
    title: str,
    format_rate: Callable[[float], str],
    width: int = 960,
) -> Markup:
    """Horizontal bars, one per province (label, rate, highlighted), in the order given."""
    left, right, top, row_h = 190, 70, 22, 16
    height = top + 8 + row_h * max(len(bars), 1)
    plot_w = width - left - right
    rates = [rate for _, rate, _ in bars]
    # Rates sit close to 100 %: bars start at a round value below the lowest so differences
    # show, and the axis says where they start.
    low, _, step = _rate_axis(min(rates), max(rates)) if rates else (0.0, 1.0, 0.1)
    parts = [
        f'<svg class="chart bars" role="img" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    tick = low
    while tick <= 1.0 + 1e-9:
        x = left + plot_w * (tick - low) / (1 - low) if low < 1 else left
        parts.append(
            f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{top - 4}" y2="{height - 8}"/>'
            f'<text class="axis" x="{x:.1f}" y="{top - 8}" text-anchor="middle">'
            f"{escape(format_rate(tick))}</text>"
        )
        tick += step * max(1, round((1 - low) / step / 6))
    for i, (name, rate, highlighted) in enumerate(bars):
        y = top + i * row_h
        length = plot_w * (rate - low) / (1 - low) if low < 1 else plot_w
        css = "bar highlight" if highlighted else "bar"
        parts.append(
            f'<text class="axis" x="{left - 6}" y="{y + row_h - 4}" text-anchor="end">'
            f"{escape(name)}</text>"
            f'<rect class="{css}" x="{left}" y="{y + 2}" width="{max(length, 1):.1f}" '
            f'height="{row_h - 4}"><title>{escape(name)}: {escape(format_rate(rate))}</title>'
            f"</rect>"
            f'<text class="axis" x="{left + max(length, 1) + 4:.1f}" y="{y + row_h - 4}">'
            f"{escape(format_rate(rate))}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))
