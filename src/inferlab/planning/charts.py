"""Charts of the economics report as plain SVG text (no plotting library).

A tornado chart (one bar per input: the outcome at its low and high value around the base) and a
line chart (cumulative cash month by month for several paths). The output is deterministic: the
same numbers give the same bytes, so the generated files can be checked like the report itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from inferlab.planning.sensitivity import Tornado

LOW_COLOUR, HIGH_COLOUR, AXIS_COLOUR = "#d9534f", "#2b7bb9", "#444444"
LINE_COLOURS = ("#2b7bb9", "#d9534f", "#5cb85c", "#f0ad4e", "#8e44ad")


def _money(value: float) -> str:
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value >= 1e6:
        return f"{sign}${value / 1e6:.2f}M"
    if value >= 1e3:
        return f"{sign}${value / 1e3:.0f}k"
    return f"{sign}${value:.0f}"


def _text(x: float, y: float, body: str, anchor: str = "start", size: int = 12, weight: str = "normal") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" font-weight="{weight}"'
            f' font-family="sans-serif" fill="{AXIS_COLOUR}">{escape(body)}</text>')


def tornado_svg(t: Tornado, width: int = 760) -> str:
    """Bars from the base outcome to the outcome at each input's low (red) and high (blue) value."""
    bars = [b for b in t.bars if b.low is not None or b.high is not None]
    row, top, label_w, right = 34, 56, 190, 60
    height = top + row * len(bars) + 40
    values = [t.base] + [v for b in bars for v in (b.low, b.high) if v is not None]
    lo, hi = min(values), max(values)
    span = (hi - lo) or abs(t.base) or 1.0
    lo, hi = lo - 0.05 * span, hi + 0.05 * span
    plot_w = width - label_w - right

    def x_of(v: float) -> float:
        return label_w + (v - lo) / (hi - lo) * plot_w

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
             '<rect width="100%" height="100%" fill="white"/>',
             _text(width / 2, 20, t.path, "middle", 14, "bold"),
             _text(width / 2, 38, f"{t.outcome}: base {_money(t.base)}; red = input low, blue = input high", "middle", 11)]
    for i, b in enumerate(bars):
        y = top + i * row
        parts.append(_text(label_w - 8, y + 17, b.lever, "end"))
        # the low value's bar and label in the upper half of the row, the high value's in the lower half
        for half, (value, colour, label) in enumerate(((b.low, LOW_COLOUR, b.low_label), (b.high, HIGH_COLOUR, b.high_label))):
            if value is None:
                continue
            x0, x1 = sorted((x_of(t.base), x_of(value)))
            bar_y = y + 4 + half * (row - 10) / 2
            parts.append(f'<rect x="{x0:.1f}" y="{bar_y:.1f}" width="{max(x1 - x0, 1):.1f}" height="{(row - 10) / 2:.1f}"'
                         f' fill="{colour}" fill-opacity="0.8"/>')
            beyond = x_of(value) + (4 if value >= t.base else -4)
            parts.append(_text(beyond, bar_y + 10, f"{label}: {_money(value)}", "start" if value >= t.base else "end", 10))
    base_x = x_of(t.base)
    parts.append(f'<line x1="{base_x:.1f}" y1="{top - 4}" x2="{base_x:.1f}" y2="{top + row * len(bars)}"'
                 f' stroke="{AXIS_COLOUR}" stroke-width="1.5"/>')
    parts.append(_text(base_x, height - 12, f"base {_money(t.base)}", "middle", 11))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def lines_svg(title: str, series: Sequence[tuple[str, Sequence[float]]], y_label: str, width: int = 760,
              height: int = 360) -> str:
    """One line per series over months 1..n, with a zero line."""
    left, right, top, bottom = 80, 190, 40, 40
    n = max(len(values) for _, values in series)
    all_values = [v for _, values in series for v in values] + [0.0]
    lo, hi = min(all_values), max(all_values)
    span = (hi - lo) or 1.0
    plot_w, plot_h = width - left - right, height - top - bottom

    def xy(i: int, v: float) -> tuple[float, float]:
        return left + i / max(n - 1, 1) * plot_w, top + (hi - v) / span * plot_h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
             '<rect width="100%" height="100%" fill="white"/>', _text(width / 2, 20, title, "middle", 14, "bold")]
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        v = lo + frac * span
        _, y = xy(0, v)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#dddddd"/>')
        parts.append(_text(left - 6, y + 4, _money(v), "end", 10))
    _, zero_y = xy(0, 0.0)
    parts.append(f'<line x1="{left}" y1="{zero_y:.1f}" x2="{left + plot_w}" y2="{zero_y:.1f}" stroke="{AXIS_COLOUR}"/>')
    for i in range(0, n, max(1, n // 6)):
        x, _ = xy(i, lo)
        parts.append(_text(x, top + plot_h + 16, f"m{i + 1}", "middle", 10))
    for k, (name, values) in enumerate(series):
        colour = LINE_COLOURS[k % len(LINE_COLOURS)]
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, v) for i, v in enumerate(values)))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts.append(f'<rect x="{left + plot_w + 14}" y="{top + 18 * k}" width="12" height="12" fill="{colour}"/>')
        parts.append(_text(left + plot_w + 32, top + 18 * k + 11, name, size=11))
    parts.append(_text(16, top + plot_h / 2, y_label, "middle", 11).replace("<text ", '<text transform="rotate(-90 16 '
                                                                            f'{top + plot_h / 2:.1f})" ', 1))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
