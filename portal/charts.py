"""Charts as inline SVG rendered on the server: nothing for the browser to fetch or run."""

from __future__ import annotations

from collections.abc import Callable

from markupsafe import Markup, escape


def _rate_axis(low: float, high: float) -> tuple[float, float]:
    """A y range around the rates, padded and rounded to whole percentage points."""
    span = max(high - low, 0.01)
    low = max(0.0, int((low - span * 0.2) * 100) / 100)
    high = min(1.0, (int((high + span * 0.2) * 100) + 1) / 100)
    return low, high


def line_chart(
    points: list[tuple[str, float]],
    title: str,
    format_rate: Callable[[float], str],
    width: int = 640,
    height: int = 220,
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
    low, high = _rate_axis(min(rates), max(rates))

    def x(i: int) -> float:
        return left + (plot_w / 2 if len(points) == 1 else plot_w * i / (len(points) - 1))

    def y(rate: float) -> float:
        return top + plot_h * (1 - (rate - low) / (high - low))

    for tick in range(5):
        rate = low + (high - low) * tick / 4
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
            parts.append(
                f'<text class="axis" x="{x(i):.1f}" y="{height - bottom + 18}" '
                f'text-anchor="middle">{escape(run_date)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(
    bars: list[tuple[str, float, bool]],
    title: str,
    format_rate: Callable[[float], str],
    width: int = 640,
) -> Markup:
    """Horizontal bars, one per province (label, rate, highlighted), in the order given."""
    left, right, top, row_h = 170, 70, 8, 16
    height = top * 2 + row_h * max(len(bars), 1)
    plot_w = width - left - right
    rates = [rate for _, rate, _ in bars]
    low = _rate_axis(min(rates), max(rates))[0] if rates else 0.0
    parts = [
        f'<svg class="chart bars" role="img" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
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
