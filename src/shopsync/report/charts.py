"""SVG charts drawn in Python: no script, no external font or image, so a report opens offline.

Each function returns one ``<svg>`` element as :class:`markupsafe.Markup`, with every piece
of text escaped, a ``<title>`` for screen readers, ``id`` and ``data-chart`` attributes the
browser test looks for, and a ``<title>`` on each mark that the browser shows as a tooltip.
Sizes are in viewBox units; the page's CSS makes the SVG as wide as its column.
Colours are the Okabe-Ito palette, which stays distinguishable with colour-blindness.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from markupsafe import Markup, escape

__all__ = [
    "PALETTE",
    "bars",
    "columns",
    "heatmap",
    "intervals",
    "lines",
    "shares",
]

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#555555")
_INK, _MUTED, _GRID = "#1f2933", "#616e7c", "#e4e7eb"
_LOW, _HIGH = (0xF2, 0xF7, 0xFC), (0x08, 0x45, 0x94)


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _text(x: float, y: float, content: object, *, anchor: str = "start", cls: str = "") -> str:
    attrs = f' class="{cls}"' if cls else ""
    return (
        f'<text x="{_num(x)}" y="{_num(y)}" text-anchor="{anchor}"{attrs}>'
        f"{escape(str(content))}</text>"
    )


def _rect(x: float, y: float, w: float, h: float, fill: str, tip: str, extra: str = "") -> str:
    return (
        f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(max(w, 0.0))}" '
        f'height="{_num(max(h, 0.0))}" fill="{fill}"{extra}><title>{escape(tip)}</title></rect>'
    )


def _svg(chart_id: str, kind: str, label: str, width: int, height: int, body: list[str]) -> Markup:
    return Markup(
        f'<svg id="{escape(chart_id)}" data-chart="{escape(kind)}" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" preserveAspectRatio="xMinYMin meet">'
        f"<title>{escape(label)}</title>" + "".join(body) + "</svg>"
    )


def nice_max(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is at least ``value``."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return float(step * power)
    return float(10 * power)


def _ticks(top: float, count: int | None = None) -> list[float]:
    """Gridline values from 0 to ``top`` (a :func:`nice_max`), on round steps."""
    if count is None:
        lead = top / 10 ** math.floor(math.log10(top)) if top > 0 else 1.0
        count = 4 if math.isclose(lead, 2.0) else 5
    return [top * i / count for i in range(count + 1)]


def blend(share: float) -> str:
    """A colour from pale to deep blue for ``share`` in [0, 1]."""
    s = min(max(share, 0.0), 1.0)
    r, g, b = (round(lo + (hi - lo) * s) for lo, hi in zip(_LOW, _HIGH, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def heatmap(
    chart_id: str,
    label: str,
    rows: Sequence[str],
    columns: Sequence[str],
    values: Sequence[Sequence[float | None]],
    *,
    row_notes: Sequence[str] = (),
) -> Markup:
    """A grid of shares (0-1) shaded from pale to deep blue; None cells are left blank."""
    left, top, cell_w, cell_h = 128, 34, 46, 24
    width = left + cell_w * len(columns) + 12
    height = top + cell_h * len(rows) + 44
    seen = [v for row in values for v in row if v is not None]
    scale = max(seen, default=0.0) or 1.0
    body = [
        _text(left + cell_w * i + cell_w / 2, top - 10, c, anchor="middle", cls="axis")
        for i, c in enumerate(columns)
    ]
    for j, (name, row) in enumerate(zip(rows, values, strict=True)):
        y = top + cell_h * j
        body.append(_text(left - 8, y + cell_h / 2 + 4, name, anchor="end", cls="axis"))
        note = row_notes[j] if j < len(row_notes) else ""
        for i, value in enumerate(row):
            x = left + cell_w * i
            if value is None:
                continue
            tip = f"{name}{note}, {columns[i]}: {value:.1%}"
            body.append(_rect(x + 1, y + 1, cell_w - 2, cell_h - 2, blend(value / scale), tip))
            dark = value / scale > 0.55
            body.append(
                _text(
                    x + cell_w / 2,
                    y + cell_h / 2 + 4,
                    f"{value:.0%}",
                    anchor="middle",
                    cls="cell light" if dark else "cell",
                )
            )
    legend_y = top + cell_h * len(rows) + 16
    for k in range(6):
        share = k / 5
        body.append(_rect(left + k * 34, legend_y, 34, 10, blend(share), f"{share * scale:.0%}"))
    body.append(_text(left - 8, legend_y + 9, "0%", anchor="end", cls="axis"))
    body.append(_text(left + 6 * 34 + 6, legend_y + 9, f"{scale:.0%}", cls="axis"))
    return _svg(chart_id, "heatmap", label, width, height, body)


def bars(
    chart_id: str,
    label: str,
    items: Sequence[tuple[str, float]],
    *,
    fmt: Callable[[float], str] = lambda v: f"{v:,.0f}",
    colour: str = PALETTE[0],
    colours: Sequence[str] = (),
) -> Markup:
    """Horizontal bars, one per (name, value), with the value written at the end."""
    left, top, bar_h, plot_w = 150, 8, 22, 330
    width, height = left + plot_w + 90, top + bar_h * len(items) + 8
    top_value = max((v for _, v in items), default=0.0) or 1.0
    body = [f'<line x1="{left}" y1="{top - 4}" x2="{left}" y2="{height - 4}" stroke="{_MUTED}"/>']
    for j, (name, value) in enumerate(items):
        y = top + bar_h * j
        w = plot_w * value / top_value
        fill = colours[j % len(colours)] if colours else colour
        body.append(_text(left - 8, y + bar_h / 2 + 4, name, anchor="end", cls="axis"))
        body.append(_rect(left, y + 3, w, bar_h - 6, fill, f"{name}: {fmt(value)}"))
        body.append(_text(left + w + 6, y + bar_h / 2 + 4, fmt(value), cls="value"))
    return _svg(chart_id, "bars", label, width, height, body)


def shares(
    chart_id: str, label: str, parts: Sequence[tuple[str, float, str]], *, unit: str = ""
) -> Markup:
    """One bar split into parts (name, amount, tooltip detail), with a legend below."""
    left, width, bar_w = 10, 580, 560
    total = sum(v for _, v, _ in parts) or 1.0
    body = []
    x = float(left)
    for j, (name, value, detail) in enumerate(parts):
        w = bar_w * value / total
        body.append(_rect(x, 8, w, 30, PALETTE[j % len(PALETTE)], f"{name}: {detail}"))
        x += w
    for j, (name, value, detail) in enumerate(parts):
        y = 62 + 20 * j
        body.append(_rect(left, y - 10, 12, 12, PALETTE[j % len(PALETTE)], name))
        body.append(_text(left + 18, y, f"{name}: {value:,.0f}{unit} ({detail})", cls="value"))
    return _svg(chart_id, "shares", label, width, 62 + 20 * len(parts), body)


def _legend(names: Sequence[str], x: float, y: float, colours: Sequence[str]) -> list[str]:
    """Three keys a row, columns as wide as the longest name (about 6.5 units a letter)."""
    out = []
    pitch = 30 + 6.5 * max((len(n) for n in names), default=0)
    for j, name in enumerate(names):
        row, col = divmod(j, 3)
        lx, ly = x + col * pitch, y + row * 18
        out.append(_rect(lx, ly - 10, 12, 12, colours[j % len(colours)], name))
        out.append(_text(lx + 18, ly, name, cls="axis"))
    return out


def columns(
    chart_id: str,
    label: str,
    x_labels: Sequence[str],
    series: Mapping[str, Sequence[int]],
    *,
    every: int = 7,
) -> Markup:
    """Stacked columns, one per x label, one colour per series, labelled every ``every``."""
    left, top, plot_h, col_w = 44, 12, 200, 19
    width = left + col_w * len(x_labels) + 16
    legend_rows = math.ceil(len(series) / 3)
    height = top + plot_h + 34 + 18 * legend_rows
    totals = [sum(s[i] for s in series.values()) for i in range(len(x_labels))]
    top_value = nice_max(max(totals, default=0))
    body = []
    for tick in _ticks(top_value):
        y = top + plot_h - plot_h * tick / top_value
        body.append(
            f'<line x1="{left}" y1="{_num(y)}" x2="{width - 10}" y2="{_num(y)}" stroke="{_GRID}"/>'
        )
        body.append(_text(left - 6, y + 4, f"{tick:,.0f}", anchor="end", cls="axis"))
    for i, name in enumerate(x_labels):
        x = left + col_w * i
        base = 0
        for j, (kind, counts) in enumerate(series.items()):
            n = counts[i]
            if n:
                y0 = top + plot_h - plot_h * (base + n) / top_value
                tip = f"{name}: {kind} {n:,}"
                body.append(_rect(x + 2, y0, col_w - 4, plot_h * n / top_value, PALETTE[j], tip))
            base += n
        if i % every == 0 or i == len(x_labels) - 1:
            body.append(_text(x + col_w / 2, top + plot_h + 16, name, anchor="middle", cls="axis"))
    body.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" '
        f'stroke="{_MUTED}"/>'
    )
    body += _legend(list(series), left, top + plot_h + 40, PALETTE)
    return _svg(chart_id, "columns", label, width, height, body)


def lines(
    chart_id: str,
    label: str,
    x_labels: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    fmt: Callable[[float], str],
    axis_fmt: Callable[[float], str] | None = None,
    top_value: float | None = None,
) -> Markup:
    """Lines with a dot per point (None breaks the line); y from 0 to ``top_value``.
    ``fmt`` writes the values in tooltips, ``axis_fmt`` (default ``fmt``) the y axis."""
    left, top, plot_w, plot_h = 86, 12, 480, 200
    width, height = left + plot_w + 30, top + plot_h + 56
    axis_fmt = axis_fmt or fmt
    seen = [v for s in series.values() for v in s if v is not None]
    top_value = top_value or nice_max(max(seen, default=0.0))
    step = plot_w / max(len(x_labels) - 1, 1)
    body = []
    for tick in _ticks(top_value):
        y = top + plot_h - plot_h * tick / top_value
        body.append(
            f'<line x1="{left}" y1="{_num(y)}" x2="{left + plot_w}" y2="{_num(y)}" '
            f'stroke="{_GRID}"/>'
        )
        body.append(_text(left - 6, y + 4, axis_fmt(tick), anchor="end", cls="axis"))
    for i, name in enumerate(x_labels):
        if (len(x_labels) - 1 - i) % 2 == 0:  # every other month, the latest always
            x = left + step * i
            body.append(_text(x, top + plot_h + 16, name, anchor="middle", cls="axis"))
    for j, (name, values) in enumerate(series.items()):
        colour = PALETTE[j % len(PALETTE)]
        runs: list[list[str]] = [[]]
        dots = []
        for i, value in enumerate(values):
            if value is None:
                runs.append([])
                continue
            x, y = left + step * i, top + plot_h - plot_h * value / top_value
            runs[-1].append(f"{_num(x)},{_num(y)}")
            dots.append(
                f'<circle cx="{_num(x)}" cy="{_num(y)}" r="3.5" fill="{colour}">'
                f"<title>{escape(f'{name}, {x_labels[i]}: {fmt(value)}')}</title></circle>"
            )
        for run in runs:
            if len(run) > 1:
                body.append(
                    f'<polyline points="{" ".join(run)}" fill="none" stroke="{colour}" '
                    f'stroke-width="2.5"/>'
                )
        body += dots
    body += _legend(list(series), left, top + plot_h + 42, PALETTE)
    return _svg(chart_id, "lines", label, width, height, body)


def intervals(
    chart_id: str,
    label: str,
    rows: Sequence[tuple[str, float, float, float]],
    *,
    low: float,
    high: float,
    fmt: Callable[[float], str],
    reference: float | None = None,
) -> Markup:
    """A dot and its interval per row (name, point, low, high) on one axis from ``low`` to
    ``high``; ``reference`` draws a dashed line (e.g. zero difference)."""
    left, top, plot_w, row_h = 170, 10, 380, 34
    width, height = left + plot_w + 30, top + row_h * len(rows) + 30

    def x_of(v: float) -> float:
        return left + plot_w * (v - low) / ((high - low) or 1.0)

    body = []
    step = nice_max((high - low) / 5)
    first = math.ceil(low / step - 1e-9)
    for k in range(first, math.floor(high / step + 1e-9) + 1):
        v = k * step
        x = x_of(v)
        body.append(
            f'<line x1="{_num(x)}" y1="{top}" x2="{_num(x)}" y2="{height - 24}" stroke="{_GRID}"/>'
        )
        body.append(_text(x, height - 8, fmt(v), anchor="middle", cls="axis"))
    if reference is not None and low <= reference <= high:
        x = x_of(reference)
        body.append(
            f'<line x1="{_num(x)}" y1="{top}" x2="{_num(x)}" y2="{height - 24}" '
            f'stroke="{_MUTED}" stroke-dasharray="4 3"/>'
        )
    for j, (name, point, lo, hi) in enumerate(rows):
        y = top + row_h * j + row_h / 2
        colour = PALETTE[j % len(PALETTE)]
        tip = f"{name}: {fmt(point)} (95% interval {fmt(lo)} to {fmt(hi)})"
        body.append(_text(left - 10, y + 4, name, anchor="end", cls="axis"))
        body.append(
            f'<line x1="{_num(x_of(lo))}" y1="{_num(y)}" x2="{_num(x_of(hi))}" y2="{_num(y)}" '
            f'stroke="{colour}" stroke-width="3"><title>{escape(tip)}</title></line>'
        )
        body.append(
            f'<circle cx="{_num(x_of(point))}" cy="{_num(y)}" r="6" fill="{colour}">'
            f"<title>{escape(tip)}</title></circle>"
        )
    return _svg(chart_id, "intervals", label, width, height, body)
