"""Stacked horizontal bar charts, drawn two ways from the same data: as Rich text for the terminal and as a
PNG image (a small rasterizer with a built-in 5x7 bitmap font, so no plotting library is needed).

    chart = StackedBars(title="Daily cost", rows=("Mon 2026-11-16", ...), series=("openai", "claude"),
                        values=((0.31, 0.12), ...), format_value=lambda v: f"${v:.4f}")
    console.print(terminal_chart(chart, console.width))
    Path("usage.png").write_bytes(png_chart(chart))

Both are pure: they read the chart and give back a renderable or the bytes of a file.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rich.console import Group
from rich.text import Text

# Tableau 10: distinguishable for most kinds of colour blindness, and on light and dark terminals alike.
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
# Where the terminal shows no colour (output piped to a file, NO_COLOR), series differ by their fill instead.
MONOCHROME_FILLS = ("█", "░", "▒", "▓", "#", "=", "+", ":", "*", "~")
BLOCK = "█"


@dataclass(frozen=True, slots=True)
class StackedBars:
    """One bar per row, stacked from one segment per series: `values[row][series]` (negatives count as 0)."""

    title: str
    rows: tuple[str, ...]
    series: tuple[str, ...]
    values: tuple[tuple[float, ...], ...]
    format_value: Callable[[float], str] = field(default=lambda value: f"{value:g}")

    def totals(self) -> list[float]:
        return [sum(max(v, 0.0) for v in row) for row in self.values]

    def colour(self, series: int) -> str:
        return PALETTE[series % len(PALETTE)]


def segment_lengths(values: Sequence[float], full_scale: float, cells: int) -> list[int]:
    """How many cells each stacked value takes when `full_scale` fills `cells`.

    Segment ends are rounded, not each segment on its own, so the segments add up to the rounded length
    of the whole bar and bars stay comparable with each other.
    """
    if full_scale <= 0:
        return [0] * len(values)
    lengths, cumulative, drawn = [], 0.0, 0
    for value in values:
        cumulative += max(value, 0.0)
        end = round(min(cumulative / full_scale, 1.0) * cells)
        lengths.append(end - drawn)
        drawn = end
    return lengths


# --------------------------------------------------------------------------------------------
# In the terminal
# --------------------------------------------------------------------------------------------


def terminal_chart(chart: StackedBars, width: int, *, monochrome: bool = False) -> Group:
    """Title, one line per row (label │ coloured segments, then the bar's total), and a legend.

    The longest bar fills what `width` leaves after the labels and its value label.
    """
    totals = chart.totals()
    labels = [chart.format_value(total) for total in totals]
    label_width = max((len(row) for row in chart.rows), default=0)
    value_width = max((len(label) for label in labels), default=0)
    cells = max(width - label_width - len(" │") - 1 - value_width, 1)
    full_scale = max(totals, default=0.0)

    lines = [Text(chart.title, style="bold")]
    for row, values, label in zip(chart.rows, chart.values, labels, strict=True):
        line = Text(row.ljust(label_width))
        line.append(" │", style="dim")
        for series, length in enumerate(segment_lengths(values, full_scale, cells)):
            line.append(_fill(series, monochrome) * length, style=chart.colour(series))
        line.append(" " + label)
        lines.append(line)
    legend = Text()
    for series, name in enumerate(chart.series):
        legend.append("  " if series else "")
        legend.append(_fill(series, monochrome), style=chart.colour(series))
        legend.append(f" {name}")
    lines.append(legend)
    for line in lines:
        line.no_wrap, line.overflow = True, "crop"
    return Group(*lines)


def _fill(series: int, monochrome: bool) -> str:
    return MONOCHROME_FILLS[series % len(MONOCHROME_FILLS)] if monochrome else BLOCK


# --------------------------------------------------------------------------------------------
# As a PNG
# --------------------------------------------------------------------------------------------

SCALE = 2  # each font pixel is SCALE x SCALE image pixels
ADVANCE = 6 * SCALE  # a 5-pixel glyph and a 1-pixel gap
TEXT_HEIGHT = 7 * SCALE
MARGIN = 24
ROW_HEIGHT = 28
BAR_HEIGHT = 18
TICKS = 4
BACKGROUND = (255, 255, 255)
INK = (34, 34, 34)
GRID = (225, 225, 225)
AXIS = (150, 150, 150)

Rgb = tuple[int, int, int]


def png_chart(chart: StackedBars, width: int = 960) -> bytes:
    """The chart as a PNG: title, labelled bars with their totals, a value axis and the legend."""
    totals = chart.totals()
    labels = [chart.format_value(total) for total in totals]
    full_scale = nice_scale(max(totals, default=0.0))
    bar_left = MARGIN + _text_width(max(chart.rows, key=len, default="")) + 12
    value_room = _text_width(max(labels, key=len, default="")) + 8
    width = max(width, bar_left + value_room + MARGIN + 200, MARGIN * 2 + _text_width(chart.title))
    cells = width - bar_left - value_room - MARGIN

    legend = _legend_layout(chart.series, width)
    bars_top = MARGIN + TEXT_HEIGHT + 16
    axis_top = bars_top + ROW_HEIGHT * len(chart.rows)
    legend_top = axis_top + 8 + TEXT_HEIGHT + 16
    height = legend_top + (max(y for _, y, _ in legend) + TEXT_HEIGHT if legend else 0) + MARGIN
    canvas = Canvas(width, height)

    canvas.text(MARGIN, MARGIN, chart.title, INK)
    for tick in range(TICKS + 1):  # gridlines under the bars, with their values below the axis
        x = bar_left + round(cells * tick / TICKS)
        canvas.fill(x, bars_top, 1, axis_top - bars_top, GRID if tick else AXIS)
        if full_scale:
            text = chart.format_value(full_scale * tick / TICKS)
            canvas.text(min(x - _text_width(text) // 2, width - MARGIN - _text_width(text)), axis_top + 8, text, INK)
    for index, (row, values, label) in enumerate(zip(chart.rows, chart.values, labels, strict=True)):
        top = bars_top + ROW_HEIGHT * index
        canvas.text(MARGIN, top + (ROW_HEIGHT - TEXT_HEIGHT) // 2, row, INK)
        x = bar_left + 1
        for series, length in enumerate(segment_lengths(values, full_scale, cells)):
            canvas.fill(x, top + (ROW_HEIGHT - BAR_HEIGHT) // 2, length, BAR_HEIGHT, _rgb(chart.colour(series)))
            x += length
        canvas.text(x + 8, top + (ROW_HEIGHT - TEXT_HEIGHT) // 2, label, INK)
    for series, (x, y, name) in enumerate(legend):
        canvas.fill(x, legend_top + y, TEXT_HEIGHT, TEXT_HEIGHT, _rgb(chart.colour(series)))
        canvas.text(x + TEXT_HEIGHT + 6, legend_top + y, name, INK)
    return canvas.png()


def nice_scale(largest: float, ticks: int = TICKS) -> float:
    """Where the value axis ends: `ticks` steps of 1, 2, 2.5 or 5 times a power of ten, reaching `largest`."""
    if largest <= 0:
        return 0.0
    magnitude = 10.0 ** math.floor(math.log10(largest / ticks))
    step = next(f * magnitude for f in (1, 2, 2.5, 5, 10) if f * magnitude * ticks >= largest * (1 - 1e-9))
    return step * ticks


def _legend_layout(series: Sequence[str], width: int) -> list[tuple[int, int, str]]:
    """(x, y from the legend's top, name) of each entry, wrapping onto new lines at the right margin."""
    placed, x, y = [], MARGIN, 0
    for name in series:
        entry = TEXT_HEIGHT + 6 + _text_width(name)
        if x > MARGIN and x + entry > width - MARGIN:
            x, y = MARGIN, y + TEXT_HEIGHT + 10
        placed.append((x, y, name))
        x += entry + 24
    return placed


def _text_width(text: str) -> int:
    return max(len(text) * ADVANCE - SCALE, 0)


def _rgb(colour: str) -> Rgb:
    value = int(colour.removeprefix("#"), 16)
    return (value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF


class Canvas:
    """An RGB image being drawn: filled rectangles and 5x7 text, clipped to its edges."""

    def __init__(self, width: int, height: int, background: Rgb = BACKGROUND) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(background) * (width * height))

    def fill(self, x: int, y: int, w: int, h: int, colour: Rgb) -> None:
        left, right = max(x, 0), min(x + w, self.width)
        if right <= left:
            return
        run = bytes(colour) * (right - left)
        for row in range(max(y, 0), min(y + h, self.height)):
            start = (row * self.width + left) * 3
            self.pixels[start : start + len(run)] = run

    def text(self, x: int, y: int, text: str, colour: Rgb) -> None:
        """`text` with its top-left corner at (x, y); characters the font lacks are drawn as '?'."""
        for index, char in enumerate(text):
            glyph = FONT.get(char) or FONT["?"]
            for row, bits in enumerate(glyph):
                for column in range(5):
                    if bits & (0x10 >> column):
                        left = x + index * ADVANCE + column * SCALE
                        self.fill(left, y + row * SCALE, SCALE, SCALE, colour)

    def png(self) -> bytes:
        """The image as a PNG file: 8-bit RGB, every scanline unfiltered, one zlib stream."""
        stride = self.width * 3
        scanlines = b"".join(b"\x00" + self.pixels[row * stride : (row + 1) * stride] for row in range(self.height))
        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(scanlines, 9))
            + _chunk(b"IEND", b"")
        )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _glyphs(table: str) -> dict[str, tuple[int, ...]]:
    """`char:hex` pairs: a byte per row from the top, bit 4 the leftmost pixel; seven rows, and an eighth for
    the letters that descend below the baseline."""
    glyphs: dict[str, tuple[int, ...]] = {" ": (0,) * 7}
    for entry in table.split():
        char, rows = entry[0], bytes.fromhex(entry[2:])
        if entry[1] != ":" or len(rows) not in (7, 8) or max(rows) > 0x1F:
            raise ValueError(f"malformed glyph {entry!r}")
        glyphs[char] = tuple(rows)
    return glyphs


# A 5x7 font drawn for this module (g j p q y and the comma descend a row): digits, both cases, and the
# punctuation dates, money and names use.
FONT = _glyphs(
    """
    0:0E11131519110E 1:040C040404040E 2:0E11010204081F 3:1F02040201110E 4:02060A121F0202
    5:1F101E0101110E 6:0608101E11110E 7:1F010204080808 8:0E11110E11110E 9:0E11110F01020C
    A:0E11111F111111 B:1E11111E11111E C:0E11101010110E D:1C12111111121C E:1F10101E10101F
    F:1F10101E101010 G:0E11101711110F H:1111111F111111 I:0E04040404040E J:0702020202120C
    K:11121418141211 L:1010101010101F M:111B1515111111 N:11111915131111 O:0E11111111110E
    P:1E11111E101010 Q:0E11111115120D R:1E11111E141211 S:0F10100E01011E T:1F040404040404
    U:1111111111110E V:11111111110A04 W:1111111515150A X:11110A040A1111 Y:11110A04040404
    Z:1F01020408101F
    a:00000E010F110F b:1010161911111E c:00000E1010110E d:01010D1311110F e:00000E111F100E
    f:0609081C080808 g:00000F11110F010E h:10101619111111 i:04000C0404040E j:020006020202120C
    k:10101214181412 l:0C04040404040E m:00001A15151111 n:00001619111111 o:00000E1111110E
    p:00001E11111E1010 q:00000F11110F0101 r:00001619101010 s:00000E100E011E t:08081C08080906
    u:0000111111130D v:00001111110A04 w:0000111115150A x:0000110A040A11 y:00001111110F010E
    z:00001F0204081F
    -:0000001F000000 .:00000000000C0C $:040F140E051E04 ::000C0C000C0C00 /:00010204081000
    (:02040808080402 ):08040202020408 [:0E08080808080E ]:0E02020202020E _:0000000000001F
    ,:00000000000C0408 %:18190204081303 +:0004041F040400 =:00001F001F0000 *:0004150E150400
    ~:00000815020000 ?:0E110102040004 |:04040404040404 <:02040810080402 >:08040201020408
    """
)
