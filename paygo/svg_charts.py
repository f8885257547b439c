"""Small charts drawn on the server as inline SVG.

The back office must work without Internet access (no CDN), and a report needs only bars
and lines, so the charts are plain SVG built here: no JavaScript, printable, and every
label escaped like any other template output.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

# Colour-blind friendly palette (Okabe–Ito), cycled per series.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]


def _svg(width: int, height: int, title: str, body: list[str]) -> SafeString:
    return mark_safe(
        f'<svg class="paygo-chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
        f'width="100%" style="max-width:{width}px" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>" + "".join(body) + "</svg>"
    )


def bar_chart_svg(
    bars: Sequence[tuple[str, Decimal | int]],
    *,
    title: str,
    value_text: Callable[[Decimal | int], str] = str,
    width: int = 720,
) -> SafeString:
    """Horizontal bars, one per (label, value), longest first as given."""
    if not bars:
        return _svg(width, 40, title, ['<text x="8" y="24" font-size="13" fill="#666">Sin datos</text>'])
    label_width, bar_height, gap, top = 220, 22, 8, 8
    value_room = 120
    plot = width - label_width - value_room
    largest = max((abs(Decimal(v)) for _, v in bars), default=Decimal(1)) or Decimal(1)
    body = []
    for index, (label, value) in enumerate(bars):
        y = top + index * (bar_height + gap)
        length = int(plot * abs(Decimal(value)) / largest)
        colour = PALETTE[index % len(PALETTE)]
        body.append(
            f'<text x="{label_width - 8}" y="{y + 16}" font-size="13" text-anchor="end" fill="#333">'
            f"{escape(label)}</text>"
            f'<rect x="{label_width}" y="{y}" width="{max(length, 1)}" height="{bar_height}" fill="{colour}" rx="2">'
            f"<title>{escape(label)}: {escape(value_text(value))}</title></rect>"
            f'<text x="{label_width + length + 6}" y="{y + 16}" font-size="13" fill="#333">'
            f"{escape(value_text(value))}</text>"
        )
    height = top * 2 + len(bars) * (bar_height + gap)
    return _svg(width, height, title, body)


def line_chart_svg(
    series: dict[str, list[tuple[date, Decimal]]],
    *,
    title: str,
    value_text: Callable[[Decimal | int], str] = str,
    width: int = 760,
    height: int = 280,
) -> SafeString:
    """One line per series over the same days, with a legend, y-axis ticks and first/last
    day labels. Days must be the same, in order, for every series."""
    if not series or not any(points for points in series.values()):
        return _svg(width, 40, title, ['<text x="8" y="24" font-size="13" fill="#666">Sin datos</text>'])
    legend_rows = (len(series) + 3) // 4
    height += 14 * (legend_rows - 1)
    left, right, top, bottom = 110, 16, 16, 50 + 14 * legend_rows
    plot_w, plot_h = width - left - right, height - top - bottom
    days = next(iter(series.values()))
    count = max(len(days) - 1, 1)
    largest = max((v for points in series.values() for _, v in points), default=Decimal(0)) or Decimal(1)
    body = [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#999"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#999"/>',
    ]
    for tick in range(5):
        value = largest * tick / 4
        y = top + plot_h - plot_h * tick / 4
        body.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#eee"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="#555">'
            f"{escape(value_text(value))}</text>"
        )
    for index in sorted({0, len(days) // 2, len(days) - 1}):
        x = left + plot_w * index / count
        body.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 16}" font-size="11" text-anchor="middle" fill="#555">'
            f"{days[index][0]:%d/%m}</text>"
        )
    for number, (name, points) in enumerate(series.items()):
        colour = PALETTE[number % len(PALETTE)]
        coords = [
            (left + plot_w * i / count, top + plot_h - float(plot_h * Decimal(v) / largest))
            for i, (_, v) in enumerate(points)
        ]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for (x, y), (day, value) in zip(coords, points, strict=True):
            body.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}">'
                f"<title>{escape(name)} {day:%d/%m}: {escape(value_text(value))}</title></circle>"
            )
        legend_x = left + (number % 4) * 170
        legend_y = top + plot_h + 36 + (number // 4) * 14
        body.append(
            f'<rect x="{legend_x}" y="{legend_y - 9}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{legend_x + 14}" y="{legend_y}" font-size="12" fill="#333">{escape(name)}</text>'
        )
    return _svg(width, height, title, body)
