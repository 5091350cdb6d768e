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
    label_every = max(1, math.ceil(len(points) / 6))  # at most about six dates
    for i, (run_date, rate) in enumerate(points):
        parts.append(
            f'<circle class="dot" cx="{x(i):.1f}" cy="{y(rate):.1f}" r="3.5">'
            f"<title>{escape(run_date)}: {escape(format_rate(rate))}</title></circle>"
        )
        last = i == len(points) - 1
        # a label every few runs, none so close to the last one's that they overlap
        if last or (i % label_every == 0 and len(points) - 1 - i >= max(label_every * 0.7, 1)):
            # The outermost dates are anchored inwards so they are never cut off.
            anchor = ("end" if last and len(points) > 1
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
    target: float | None = None,
    target_label: str = "",
) -> Markup:
    """Horizontal bars, one per province (label, rate, highlighted), in the order given, on an
    axis from 0 to 100 % so that a bar's length is its rate; ``target``: a marked line."""
    left, right, top, row_h = 190, 70, 22, 16
    height = top + 8 + row_h * max(len(bars), 1)
    plot_w = width - left - right
    parts = [
        f'<svg class="chart bars" role="img" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for tick in range(0, 11, 2):
        x = left + plot_w * tick / 10
        parts.append(
            f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{top - 4}" y2="{height - 8}"/>'
            f'<text class="axis" x="{x:.1f}" y="{top - 8}" text-anchor="middle">'
            f"{escape(format_rate(tick / 10))}</text>"
        )
    for i, (name, rate, highlighted) in enumerate(bars):
        y = top + i * row_h
        length = plot_w * min(max(rate, 0.0), 1.0)
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
    if target is not None:
        x = left + plot_w * target
        parts.append(
            f'<line class="target" x1="{x:.1f}" x2="{x:.1f}" y1="{top - 4}" y2="{height - 8}">'
            f"<title>{escape(target_label)}</title></line>")
    parts.append("</svg>")
    return Markup("".join(parts))


def sparkline(
    points: list[tuple[str, float]],
    low: float,
    high: float,
    title: str,
    width: int = 120,
    height: int = 28,
) -> Markup:
    """A province's rates over recent nights as a small line, on the scale ``low``-``high``
    shared by every row (so two sparklines compare), the last night marked."""
    parts = [f'<svg class="spark" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
             f"<title>{escape(title)}</title>"]
    if points:
        pad = 3
        span = max(high - low, 1e-9)

        def x(i: int) -> float:
            return pad + (width - 2 * pad) * (i / (len(points) - 1) if len(points) > 1 else 1)

        def y(rate: float) -> float:
            return pad + (height - 2 * pad) * (1 - (min(max(rate, low), high) - low) / span)

        path = " ".join(f"{'M' if i == 0 else 'L'}{x(i):.1f},{y(r):.1f}"
                        for i, (_, r) in enumerate(points))
        parts.append(f'<path class="line" d="{path}"/>')
        parts.append(f'<circle class="dot" cx="{x(len(points) - 1):.1f}" '
                     f'cy="{y(points[-1][1]):.1f}" r="2.5"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


# Colour steps of the tile map, worst to best: rates below the first bound get the first colour.
MAP_COLOURS = ("#b42318", "#e4572e", "#f0a030", "#f4d35e", "#9fd49b", "#3f9f5a", "#1a6b3c")


def map_bounds(rates: list[float]) -> list[float]:
    """Six bounds cutting the span of the rates shown into seven equal steps: the lowest
    province gets the first colour, the highest the last, whatever the national level."""
    low, high = (min(rates), max(rates)) if rates else (0.5, 1.0)
    if high - low < 1e-6:
        low, high = low - 0.005, high + 0.005
    return [low + (high - low) * i / 7 for i in range(1, 7)]


def tile_map(
    tiles: dict[str, tuple[int, int]],
    values: dict[str, float],
    labels: dict[str, str],
    title: str,
    format_rate: Callable[[float], str],
    links: dict[str, str] | None = None,
    size: int = 30,
    highlighted: str | None = None,
) -> Markup:
    """One square per province at its tile position (row, column), coloured by its rate, with
    its code; a legend of the colour steps. Provinces without a value are grey; the
    ``highlighted`` one (an office's own) is outlined."""
    bounds = map_bounds(list(values.values()))
    rows = max(r for r, _ in tiles.values()) + 1
    cols = max(c for _, c in tiles.values()) + 1
    gap, legend_w = 2, 150
    width, height = cols * (size + gap) + legend_w, rows * (size + gap)
    parts = [f'<svg class="chart map" role="img" viewBox="0 0 {width} {height}" '
             f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>']
    for code, (row, col) in sorted(tiles.items()):
        x, y = col * (size + gap), row * (size + gap)
        rate = values.get(code)
        colour = "#d0d5db" if rate is None else MAP_COLOURS[sum(rate >= b for b in bounds)]
        text = "#fff" if rate is not None and sum(rate >= b for b in bounds) in (0, 1, 5, 6) \
            else "#1d2733"
        label = f"{code} {labels.get(code, code)}: " + ("–" if rate is None else format_rate(rate))
        css = "tile own" if code == highlighted else "tile"
        tile = (f'<rect class="{css}" x="{x}" y="{y}" width="{size}" height="{size}" rx="3" '
                f'fill="{colour}" data-code="{code}"><title>{escape(label)}</title></rect>'
                f'<text class="tile-code" x="{x + size / 2}" y="{y + size / 2 + 4}" '
                f'text-anchor="middle" fill="{text}">{escape(code)}</text>')
        href = (links or {}).get(code)
        parts.append(f'<a href="{escape(href)}">{tile}</a>' if href else tile)
    x0 = cols * (size + gap) + 12
    edges = [None, *bounds, None]
    for i, colour in enumerate(reversed(MAP_COLOURS)):
        step = len(MAP_COLOURS) - 1 - i
        lo, hi = edges[step], edges[step + 1]
        text = (f"≥ {format_rate(lo)}" if hi is None else f"< {format_rate(hi)}" if lo is None
                else f"{format_rate(lo)} – {format_rate(hi)}")
        y = 4 + i * 18
        parts.append(f'<rect x="{x0}" y="{y}" width="14" height="14" rx="2" fill="{colour}"/>'
                     f'<text class="axis" x="{x0 + 20}" y="{y + 11}">{escape(text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def waterfall(steps: list[tuple[str, float]], title: str, total_label: str,
              width: int = 720) -> Markup:
    """A match weight built up field by field, the way Splink's waterfall explains one: a bar
    per step (label, weight in bits) starting where the previous one ended, green when it adds,
    red when it takes away, then the total from zero. Bits: each one doubles the odds."""
    ends = [0.0]
    for _, weight in steps:
        ends.append(ends[-1] + weight)
    low, high = min(0.0, *ends), max(0.0, *ends)
    span = max(high - low, 1.0)
    left, right, top, row_h = 230, 60, 10, 22
    rows = [*steps, (total_label, ends[-1])]
    height = top + 10 + row_h * len(rows)
    plot_w = width - left - right

    def x(value: float) -> float:
        return left + plot_w * (value - low) / span

    parts = [
        f'<svg class="chart waterfall" role="img" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>',
        f'<line class="grid" x1="{x(0):.1f}" x2="{x(0):.1f}" y1="{top}" y2="{height - 8}"/>',
    ]
    for i, (label, weight) in enumerate(rows):
        total = i == len(steps)
        start = 0.0 if total else ends[i]
        end = weight if total else ends[i + 1]
        y = top + i * row_h
        css = "total" if total else "adds" if weight >= 0 else "takes"
        x0, x1 = sorted((x(start), x(end)))
        parts.append(
            f'<text class="axis" x="{left - 6}" y="{y + row_h - 7}" text-anchor="end">'
            f"{escape(label)}</text>"
            f'<rect class="step {css}" x="{x0:.1f}" y="{y + 3}" width="{max(x1 - x0, 1):.1f}" '
            f'height="{row_h - 6}"><title>{escape(label)}: {weight:+.2f}</title></rect>'
            f'<text class="axis" x="{x1 + 4:.1f}" y="{y + row_h - 7}">{weight:+.2f}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
