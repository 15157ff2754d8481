"""From a real-world picture to one answer: a film sheet is split into slices; otherwise the scan is found,
checked for being judgeable at all, and classified. Every limit on the way is the model set's own
(`pipeline` in manifest.json).

The cascade's models were trained on tight crops, so what they see here is always the located scan or one
tile of a sheet, never the desk or the light box around it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from PIL import Image

from .cascade import Cascade, CascadeResult
from .locate import locate_scan
from .quality import quality_problems
from .series import summarize
from .sheet import Sheet, find_sheet

Box = tuple[int, int, int, int]

# A picture too dark to see cannot even be called "not an MRI" ...
BLOCKING_PROBLEMS = frozenset({"too_dark"})
# ... the other problems only matter once the picture looks like an MRI: a sharp photo of a document needs no
# retake, and a small dark patch in a holiday photo that the locator took for a film is not "too small" to judge.
CROPPED_SHARE = 0.8  # a located scan under this share of the picture's area counts as "cut out of a photo"


@dataclass(frozen=True)
class TileAnalysis:
    row: int
    col: int
    box: Box
    result: CascadeResult


@dataclass(frozen=True)
class PictureAnalysis:
    """The answer for one uploaded picture; for a film sheet, the summary plus one entry per slice."""

    result: CascadeResult  # for a sheet: the summary verdict with the probabilities of its strongest slice
    image: Image.Image  # what the verdict rests on (the located scan, or a sheet's strongest slice): heatmaps use it
    crop_box: Box  # where that is inside the uploaded picture
    located_by: str  # "head" | "film" | "whole" | "sheet"
    source_size: tuple[int, int]  # (width, height) of the uploaded picture
    tiles: tuple[TileAnalysis, ...] = ()
    sheet: Sheet | None = None  # the film sheet's grid, when the picture is one
    drivers: tuple[int, ...] = ()  # indices into `tiles` behind a sheet's verdict, strongest first

    @property
    def is_sheet(self) -> bool:
        return self.sheet is not None

    @property
    def grid(self) -> tuple[int, int] | None:
        return (self.sheet.rows, self.sheet.cols) if self.sheet else None

    @property
    def cropped(self) -> bool:
        """True when the scan was cut out of a clearly larger picture (a photo of a film or a screen)."""
        left, top, right, bottom = self.crop_box
        width, height = self.source_size
        return (right - left) * (bottom - top) < CROPPED_SHARE * width * height


def _judge(cascade: Cascade, image: Image.Image, started: float) -> tuple[CascadeResult, Image.Image, Box, str]:
    limits = cascade.manifest.pipeline
    located = locate_scan(image, limits.locate)
    problems = quality_problems(located.image, located, limits.quality, limits.locate)
    result = cascade.predict_image(located.image, started)
    if set(problems) & BLOCKING_PROBLEMS or (problems and result.verdict != "not_mri"):
        result = replace(result, verdict="inconclusive", tumor_type=None, reasons=tuple(problems))
    return result, located.image, located.box, located.method


def analyse_picture(cascade: Cascade, image: Image.Image, started: float | None = None,
                    real_world: bool = True) -> PictureAnalysis:
    """`real_world=False` is for pixels that are the scan itself (DICOM): no sheet, no scan finding, no photo checks."""
    started = time.perf_counter() if started is None else started
    if not real_world:
        return PictureAnalysis(cascade.predict_image(image, started), image, (0, 0, *image.size), "whole", image.size)
    limits = cascade.manifest.pipeline
    sheet = find_sheet(image, limits.sheet, limits.locate)
    if sheet is None:
        result, crop, box, method = _judge(cascade, image, started)
        return PictureAnalysis(result, crop, box, method, image.size)
    tiles = []
    for tile in sheet.tiles:
        located = locate_scan(tile.image, limits.locate)
        tiles.append(TileAnalysis(tile.row, tile.col, tile.box, cascade.predict_image(located.image)))
    summary = summarize([t.result for t in tiles])
    lead = summary.drivers[0] if summary.drivers else 0
    overall = replace(tiles[lead].result, verdict=summary.verdict, tumor_type=summary.tumor_type,
                      reasons=tiles[lead].result.reasons if summary.verdict == "inconclusive" else (),
                      latency_ms=round((time.perf_counter() - started) * 1000, 2))
    lead_tile = sheet.tiles[lead]
    return PictureAnalysis(overall, lead_tile.image, lead_tile.box, "sheet", image.size, tuple(tiles), sheet,
                           summary.drivers)
