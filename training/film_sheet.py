"""Synthetic film sheets: a grid of slices on dark gutters, labelled like a printed MRI film.

Used to test and evaluate `inference.sheet.find_sheet`. A printed film puts 12–20 slices on one sheet
with thin black or dark-grey gutters, small white labels ("IM 12", "SE 3", "L"/"R") in the gutters
and tile corners, and often a dark header band with the hospital and the series. Everything here is
drawn from `SHEET_RANGES` with a seeded generator, so a sheet is reproducible from its seed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SHEET_RANGES = {
    "gutter_grey": (0, 40),          # gutter / sheet background level (black to dark grey)
    "label_grey": (190, 250),        # label text level
    "label_px": (10, 14),            # label font size at tile = 224
    "header_chance": 0.5,            # share of labelled sheets with a header band
    "header_px": (34, 56),           # header band height at tile = 224
    "series": (1, 12),               # "SE n"
    "first_image": (1, 40),          # "IM n" of the first tile; the rest count up
}
HEADER_LINES = ("HOSPITAL GENERAL UNIVERSITARIO · RM CRANEO", "ST. MARY'S MEDICAL CENTER  MR BRAIN W/WO",
                "CLINICA SAN RAFAEL  RESONANCIA MAGNETICA", "UNIVERSITY HOSPITAL  NEURO MRI 1.5T")
SEQUENCES = ("T1", "T2", "FLAIR", "T1+C", "DWI")


def _square(image: Image.Image, tile: int) -> Image.Image:
    """Pad to a black square (as the scanner's viewport would) and scale to the tile size."""
    rgb = image.convert("RGB")
    side = max(rgb.size)
    canvas = Image.new("RGB", (side, side), (0, 0, 0))
    canvas.paste(rgb, ((side - rgb.width) // 2, (side - rgb.height) // 2))
    return canvas.resize((tile, tile), Image.Resampling.BILINEAR)


def _draw_labels(draw: ImageDraw.ImageDraw, boxes: list[tuple[int, int, int, int]], gutters: tuple[int, int],
                 rng: np.random.Generator, tile: int) -> None:
    lo, hi = SHEET_RANGES["label_px"]
    font = ImageFont.load_default(size=max(8, round(int(rng.integers(lo, hi + 1)) * tile / 224)))
    grey = int(rng.integers(*SHEET_RANGES["label_grey"]))
    colour = (grey, grey, grey)
    series = int(rng.integers(*SHEET_RANGES["series"]))
    first = int(rng.integers(*SHEET_RANGES["first_image"]))
    in_gutter = gutters[1] >= font.size + 2  # a wide enough gutter takes the image number, as on real films
    for k, (left, top, right, bottom) in enumerate(boxes):
        number = f"IM {first + k}"
        if in_gutter:
            draw.text((left + 2, bottom + 1), number, fill=colour, font=font)
        else:
            draw.text((left + 3, top + 2), number, fill=colour, font=font)
        draw.text((right - 3, top + 2), f"SE {series}", fill=colour, font=font, anchor="ra")
        draw.text((left + 3, (top + bottom) // 2), "R", fill=colour, font=font, anchor="lm")
        draw.text((right - 3, (top + bottom) // 2), "L", fill=colour, font=font, anchor="rm")
        if rng.random() < 0.5:
            draw.text((left + 3, bottom - 3), SEQUENCES[int(rng.integers(len(SEQUENCES)))], fill=colour,
                      font=font, anchor="ld")


def compose_sheet(images: Sequence[Image.Image], rows: int, cols: int, seed: int, labels: bool = True,
                  tile: int = 224, gutter: tuple[int, int] = (8, 24)) -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
    """A film sheet of rows × cols tiles from the first rows*cols images, and the true tile boxes (row-major).

    Gutter widths (horizontal and vertical drawn separately) lie within `gutter`; the outer margin is
    one gutter wide. Deterministic for (images, rows, cols, seed, labels, tile, gutter).
    """
    if rows < 1 or cols < 1:
        raise ValueError("a sheet needs at least one row and one column")
    if len(images) < rows * cols:
        raise ValueError(f"{rows}x{cols} sheet needs {rows * cols} images, got {len(images)}")
    rng = np.random.default_rng([seed, rows, cols])
    gx, gy = (int(rng.integers(gutter[0], gutter[1] + 1)) for _ in range(2))
    grey = int(rng.integers(*SHEET_RANGES["gutter_grey"]))
    header = 0
    if labels and rng.random() < SHEET_RANGES["header_chance"]:
        header = round(int(rng.integers(*SHEET_RANGES["header_px"])) * tile / 224)
    width = cols * tile + (cols + 1) * gx
    height = header + rows * tile + (rows + 1) * gy
    sheet = Image.new("RGB", (width, height), (grey, grey, grey))
    boxes = []
    for k in range(rows * cols):
        r, c = divmod(k, cols)
        left, top = gx + c * (tile + gx), header + gy + r * (tile + gy)
        sheet.paste(_square(images[k], tile), (left, top))
        boxes.append((left, top, left + tile, top + tile))
    if labels:
        draw = ImageDraw.Draw(sheet)
        if header:
            font = ImageFont.load_default(size=max(10, header // 3))
            line = HEADER_LINES[int(rng.integers(len(HEADER_LINES)))]
            level = int(rng.integers(*SHEET_RANGES["label_grey"]))
            draw.text((gx + 4, header // 2), line, fill=(level, level, level), font=font, anchor="lm")
        _draw_labels(draw, boxes, (gx, gy), rng, tile)
    return sheet, boxes
