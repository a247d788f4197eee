"""The stacked bar chart, rendered to a recording Rich console and to PNG bytes decoded back to pixels."""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass

import pytest
from rich.console import Console

from companion.charts import (
    FONT,
    INK,
    MONOCHROME_FILLS,
    PALETTE,
    Canvas,
    StackedBars,
    nice_scale,
    png_chart,
    segment_lengths,
    terminal_chart,
)

CHART = StackedBars(
    title="Daily cost (USD) by provider",
    rows=("Mon 2026-11-16", "Tue 2026-11-17", "Wed 2026-11-18"),
    series=("openai", "anthropic", "gemini"),
    values=((0.30, 0.10, 0.0), (0.0, 0.0, 0.0), (0.20, 0.40, 0.20)),
    format_value=lambda value: f"${value:.4f}",
)
ANSI = re.compile(r"\x1b\[([0-9;]*)m")


def render(chart: StackedBars, width: int, *, monochrome: bool = False) -> list[str]:
    """The chart's lines as a truecolor terminal shows them, escape codes included."""
    console = Console(record=True, width=width, color_system="truecolor", force_terminal=True)
    console.print(terminal_chart(chart, width, monochrome=monochrome))
    return console.export_text(styles=True).splitlines()


def runs(line: str) -> list[tuple[str, int]]:
    """(foreground colour as #rrggbb, how many █ in a row) of each coloured run of blocks in `line`."""
    found, colour, position = [], "", 0
    for match in ANSI.finditer(line + "\x1b[0m"):
        text = line[position : match.start()]
        if text.count("█") and colour:
            found.append((colour, text.count("█")))
        codes = match.group(1).split(";")
        if codes[:2] == ["38", "2"]:
            colour = "#{:02x}{:02x}{:02x}".format(*map(int, codes[2:5]))
        elif codes == ["0"] or codes == [""]:
            colour = ""
        position = match.end()
    return found


def plain(line: str) -> str:
    return ANSI.sub("", line)


# --------------------------------------------------------------------------------------------
# Segments
# --------------------------------------------------------------------------------------------


def test_segments_add_up_to_the_rounded_bar() -> None:
    # 1/3 each of 10 cells: rounding each on its own would give 3+3+3 = 9; rounding the ends gives 10.
    assert segment_lengths([1, 1, 1], 3, 10) == [3, 4, 3]
    assert sum(segment_lengths([0.31, 0.2023, 0.007], 0.61, 96)) == round(0.5193 / 0.61 * 96)


def test_segments_are_empty_without_a_scale_and_ignore_negatives() -> None:
    assert segment_lengths([1.0, 2.0], 0, 10) == [0, 0]
    assert segment_lengths([-5.0, 1.0], 1.0, 10) == [0, 10]


@pytest.mark.parametrize(
    ("largest", "end"), [(0.8223, 1.0), (173, 200), (1, 1), (4, 4), (0.0031, 0.004), (60, 80), (0, 0)]
)
def test_the_png_axis_ends_on_a_round_number(largest: float, end: float) -> None:
    assert nice_scale(largest) == pytest.approx(end)


# --------------------------------------------------------------------------------------------
# In the terminal
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [60, 80, 120])
def test_the_longest_bar_and_its_label_fill_the_width(width: int) -> None:
    lines = render(CHART, width)
    longest = plain(lines[3])
    assert longest.startswith("Wed 2026-11-18 │")
    assert longest.endswith(" $0.8000")
    assert len(longest) == width
    assert all(len(plain(line)) <= width for line in lines)


def test_segments_have_their_series_colour_in_proportion() -> None:
    lines = render(CHART, 100)
    cells = 100 - len("Wed 2026-11-18 │") - len(" $0.8000")
    for drawn, values in ((runs(lines[1]), (0.30, 0.10)), (runs(lines[3]), (0.20, 0.40, 0.20))):
        assert [colour for colour, _ in drawn] == list(PALETTE[: len(values)])  # stacked in series order
        for (_, length), value in zip(drawn, values, strict=True):
            assert abs(length - cells * value / 0.8) <= 1  # the longest bar (0.80) fills every cell
    assert sum(length for _, length in runs(lines[3])) == cells
    assert sum(length for _, length in runs(lines[1])) == cells // 2
    assert runs(lines[2]) == []


def test_value_labels_follow_the_end_of_each_bar() -> None:
    lines = [plain(line) for line in render(CHART, 80)]
    assert lines[0] == "Daily cost (USD) by provider"
    assert re.fullmatch(r"Mon 2026-11-16 │█+ \$0\.4000", lines[1])
    assert lines[2] == "Tue 2026-11-17 │ $0.0000"  # a day without usage still has its row
    assert re.fullmatch(r"Wed 2026-11-18 │█+ \$0\.8000", lines[3])


def test_the_legend_names_each_series_in_its_colour() -> None:
    lines = render(CHART, 80)
    assert plain(lines[-1]) == "█ openai  █ anthropic  █ gemini"
    assert [colour for colour, _ in runs(lines[-1])] == list(PALETTE[:3])


def test_monochrome_series_differ_by_fill() -> None:
    lines = [plain(line) for line in render(CHART, 80, monochrome=True)]
    bar = lines[3].split("│")[1].split(" ")[0]
    assert set(bar) == set(MONOCHROME_FILLS[:3])
    assert bar == "".join(sorted(bar, key=MONOCHROME_FILLS.index))  # stacked in series order
    assert lines[-1] == f"{MONOCHROME_FILLS[0]} openai  {MONOCHROME_FILLS[1]} anthropic  {MONOCHROME_FILLS[2]} gemini"


def test_a_chart_without_any_value_draws_no_bars() -> None:
    empty = StackedBars(title="t", rows=("a", "b"), series=("s",), values=((0.0,), (0.0,)))
    lines = [plain(line) for line in render(empty, 40)]
    assert lines[1:3] == ["a │ 0", "b │ 0"]


# --------------------------------------------------------------------------------------------
# As a PNG
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Png:
    width: int
    height: int
    pixels: bytes  # RGB, row after row

    def at(self, x: int, y: int) -> tuple[int, int, int]:
        start = (y * self.width + x) * 3
        r, g, b = self.pixels[start : start + 3]
        return r, g, b

    def row(self, y: int) -> list[tuple[int, int, int]]:
        return [self.at(x, y) for x in range(self.width)]


def decode_png(data: bytes) -> Png:
    """Read back an 8-bit RGB, unfiltered, non-interlaced PNG, checking every chunk's CRC on the way."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, position = [], 8
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind, body = data[position + 4 : position + 8], data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert crc == zlib.crc32(kind + body), kind
        chunks.append((kind, body))
        position += 12 + length
    assert [kind for kind, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour_type, interlace) == (8, 2, 0)
    raw = zlib.decompress(chunks[1][1])
    stride = width * 3 + 1
    assert len(raw) == stride * height
    assert all(raw[y * stride] == 0 for y in range(height))  # filter type None on every scanline
    return Png(width, height, b"".join(raw[y * stride + 1 : (y + 1) * stride] for y in range(height)))


def rgb(colour: str) -> tuple[int, int, int]:
    value = int(colour[1:], 16)
    return value >> 16, (value >> 8) & 0xFF, value & 0xFF


def test_png_header_says_its_size() -> None:
    data = png_chart(CHART, width=800)
    width, height = struct.unpack(">II", data[16:24])
    image = decode_png(data)
    assert (image.width, image.height) == (width, height)
    assert width == 800
    assert 200 < height < 400  # title, three rows, the axis and the legend


def test_png_bars_have_their_series_colours_in_proportion() -> None:
    image = decode_png(png_chart(CHART, width=800))
    colours = [rgb(c) for c in PALETTE[:3]]
    bar_rows = [y for y in range(image.height) if image.row(y).count(colours[2]) > 20]  # gemini: the last bar only
    assert bar_rows
    middle = image.row(bar_rows[len(bar_rows) // 2])
    widths = [middle.count(colour) for colour in colours]
    assert widths[1] == pytest.approx(2 * widths[0], abs=1)  # 0.40 : 0.20 : 0.20
    assert widths[2] == pytest.approx(widths[0], abs=1)
    start = middle.index(colours[0])
    assert (
        middle[start : start + sum(widths)]
        == [colours[0]] * widths[0] + [colours[1]] * widths[1] + [colours[2]] * widths[2]
    )  # stacked left to right in series order, with no gaps


def test_png_draws_labels_in_ink() -> None:
    image = decode_png(png_chart(CHART, width=800))
    inked = [y for y in range(image.height) if INK in image.row(y)]
    assert inked[0] < 40  # the title at the top
    assert len(inked) > 7 * 2 * 5  # title, three row labels, axis values, legend: each 14 px of text


def test_canvas_draws_glyphs_pixel_for_pixel() -> None:
    canvas = Canvas(12, 14)
    canvas.text(0, 0, "1", INK)
    image = decode_png(canvas.png())
    for row, bits in enumerate(FONT["1"]):
        for column in range(5):
            expected = INK if bits & (0x10 >> column) else (255, 255, 255)
            assert image.at(column * 2, row * 2) == expected == image.at(column * 2 + 1, row * 2 + 1)


def test_the_font_covers_dates_money_and_names() -> None:
    needed = "0123456789-.$:/()% _" + "abcdefghijklmnopqrstuvwxyz" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    assert set(needed) <= set(FONT)
    assert all(len(glyph) in (7, 8) and max(glyph) < 32 for glyph in FONT.values())
    assert len({FONT[c] for c in needed}) == len(set(needed))  # no two characters look alike


def test_characters_outside_the_font_are_drawn_as_a_question_mark() -> None:
    unknown, question = Canvas(12, 16), Canvas(12, 16)
    unknown.text(0, 0, "→", INK)
    question.text(0, 0, "?", INK)
    assert unknown.pixels == question.pixels
