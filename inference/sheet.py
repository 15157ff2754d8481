"""Film sheets: find a regular grid of slices on dark gutters and cut it into tiles.

A printed MRI film holds 12–20 slices in a grid. A gutter is a flat line across the whole sheet,
while a line through a tile row crosses a textured head in most tiles; so the mean texture per row
rises and falls once per tile: plateaus separated by flat gaps. Texture is a pixel's second
difference over its headroom to white, which a glare spot (it pushes pixels towards white) leaves
unchanged. A sheet is accepted only when both axes show ≥ 2 plateaus at a near-constant period and
there are ≥ 4 tiles, which a single slice on its black surround does not give.

The sheet is first isolated from a desk/window background (as in `locate`). Row and column gutters
get their own slope (the one that makes each profile sharpest), which absorbs a rotation and most of
a mild perspective shear; the tiles' exact edges are then fitted on a finer copy (the models are
sensitive to framing), and tilted tiles are cut out upright with one affine resample each.
numpy + Pillow only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pydantic import ConfigDict, with_config
from typing_extensions import TypedDict  # pydantic validates these on Python 3.11 only from typing_extensions

from .locate import LOCATE_LIMITS, LocateLimits, film_region, work_copy


@with_config(ConfigDict(extra="forbid"))
class SheetLimits(TypedDict):
    """The entries of `SHEET_LIMITS`, typed: counts, percentiles and pixel sizes are ints (they index, slice and
    size arrays), `tile_aspect` is a (low, high) pair, the rest are floats."""

    work_side: int
    content_abs: float
    content_rel: float
    content_share: float
    content_margin: float
    texture_step: int
    texture_full: float
    texture_min_room: float
    blown_room: float
    min_readable: float
    skew_search_deg: float
    skew_coarse_deg: float
    skew_candidates: int
    skew_fine_deg: float
    skew_min_gain: float
    skew_min_deg: float
    smooth_share: float
    min_contrast: float
    bright_q: int
    level: float
    gap_dark: float
    min_run_share: float
    period_tol: float
    min_plateau_share: float
    min_per_axis: int
    max_per_axis: int
    min_tiles: int
    tile_aspect: tuple[float, float]
    fine_side: int
    cap_q: int
    cap_room: float
    inset_reach: float
    edge_min: float
    edge_ratio: float
    period_search: float
    period_step: float
    min_gutter_px: int
    min_edges: float
    rim_share: float
    band_flatness: float
    default_inset: float
    tile_max_side: int


SHEET_LIMITS: SheetLimits = {
    "work_side": 400,           # longest side of the analysis copy (a 5-column sheet keeps 2-px gutters)
    "content_abs": 25.0,        # content is this much brighter than the dark level…
    "content_rel": 0.2,         # …and this share of the dark-to-highlight range
    "content_share": 0.1,       # rows/columns with this share of the busiest one's content belong to the sheet
    "content_margin": 0.02,     # kept around the content (share of the side)
    "texture_step": 2,          # second differences over ±this many pixels (survive mild blur)
    "texture_full": 0.15,       # difference / headroom counted as fully textured
    "texture_min_room": 25.0,   # headroom floor for the ratio (see blown_room)
    "blown_room": 25.0,         # pixels within this of white are blown out: their texture is not read
    "min_readable": 0.3,        # a profile line needs this share of readable pixels
    "skew_search_deg": 15.0,    # gutter tilts searched (±)…
    "skew_coarse_deg": 1.5,     # …in coarse steps, then ±3 fine steps around the best few
    "skew_candidates": 3,
    "skew_fine_deg": 0.25,
    "skew_min_gain": 1.05,      # a rotation must sharpen a profile by this factor to be used
    "skew_min_deg": 0.5,        # smaller tilts are left alone
    "smooth_share": 0.01,       # profile smoothing window, as a share of its length
    "min_contrast": 20.0,       # plateau-to-gap contrast (texture units, 0–255) below this: no grid
    "bright_q": 75,             # the profile's typical plateau level (percentile of the profile)
    "level": 0.5,               # plateau threshold between the profile's floor and typical plateau levels
    "gap_dark": 0.4,            # a gutter must dip to within this share of that range from the floor
    "min_run_share": 0.03,      # plateaus shorter than this share of the profile are specks
    "period_tol": 0.12,         # every spacing must be within this share of the period
    "min_plateau_share": 0.35,  # a plateau must fill this share of its period
    "min_per_axis": 2,
    "max_per_axis": 8,
    "min_tiles": 4,
    "tile_aspect": (0.5, 2.0),  # tile width / height
    "fine_side": 800,           # tile edges are fitted on a copy this large (finer than the analysis copy)
    "cap_q": 35,                # for the edge fit, intensities are capped at this percentile…
    "cap_room": 40.0,           # …plus this many grey levels
    "inset_reach": 0.2,         # tile edges are looked for within this share of a period of a midline
    "edge_min": 5.0,            # an edge is a step of at least this many grey levels in the line means…
    "edge_ratio": 4.0,          # …and this many times the profile's median step
    "period_search": 0.04,      # the edge fit tries periods within ± this share of the plateau period…
    "period_step": 0.0025,      # …in these steps
    "min_gutter_px": 2,         # a fitted gutter is at least this wide (else a tile's end is the next one's start)
    "min_edges": 0.6,           # share of all tile starts and ends that must be found and fit
    "rim_share": 0.03,          # tile rim compared with the gutter's level (share of a period)
    "band_flatness": 0.6,       # a gutter's own range must stay under this share of its contrast to the rims
    "default_inset": 0.03,      # share of a period trimmed per side when the gutters show no edges
    "tile_max_side": 320,       # de-skewed tile crops are capped (the models look at 128 px)
}
DEFAULT_OUTLINE = (255, 255, 0)  # annotate_sheet's colour when none is given


@dataclass(frozen=True)
class Tile:
    """One slice of a film sheet."""

    row: int
    col: int
    box: tuple[int, int, int, int]  # in the input picture's pixels
    image: Image.Image              # RGB crop of the tile (resampled upright when the sheet was tilted)


@dataclass(frozen=True)
class Sheet:
    """A film sheet found in a picture: its grid and tiles (row-major)."""

    rows: int
    cols: int
    tiles: tuple[Tile, ...]
    box: tuple[int, int, int, int]  # the sheet's region in the picture
    tilt: tuple[float, float] = (0.0, 0.0)  # degrees: row gutters' slope (y down per x), columns' (x per y)


@dataclass(frozen=True)
class Axis:
    """A regular 1-D grid: boundary k (a gutter's middle) at start + k*period; tile k spans
    [boundary k + lead, boundary k+1 - trail], i.e. without its share of the gutters."""

    start: float
    period: float
    count: int
    lead: float = 0.0
    trail: float = 0.0

    def span(self, k: int) -> tuple[float, float]:
        return self.start + k * self.period + self.lead, self.start + (k + 1) * self.period - self.trail


# --- signals -----------------------------------------------------------------------------------------

def texture(gray: np.ndarray, axis: int, lim: SheetLimits = SHEET_LIMITS) -> np.ndarray:
    """Lighting-invariant texture for finding gutters along `axis` (0: rows, from horizontal differences).

    Glare adds (255 - v) * b to a pixel: it scales both the pixel's local contrast and its headroom
    (255 - v) by (1 - b), so their ratio is unchanged. Second differences are used so the glare's own
    slope (a smooth ramp) does not read as texture.
    """
    step = lim["texture_step"]
    g = gray if axis == 1 else gray.T
    diff = np.zeros_like(g)
    diff[step:-step] = np.abs(g[2 * step:] - 2 * g[step:-step] + g[:-2 * step])
    if axis == 0:
        diff = diff.T
    ratio = diff / np.maximum(255.0 - gray, lim["texture_min_room"])
    return np.minimum(ratio / lim["texture_full"], 1.0) * 255.0


def _content_box(gray: np.ndarray, lim: SheetLimits) -> tuple[int, int, int, int]:
    """Rows and columns holding bright content, plus a small margin: a sheet shown on a dark monitor
    may fill only part of the picture, and the empty surround would dilute the profiles."""
    low, high = np.percentile(gray, [5, 99.5])
    bright = gray > low + max(lim["content_abs"], lim["content_rel"] * (high - low))
    h, w = gray.shape
    spans = []
    for axis, n in ((1, h), (0, w)):
        share = bright.mean(axis=axis)
        idx = np.flatnonzero(share >= lim["content_share"] * share.max()) if share.max() > 0 else np.array([0, n - 1])
        pad = round(lim["content_margin"] * n)
        spans.append((max(0, int(idx[0]) - pad), min(n, int(idx[-1]) + 1 + pad)))
    (y0, y1), (x0, x1) = spans
    return x0, y0, x1, y1


# --- de-skew -------------------------------------------------------------------------------------------

def readable(gray: np.ndarray, lim: SheetLimits = SHEET_LIMITS) -> np.ndarray:
    """1.0 where texture can be read, 0.0 where a pixel is blown out (its differences are quantisation)."""
    return (gray < 255.0 - lim["blown_room"]).astype(np.float32)


class _Projection:
    """Sums along slanted lines: for rows, line `y - slope * x = const`; for columns, `x - slope * y = const`.

    A shear instead of a rotation: for the few degrees a photo is tilted the two agree, and a shear
    needs no resampling — columns sharing a shift are summed at once from cumulative sums, so each
    slope costs one short loop over shift values.
    """

    def __init__(self, weighted: np.ndarray, weights: np.ndarray, axis: int, min_readable: float) -> None:
        self.min_readable = min_readable
        t, w = (weighted, weights) if axis == 0 else (weighted.T, weights.T)
        self.length, self.lines = w.shape  # positions along the profile, pixels summed per line
        zero = np.zeros((self.length, 1))
        self._cum_t = np.concatenate([zero, np.cumsum(t, axis=1, dtype=np.float64)], axis=1)
        self._cum_w = np.concatenate([zero, np.cumsum(w, axis=1, dtype=np.float64)], axis=1)

    def profile(self, slope: float) -> tuple[np.ndarray, int]:
        """(mean texture per line, index of the line through the origin) — NaN where data is scarce."""
        h, n = self.length, self.lines
        shift = np.rint(-slope * np.arange(n)).astype(np.int64)
        base = int(max(0, -shift.min()))
        size = h + base + int(max(0, shift.max()))
        total, count = np.zeros(size), np.zeros(size)
        edges = np.r_[0, np.flatnonzero(np.diff(shift)) + 1, n]
        for start, end in zip(edges[:-1], edges[1:]):
            at = base + shift[start]
            total[at:at + h] += self._cum_t[:, end] - self._cum_t[:, start]
            count[at:at + h] += self._cum_w[:, end] - self._cum_w[:, start]
        out = total / np.maximum(count, 1e-6)
        out[count < self.min_readable * n] = np.nan
        return out, base


def _sharpness(profile: np.ndarray, blur: int = 1) -> float:
    """Mean squared step of a profile, after a box blur of `blur` lines."""
    if blur > 1:
        profile = np.convolve(profile, np.ones(blur) / blur, mode="valid")
    steps = np.diff(profile)
    steps = steps[np.isfinite(steps)]
    return float((steps ** 2).mean()) if steps.size else 0.0


def skew_slope(projection: _Projection, lim: SheetLimits) -> float:
    """Slope of the gutters that makes this axis's profile sharpest (mean squared step): gutters
    followed exactly give steep walls, crossed at an angle they are smeared. 0.0 unless clearly better."""
    upright = _sharpness(projection.profile(0.0)[0])
    limit = math.tan(math.radians(lim["skew_search_deg"]))
    coarse = np.tan(np.radians(np.arange(-lim["skew_search_deg"], lim["skew_search_deg"] + 0.5, lim["skew_coarse_deg"])))
    # A coarse step drifts this many lines across the picture: blurring the profile as much keeps
    # the sharpness peak of the true slope from falling between two coarse steps.
    drift = max(1, math.ceil(math.tan(math.radians(lim["skew_coarse_deg"])) * projection.lines))
    scores = np.array([_sharpness(projection.profile(float(t))[0], drift) for t in coarse])
    step = math.tan(math.radians(lim["skew_fine_deg"]))
    candidates = coarse[np.argsort(scores)[-lim["skew_candidates"]:]]
    fine = np.unique(np.clip(candidates[:, None] + step * np.arange(-3, 4)[None, :], -limit, limit))
    fine_scores = [_sharpness(projection.profile(float(t))[0]) for t in fine]
    slope = float(fine[int(np.argmax(fine_scores))])
    if abs(math.degrees(math.atan(slope))) < lim["skew_min_deg"] or max(fine_scores) < lim["skew_min_gain"] * upright:
        return 0.0
    return slope


# --- grid along one axis -------------------------------------------------------------------------------

def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True."""
    edges = np.flatnonzero(np.diff(np.r_[0, flags.astype(np.int8), 0]))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def axis_grid(profile: np.ndarray, lim: SheetLimits = SHEET_LIMITS) -> Axis | None:
    """A regular grid of plateaus on flat gaps along one profile, or None."""
    n = profile.size
    known = np.isfinite(profile)
    if known.sum() < n / 2:
        return None
    if not known.all():  # lines with no readable pixels (blown out, or outside after rotating)
        profile = np.interp(np.arange(n), np.flatnonzero(known), profile[known])
    width = max(1, round(n * lim["smooth_share"]))
    p = np.convolve(profile, np.ones(width) / width, mode="same") if width > 1 else profile
    low, high = np.percentile(p, [2, lim["bright_q"]])
    span = high - low  # up to a typical plateau, not the busiest: one busy tile row must not hide the rest
    if span < lim["min_contrast"]:
        return None
    runs = [r for r in _runs(p > low + lim["level"] * span) if r[1] - r[0] >= lim["min_run_share"] * n]
    # A dip that never gets flat is calm tissue inside a tile, not a gutter: join the runs around it.
    merged: list[list[int]] = []
    for start, end in runs:
        if merged and p[merged[-1][1]:start].min() > low + lim["gap_dark"] * span:
            merged[-1][1] = end
        else:
            merged.append([start, end])
    if not lim["min_per_axis"] <= len(merged) <= lim["max_per_axis"]:
        return None
    starts = np.array([s for s, _ in merged], dtype=np.float64)
    ends = np.array([e for _, e in merged], dtype=np.float64)
    centres = (starts + ends - 1) / 2
    # A tile row whose heads are all small or low shifts its plateau; the plateaus' centres, starts or
    # ends may then be regular while the others are not. Any one regular sequence gives the period.
    period = None
    for sequence in (centres, starts, ends):
        spacing = np.diff(sequence)
        candidate = float(np.median(spacing))
        if candidate > 0 and np.abs(spacing - candidate).max() <= lim["period_tol"] * candidate:
            period = candidate
            break
    if period is None or (ends - starts).min() < lim["min_plateau_share"] * period:
        return None
    k = np.arange(len(merged))
    centre0 = float(np.median(centres - k * period))
    return Axis(start=centre0 - period / 2, period=period, count=len(merged))


def slanted_mean(gray: np.ndarray, slope: float, axis: int) -> tuple[np.ndarray, int]:
    """Mean intensity along the lines of `_Projection` (one slope, so one `bincount`), and its base."""
    g = gray if axis == 0 else gray.T
    h, n = g.shape
    shift = np.rint(-slope * np.arange(n)).astype(np.int64)
    base = int(max(0, -shift.min()))
    index = (np.arange(h)[:, None] + shift[None, :] + base).ravel()
    size = h + base + int(max(0, shift.max()))
    total = np.bincount(index, weights=g.ravel(), minlength=size)
    count = np.bincount(index, minlength=size)
    return total / np.maximum(count, 1), base


def tile_edges(intensity: np.ndarray, axis: Axis, lim: SheetLimits) -> Axis:
    """Refit a grid on the tiles' own edges, where the gutters show them.

    The models are sensitive to framing (a 10 % wider crop flips some verdicts), and plateau centres
    place the gutters only to a few pixels. A gutter of another grey than the scans' black makes a
    step at every tile's start and the opposite step at its end, so the grid (first start a, period
    p, tile width w) is the one whose starts a + k*p and ends a + w + k*p collect the most step
    strength of the right sign: for each period the signed strengths are folded over the tiles and
    the best start/end pair is read off the fold. When too few of those steps are strong (black
    gutters on black scans), the plateau grid stands, trimmed by a default inset.
    """
    inset = lim["default_inset"] * axis.period
    default = Axis(axis.start, axis.period, axis.count, inset, inset)
    signed = np.diff(intensity)  # signed[j - 1]: the step at coordinate j, between pixels j-1 and j
    rises, falls = np.maximum(signed, 0.0), np.maximum(-signed, 0.0)
    coords = np.arange(1, intensity.size, dtype=np.float64)
    step_count = signed.size
    reach = lim["inset_reach"] * axis.period
    strong = max(lim["edge_min"], lim["edge_ratio"] * float(np.median(np.abs(signed))))
    tiles = np.arange(axis.count)
    periods = axis.period * (1 + np.arange(-lim["period_search"], lim["period_search"] + 1e-9, lim["period_step"]))
    offsets = np.arange(round(periods.max() + 2 * reach))
    shortest, longest = max(1, round(periods.min() - 2 * reach)), round(periods.max()) - lim["min_gutter_px"]
    if longest < shortest or offsets.size <= longest:
        return default
    widths = shortest + np.arange(longest - shortest + 1)
    too_wide = widths[None, :] > periods[:, None] - lim["min_gutter_px"]  # (periods, widths)
    # position of tile k's edge for every (period, offset): first + k * period, rounded to a pixel
    at = np.rint(axis.start - reach + offsets[None, :, None] + periods[:, None, None] * tiles[None, None, :]).astype(np.int64)
    inside = (at >= 1) & (at <= step_count)
    at = np.clip(at, 1, step_count) - 1
    best = (-1.0, 0, 0, 0, 0)
    for polarity, (start_steps, end_steps) in enumerate(((falls, rises), (rises, falls))):
        starts = (start_steps[at] * inside).sum(axis=2)       # (periods, offsets)
        ends = (end_steps[at] * inside).sum(axis=2)
        windows = np.lib.stride_tricks.sliding_window_view(ends[:, shortest:], widths.size, axis=1)
        windows = np.where(too_wide[:, None, :], -1.0, windows)
        pair = starts[:, :windows.shape[1]] + windows.max(axis=2)
        p, i = np.unravel_index(int(np.argmax(pair)), pair.shape)
        if pair[p, i] > best[0]:
            best = (float(pair[p, i]), int(p), int(i), shortest + int(np.argmax(windows[p, i])), polarity)
    _, best_p, best_i, width, polarity = best
    period, first = float(periods[best_p]), float(axis.start - reach + offsets[best_i])
    start_steps, end_steps = (falls, rises) if polarity == 0 else (rises, falls)
    starts = first + period * tiles
    hits = ((np.interp(starts, coords, start_steps) >= strong).sum()
            + (np.interp(starts + width, coords, end_steps) >= strong).sum())
    if hits < lim["min_edges"] * 2 * axis.count:
        return default
    if not _gutters_stand_out(intensity, first, period, width, strong, lim):
        return default
    gutter = period - width
    return Axis(first - gutter / 2, period, axis.count, gutter / 2, gutter / 2)


def _gutters_stand_out(intensity: np.ndarray, first: float, period: float, width: int, strong: float,
                       lim: SheetLimits) -> bool:
    """True when the fitted gutters are flat bands whose level differs from a neighbouring tile's rim —
    edges found in grey-on-grey by chance (texture, labels) fail this."""
    rim = max(2, round(lim["rim_share"] * period))
    n = intensity.size
    good = total = 0
    for k in range(round((n - first) / period) + 1):
        end = round(first + (k - 1) * period + width)  # previous tile's end = this gutter's start
        start = round(first + k * period)               # this tile's start = the gutter's end
        if end - rim < 0 or start + rim > n or start - end < 2:
            continue
        band = intensity[end:start]
        level = float(np.median(band))
        before, after = float(np.median(intensity[end - rim:end])), float(np.median(intensity[start:start + rim]))
        total += 1
        spread = float(np.subtract(*np.percentile(band, [90, 10])))  # labels in a gutter are allowed
        contrast = max(abs(level - before), abs(level - after))  # a head may fill one rim
        good += contrast >= strong and spread <= lim["band_flatness"] * contrast
    return total > 0 and good >= lim["min_edges"] * total


# --- geometry: grid lines → picture --------------------------------------------------------------------

@dataclass(frozen=True)
class _Grid:
    """Row lines `y - row_slope * x = Y` and column lines `x - col_slope * y = X` in the analysis
    image, and how analysis pixels map to picture pixels."""

    rows: Axis
    cols: Axis
    row_slope: float
    col_slope: float
    offset: tuple[int, int]       # analysis image origin in the work copy
    scale: float                  # picture pixels per work-copy pixel

    def corner(self, row_line: float, col_line: float) -> tuple[float, float]:
        """Picture pixel where row line Y = row_line meets column line X = col_line."""
        x = (col_line + row_line * self.col_slope) / (1.0 - self.row_slope * self.col_slope)
        y = row_line + x * self.row_slope
        return (x + self.offset[0]) * self.scale, (y + self.offset[1]) * self.scale

    def tile_corners(self, r: int, c: int) -> tuple[tuple[float, float], ...]:
        """Top-left, top-right, bottom-left, bottom-right of tile (r, c) in picture pixels."""
        y0, y1 = self.rows.span(r)
        x0, x1 = self.cols.span(c)
        return self.corner(y0, x0), self.corner(y0, x1), self.corner(y1, x0), self.corner(y1, x1)


def _bounds(points: Sequence[tuple[float, float]], size: tuple[int, int]) -> tuple[int, int, int, int]:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return (max(0, math.floor(min(xs))), max(0, math.floor(min(ys))),
            min(size[0], math.ceil(max(xs))), min(size[1], math.ceil(max(ys))))


def _tile_image(picture: Image.Image, corners: tuple[tuple[float, float], ...], upright: bool,
                box: tuple[int, int, int, int], lim: SheetLimits) -> Image.Image:
    """The tile's pixels: a plain crop when the grid is upright, else one affine resample of just the
    tile's parallelogram."""
    if upright:
        return picture.crop(box)
    (x00, y00), (x10, y10), (x01, y01), _ = corners
    width, height = math.hypot(x10 - x00, y10 - y00), math.hypot(x01 - x00, y01 - y00)
    zoom = min(1.0, lim["tile_max_side"] / max(width, height, 1.0))
    out = (max(1, round(width * zoom)), max(1, round(height * zoom)))
    affine = ((x10 - x00) / out[0], (x01 - x00) / out[1], x00, (y10 - y00) / out[0], (y01 - y00) / out[1], y00)
    return picture.transform(out, Image.Transform.AFFINE, affine, Image.Resampling.BILINEAR)


# --- finding and cutting the sheet ---------------------------------------------------------------------

def _refined(picture: Image.Image, scale: float, offset: tuple[int, int], shape: tuple[int, int],
             axes: tuple[Axis, Axis], slopes: list[float], lim: SheetLimits,
             locate: LocateLimits) -> tuple[Axis, Axis]:
    """Both axes refitted on tile edges in a finer copy of the sheet (up to `fine_side`), converted
    back to analysis-pixel line constants."""
    fine = work_copy(picture, lim["fine_side"], locate)
    k = scale / fine.scale  # fine pixels per analysis pixel
    x0, y0 = math.floor(offset[0] * k), math.floor(offset[1] * k)
    x1, y1 = math.ceil((offset[0] + shape[1]) * k), math.ceil((offset[1] + shape[0]) * k)
    gray = fine.gray[y0:y1, x0:x1]
    # Only the dark levels matter here (gutter vs the scans' black): capping brightness keeps label
    # text in the gutters and heads near the tile edges from outweighing a faint gutter edge.
    gray = np.minimum(gray, np.percentile(gray, lim["cap_q"]) + lim["cap_room"])
    dx, dy = offset[0] * k - x0, offset[1] * k - y0
    out = []
    for which, (axis, slope) in enumerate(zip(axes, slopes)):
        intensity, base = slanted_mean(gray, slope, which)
        # a line constant C in analysis pixels is k*C + shift in this crop (rows: y - s*x, columns: x - s*y)
        shift = (dy - slope * dx if which == 0 else dx - slope * dy) + base
        fitted = tile_edges(intensity, Axis(axis.start * k + shift, axis.period * k, axis.count), lim)
        out.append(Axis((fitted.start - shift) / k, fitted.period / k, fitted.count, fitted.lead / k, fitted.trail / k))
    return out[0], out[1]


def find_sheet(image: Image.Image, lim: SheetLimits = SHEET_LIMITS, locate: LocateLimits = LOCATE_LIMITS) -> Sheet | None:
    """The film sheet in `image` (≥ 2x2 regular tiles), or None for an ordinary picture or single scan."""
    picture = image if image.mode == "RGB" else image.convert("RGB")
    work = work_copy(picture, lim["work_side"], locate)
    if min(work.gray.shape) < 8 * lim["min_per_axis"]:
        return None
    gray = work.gray
    offset = (0, 0)
    film = film_region(work, locate)
    if film is not None:
        mask, (x0, y0, x1, y1) = film
        low = float(np.percentile(gray[mask], 5))
        gray = np.where(mask, gray, low)[y0:y1, x0:x1]  # the desk around the sheet reads as outer gutter
        offset = (x0, y0)
    x0, y0, x1, y1 = _content_box(gray, lim)
    gray = gray[y0:y1, x0:x1]
    offset = (offset[0] + x0, offset[1] + y0)
    if min(gray.shape) < 8 * lim["min_per_axis"]:
        return None
    weights = readable(gray, lim)
    slopes, grids = [], []
    for axis in (0, 1):  # rows first: a single scan has one tile row, and the columns need not be searched
        projection = _Projection(texture(gray, axis, lim) * weights, weights, axis, lim["min_readable"])
        slopes.append(skew_slope(projection, lim))
        profile, base = projection.profile(slopes[-1])
        found = axis_grid(profile, lim)
        if found is None:
            return None
        grids.append(Axis(found.start - base, found.period, found.count))
    rows, cols = grids
    if rows.count * cols.count < lim["min_tiles"]:
        return None
    if not lim["tile_aspect"][0] <= cols.period / rows.period <= lim["tile_aspect"][1]:
        return None
    rows, cols = _refined(picture, work.scale, offset, gray.shape, (rows, cols), slopes, lim, locate)
    grid = _Grid(rows, cols, slopes[0], slopes[1], offset, work.scale)
    upright = slopes[0] == 0.0 and slopes[1] == 0.0
    tiles: list[Tile] = []
    points: list[tuple[float, float]] = []
    for r in range(rows.count):
        for c in range(cols.count):
            corners = grid.tile_corners(r, c)
            box = _bounds(corners, picture.size)
            if box[2] - box[0] < 2 or box[3] - box[1] < 2:
                return None
            tiles.append(Tile(r, c, box, _tile_image(picture, corners, upright, box, lim)))
            points.extend(corners)
    tilt = (math.degrees(math.atan(slopes[0])), math.degrees(math.atan(slopes[1])))
    return Sheet(rows.count, cols.count, tuple(tiles), _bounds(points, picture.size), tilt)


def annotate_sheet(image: Image.Image, sheet: Sheet, colours: Sequence[tuple[int, int, int]],
                   labels: Sequence[str] | None = None, max_side: int = 640) -> Image.Image:
    """A thumbnail of the sheet with each tile outlined in its colour and, optionally, a short label."""
    region = image.convert("RGB").crop(sheet.box)
    k = min(1.0, max_side / max(region.size))
    thumb = region.resize((max(1, round(region.width * k)), max(1, round(region.height * k))), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(thumb)
    line = max(2, round(max(thumb.size) / 200))
    font = ImageFont.load_default(size=max(10, round(max(thumb.size) / (3 * max(sheet.rows, sheet.cols)) / 2)))
    for i, tile in enumerate(sheet.tiles):
        colour = tuple(colours[i % len(colours)]) if colours else DEFAULT_OUTLINE
        left, top, right, bottom = ((v - o) * k for v, o in zip(tile.box, sheet.box[:2] * 2))
        draw.rectangle((left + line, top + line, right - line, bottom - line), outline=colour, width=line)
        if labels is not None and i < len(labels) and labels[i]:
            text_box = draw.textbbox((left + 2 * line, top + 2 * line), labels[i], font=font)
            draw.rectangle(text_box, fill=(0, 0, 0))
            draw.text((left + 2 * line, top + 2 * line), labels[i], fill=colour, font=font)
    return thumb
