"""Find the scan inside a real-world picture: a phone photo of a film or a monitor, or a screenshot.

A scan is a bright head on a black surround. In a photo that surround sits on something that is not
black (a desk, a window, a hand), so the scan is the non-background region left after flooding the
background in from the picture's border; when the border itself is black (a clean image, a monitor
bezel, a screenshot frame) the head is what stands out. A film held at an angle is turned upright
by the angle of its minimum-area rectangle, only when the film is clearly rectangular.

The models learnt from tightly framed scans and flip borderline verdicts when a clean scan is
re-framed, so a picture is cropped to its head only when the head is clearly small in it; a clean
dataset image comes back unchanged. All analysis runs on a small copy (longest side `work_side`)
and boxes are mapped back to the input's pixels: a 1280-px photo costs a few milliseconds.
numpy + Pillow only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from pydantic import ConfigDict, with_config
from typing_extensions import TypedDict  # pydantic validates these on Python 3.11 only from typing_extensions


@with_config(ConfigDict(extra="forbid"))
class LocateLimits(TypedDict):
    """The entries of `LOCATE_LIMITS`, typed: counts, pixel sizes and grey levels written as whole numbers are
    ints (the counts and sizes index, slice and size arrays), the rest floats."""

    work_side: int
    min_work_side: int
    ring_px: int
    dark_level: int
    dark_ring_share: float
    background_tol: float
    background_spread: float
    film_min_share: float
    film_max_share: float
    film_piece_share: float
    film_rect_fill: float
    skew_search_deg: float
    skew_min_deg: float
    skew_rect_fill: float
    skew_gain: float
    skew_inset: float
    skew_max_side: int
    head_abs_level: int
    head_rel_level: float
    head_min_contrast: int
    head_min_share: float
    head_piece_share: float
    head_ring_dark: float
    label_sweeps: int
    margin: float
    fill_share: float


LOCATE_LIMITS: LocateLimits = {
    "work_side": 256,          # longest side of the analysis copy
    "min_work_side": 8,        # below this (e.g. 3000x40) there is nothing to analyse: keep the whole picture
    "ring_px": 3,              # width of the border ring (analysis pixels) used to read the background
    "dark_level": 60,          # gray at or below this is scan surround (film black, even under a colour cast)
    "dark_ring_share": 0.5,    # ring this dark → the picture's border is the scan's own surround (no film edge)
    "background_tol": 24.0,    # RGB distance (after a 3x3 mean) from the border colour that is still background
    "background_spread": 4.0,  # …or this many times the border's own median distance (textured backgrounds)
    "film_min_share": 0.02,    # a film must cover this share of the picture (a scan far away is still found)…
    "film_max_share": 0.97,    # …and leave some background visible
    "film_piece_share": 0.05,  # film pieces (split by a head touching the film edge) of this share of the largest
    "film_rect_fill": 0.80,    # film mask / its min-area rectangle: below this it is no rectangle
    "skew_search_deg": 20.0,   # de-skew angles searched (±)
    "skew_min_deg": 1.5,       # smaller tilts are left alone (rotation costs sharpness)
    "skew_rect_fill": 0.90,    # film mask / min-area rectangle needed to trust the angle
    "skew_gain": 0.96,         # the rotated rectangle must be this much smaller than the upright one
    "skew_inset": 1.5,         # analysis pixels trimmed off each side of a de-skewed film (its blurred edge)
    "skew_max_side": 448,      # longest side of a de-skewed copy (resampling cost grows with its area)
    "head_abs_level": 25,      # head pixels are brighter than the surround by at least this…
    "head_rel_level": 0.22,    # …and this share of the surround-to-highlight range
    "head_min_contrast": 40,   # highlight minus surround below this: no head (a uniform picture)
    "head_min_share": 0.03,    # head bounding box under this share of the region: noise, not a head
    "head_piece_share": 0.04,  # bright components kept with the largest (skull ring vs brain, split by CSF)
    "head_ring_dark": 0.5,     # the region's border ring must be mostly surround for a head to be trusted
    "label_sweeps": 64,        # cap on labelling sweeps (a blob needs a handful; a spiral more)
    "margin": 0.08,            # added around a head box on every side, so the skull is never cut
    "fill_share": 0.6,         # a head spanning this share of the frame (longer relative side) is framed already
}


@dataclass(frozen=True)
class Located:
    """Where the scan is in a picture, and the crop to classify."""

    image: Image.Image             # RGB crop to classify (de-skewed if `angle` != 0)
    box: tuple[int, int, int, int]  # (left, top, right, bottom) in the input picture's pixels
    method: str                    # "head" (cropped to / framed by the head), "film" (film or monitor rectangle),
                                   # "whole" (nothing better found; box = full picture)
    angle: float                   # degrees (counter-clockwise, Pillow's convention) rotated to de-skew
    foreshortening: float = 1.0    # film outline's shorter / longer opposite side: 1.0 seen straight on (or
                                   # no film edge visible), 0.77 for the tests' film tilted 60° away


@dataclass(frozen=True)
class WorkCopy:
    """The small analysis copy of a picture and how it maps back to the original."""

    gray: np.ndarray   # (h, w) float32
    rgb: np.ndarray    # (h, w, 3) float32
    scale: float       # original pixels per analysis pixel


def work_copy(image: Image.Image, side: int | None = None, lim: LocateLimits = LOCATE_LIMITS) -> WorkCopy:
    """Downscale once with a box filter (fast, and it averages photo noise away)."""
    side = side or lim["work_side"]
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    longest = max(rgb.size)
    if longest > side:
        factor = longest // side
        if factor > 1:
            rgb = rgb.reduce(factor)
        if max(rgb.size) > side:
            k = side / max(rgb.size)
            rgb = rgb.resize((max(1, round(rgb.width * k)), max(1, round(rgb.height * k))), Image.Resampling.BOX)
    arr = np.asarray(rgb, dtype=np.float32)
    gray = arr @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return WorkCopy(gray=gray, rgb=arr, scale=longest / max(rgb.size))


def label_components(mask: np.ndarray, lim: LocateLimits = LOCATE_LIMITS) -> tuple[NDArray[np.int32], int]:
    """4-connected components of a boolean mask: (labels with 0 = background, count).

    Runs along rows and along columns take the minimum label of their pixels, alternately, with
    pointer jumping in between; a blob converges in a handful of sweeps, all vectorised.
    """
    h, w = mask.shape
    idx_r = np.flatnonzero(mask)
    n = idx_r.size
    labels = np.zeros((h, w), dtype=np.int32)
    if n == 0:
        return labels, 0
    cols_t = np.flatnonzero(mask.T)
    position = np.empty(h * w, dtype=np.int64)
    position[idx_r] = np.arange(n)
    pos_c = position[(cols_t % h) * w + cols_t // h]  # column-major order, as positions in idx_r
    starts_r = np.flatnonzero(np.r_[True, (np.diff(idx_r) != 1) | (idx_r[1:] % w == 0)])
    starts_c = np.flatnonzero(np.r_[True, (np.diff(cols_t) != 1) | (cols_t[1:] % h == 0)])
    len_r = np.diff(np.r_[starts_r, n])
    len_c = np.diff(np.r_[starts_c, n])
    vals = np.arange(n, dtype=np.int64)
    for _ in range(lim["label_sweeps"]):
        before = vals
        vals = np.repeat(np.minimum.reduceat(vals, starts_r), len_r)
        vals[pos_c] = np.repeat(np.minimum.reduceat(vals[pos_c], starts_c), len_c)
        vals = vals[vals[vals]]
        if np.array_equal(vals, before):
            break
    is_root = vals == np.arange(n)
    rank = np.cumsum(is_root, dtype=np.int32)
    labels.ravel()[idx_r] = rank[vals]
    return labels, int(rank[-1])


def _ring(shape: tuple[int, int], width: int) -> np.ndarray:
    ring = np.ones(shape, dtype=bool)
    h, w = shape
    if h > 2 * width and w > 2 * width:
        ring[width:h - width, width:w - width] = False
    return ring


def _grow(mask: np.ndarray) -> np.ndarray:
    """Mask dilated by one pixel (4-neighbourhood), without wrap-around."""
    out = mask.copy()
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    out[:, 1:] |= mask[:, :-1]
    out[:, :-1] |= mask[:, 1:]
    return out


def _select(labels: NDArray[np.int32], keep: np.ndarray, count: int) -> NDArray[np.bool_]:
    lut = np.zeros(count + 1, dtype=bool)
    lut[keep] = True
    lut[0] = False
    return lut[labels]


def _smooth(arr: np.ndarray) -> np.ndarray:
    """3x3 mean (edges replicated): averages photo noise so colour tolerances can stay tight."""
    pad = np.pad(arr, ((1, 1), (1, 1)) + ((0, 0),) * (arr.ndim - 2), mode="edge")
    rows = pad[:-2] + pad[1:-1] + pad[2:]
    total: np.ndarray = rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]  # numpy's stubs lose the sum's type
    return total / 9.0


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of a non-empty mask's True pixels."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _area(box: tuple[int, int, int, int]) -> int:
    return max(0, box[2] - box[0]) * max(0, box[3] - box[1])


def background_mask(work: WorkCopy, lim: LocateLimits = LOCATE_LIMITS) -> np.ndarray | None:
    """What a photo's scan (or sheet) lies on: not dark, close to the border colour, reached from the border.

    None when the border is mostly dark — then there is no visible film edge to find.
    """
    ring = _ring(work.gray.shape, lim["ring_px"])
    if (work.gray[ring] <= lim["dark_level"]).mean() >= lim["dark_ring_share"]:
        return None
    light_ring = ring & (work.gray > lim["dark_level"])
    rgb = _smooth(work.rgb)  # photo noise would otherwise need a tolerance wide enough to leak into the head
    colour = np.median(rgb[light_ring], axis=0)
    distance = np.sqrt(((rgb - colour) ** 2).sum(axis=2))
    spread = np.median(distance[light_ring])  # a textured desk needs a wider tolerance than a plain one
    near = distance <= max(lim["background_tol"], lim["background_spread"] * spread)
    candidate = near & (work.gray > lim["dark_level"])
    labels, count = label_components(candidate, lim)
    return _select(labels, np.unique(labels[ring & candidate]), count)


def film_region(work: WorkCopy,
                lim: LocateLimits = LOCATE_LIMITS) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
    """The film/monitor region: (mask, bounding box) of the non-background blob, if rectangle-like.

    A head touching the film's edge can split the film's black surround into pieces; pieces of a
    useful size are kept together so the box still spans the whole film.
    """
    bg = background_mask(work, lim)
    if bg is None:
        return None
    labels, count = label_components(~bg, lim)
    if count == 0:
        return None
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    keep = np.flatnonzero(sizes >= lim["film_piece_share"] * sizes.max()) + 1
    box = mask_box(_select(labels, keep, count))
    share = _area(box) / bg.size
    if not lim["film_min_share"] <= share <= lim["film_max_share"]:
        return None
    x0, y0, x1, y1 = box
    mask = np.zeros_like(bg)
    mask[y0:y1, x0:x1] = ~bg[y0:y1, x0:x1]
    return mask, box


@dataclass(frozen=True)
class Tilt:
    """The minimum-area rectangle around a blob, in analysis pixels."""

    angle: float                 # Pillow rotation (counter-clockwise on screen, degrees) that makes it upright
    centre: tuple[float, float]  # (x, y)
    size: tuple[float, float]    # upright (width, height)
    fill: float                  # blob area / rectangle area: near 1 for a film


def _rotated(pts: np.ndarray, degrees: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Point coordinates after Pillow-style rotations, one row per angle."""
    t = np.radians(degrees)[:, None]
    return np.cos(t) * pts[0] + np.sin(t) * pts[1], -np.sin(t) * pts[0] + np.cos(t) * pts[1]


def min_area_rect(mask: np.ndarray, lim: LocateLimits = LOCATE_LIMITS) -> Tilt | None:
    """Minimum-area rectangle by a coarse (1°) then fine (0.2°) search over the blob's edge pixels.

    Second moments cannot orient a square film; the smallest rotated bounding rectangle can.
    The angle is 0.0 when turning barely shrinks the rectangle (an upright film).
    """
    edge = mask & ~(np.roll(mask, 1, 0) & np.roll(mask, -1, 0) & np.roll(mask, 1, 1) & np.roll(mask, -1, 1))
    ys, xs = np.nonzero(edge)
    if xs.size < 8:
        return None
    mean = np.array([xs.mean(), ys.mean()])
    pts = np.stack([xs, ys]).astype(np.float64) - mean[:, None]

    def areas(degrees: np.ndarray) -> np.ndarray:
        u, v = _rotated(pts, degrees)
        area: np.ndarray = (np.ptp(u, axis=1) + 1) * (np.ptp(v, axis=1) + 1)  # numpy's stubs lose the product's type
        return area

    coarse = np.arange(-lim["skew_search_deg"], lim["skew_search_deg"] + 0.5, 1.0)
    best = coarse[np.argmin(areas(coarse))]
    fine = np.arange(best - 1.0, best + 1.01, 0.2)
    angle = float(fine[np.argmin(areas(fine))])
    if areas(np.array([angle]))[0] > lim["skew_gain"] * areas(np.zeros(1))[0]:
        angle = 0.0
    u, v = (c[0] for c in _rotated(pts, np.array([angle])))
    cu, cv = (u.max() + u.min()) / 2, (v.max() + v.min()) / 2
    t = math.radians(angle)
    centre = (mean[0] + math.cos(t) * cu - math.sin(t) * cv, mean[1] + math.sin(t) * cu + math.cos(t) * cv)
    size = (float(np.ptp(u) + 1), float(np.ptp(v) + 1))
    return Tilt(angle, (float(centre[0]), float(centre[1])), size, float(mask.sum() / (size[0] * size[1])))


def head_box(gray: np.ndarray,
             lim: LocateLimits = LOCATE_LIMITS) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """Bounding box and mask of the bright head on a dark surround, or None when there is none."""
    if min(gray.shape) < lim["min_work_side"]:
        return None
    low, high = np.percentile(gray, [5, 99.5])
    if high - low < lim["head_min_contrast"]:
        return None
    bright = gray > low + max(lim["head_abs_level"], lim["head_rel_level"] * (high - low))
    ring = _ring(gray.shape, lim["ring_px"])
    if (~bright[ring]).mean() < lim["head_ring_dark"]:
        return None
    labels, count = label_components(_grow(bright), lim)  # joins the skull ring to the brain across thin CSF
    if count == 0:
        return None
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    keep = np.flatnonzero(sizes >= lim["head_piece_share"] * sizes.max()) + 1
    mask = _select(labels, keep, count) & bright
    box = mask_box(mask)
    if _area(box) < lim["head_min_share"] * gray.size:
        return None
    return box, mask


def foreshortening(mask: np.ndarray) -> float:
    """Shorter over longer of a blob's opposite sides, from a straight line fitted to its row (and column) runs.

    A film seen at an angle is a trapezoid: its runs grow linearly from the far side to the near one.
    The line is fitted to the middle 60 % of the runs (corners and frayed ends left out) and read at both
    ends. A rectangle is centrally symmetric, so its fitted line is flat at any rotation.
    """
    ratios = []
    for runs in (mask.sum(axis=1), mask.sum(axis=0)):
        runs = runs[runs > 0].astype(np.float64)
        n = len(runs)
        if n < 10:
            return 1.0
        middle = np.arange(n // 5, n - n // 5)
        slope, intercept = np.polyfit(middle, runs[middle], 1)
        near, far = intercept, intercept + slope * (n - 1)
        if min(near, far) <= 0:
            return 0.0
        ratios.append(min(near, far) / max(near, far))
    return float(min(ratios))


def fills_frame(box: tuple[int, int, int, int], size: tuple[int, int], lim: LocateLimits = LOCATE_LIMITS) -> bool:
    """True when a head box spans a scan's usual share of the frame (then the frame is kept as is).

    The models learnt from tightly framed scans and flip borderline verdicts on re-framing, so a
    picture is only cropped to its head when the head is clearly small in it.
    """
    return max((box[2] - box[0]) / size[0], (box[3] - box[1]) / size[1]) >= lim["fill_share"]


def _with_margin(box: tuple[float, float, float, float], size: tuple[int, int],
                 lim: LocateLimits) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) * lim["margin"], (y1 - y0) * lim["margin"]
    return (max(0, math.floor(x0 - dx)), max(0, math.floor(y0 - dy)),
            min(size[0], math.ceil(x1 + dx)), min(size[1], math.ceil(y1 + dy)))


def _scaled(box: tuple[int, int, int, int], scale: float, size: tuple[int, int]) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    return (max(0, math.floor(x0 * scale)), max(0, math.floor(y0 * scale)),
            min(size[0], math.ceil(x1 * scale)), min(size[1], math.ceil(y1 * scale)))


@dataclass(frozen=True)
class Upright:
    """A tilted film resampled upright, and how its pixels map back to the picture."""

    image: Image.Image
    affine: tuple[float, float, float, float, float, float]  # upright (i, j) → picture (x, y), Pillow's order

    def to_picture(self, box: tuple[int, int, int, int], size: tuple[int, int]) -> tuple[int, int, int, int]:
        """Axis-aligned bounding box, in picture pixels, of a box given in upright-film pixels."""
        a, b, c, d, e, f = self.affine
        i = np.array([box[0], box[2], box[2], box[0]], dtype=np.float64)
        j = np.array([box[1], box[1], box[3], box[3]], dtype=np.float64)
        x, y = a * i + b * j + c, d * i + e * j + f
        return (max(0, math.floor(x.min())), max(0, math.floor(y.min())),
                min(size[0], math.ceil(x.max())), min(size[1], math.ceil(y.max())))


def deskew(image: Image.Image, tilt: Tilt, scale: float, lim: LocateLimits = LOCATE_LIMITS) -> Upright:
    """Resample only the film's rectangle, upright, in one affine pass (cheaper than rotate-then-crop).

    Pillow's affine resampling is the slow step, so a large film is first box-reduced by an integer
    factor and the upright copy is capped at `skew_max_side` (the models look at 128 px).
    """
    inset = lim["skew_inset"]
    full_w, full_h = ((tilt.size[k] - 2 * inset) * scale for k in (0, 1))
    zoom = min(1.0, lim["skew_max_side"] / max(full_w, full_h))
    width, height = max(1, round(full_w * zoom)), max(1, round(full_h * zoom))
    cx, cy = ((c + 0.5) * scale for c in tilt.centre)
    t = math.radians(tilt.angle)
    cos, sin = math.cos(t) / zoom, math.sin(t) / zoom
    # upright-copy pixel (i, j) → picture pixel (x, y)
    affine = (cos, -sin, cx - cos * width / 2 + sin * height / 2,
              sin, cos, cy - sin * width / 2 - cos * height / 2)
    upright = Upright(Image.new("RGB", (width, height)), affine)
    left, top, right, bottom = upright.to_picture((0, 0, width, height), image.size)
    factor = max(1, int(1 / zoom))
    source = image.crop((left, top, right, bottom))
    if factor > 1:
        source = source.reduce(factor)
    a, b, c, d, e, f = affine
    local = (a / factor, b / factor, (c - left) / factor, d / factor, e / factor, (f - top) / factor)
    return Upright(source.transform((width, height), Image.Transform.AFFINE, local, Image.Resampling.BILINEAR), affine)


def _by_head(rgb: Image.Image, work: WorkCopy, lim: LocateLimits) -> Located:
    """No film edge: the picture is the scan's own surround (clean image, bezel, screenshot)."""
    full = (0, 0, rgb.width, rgb.height)
    head = head_box(work.gray, lim)
    if head is None:
        return Located(rgb, full, "whole", 0.0)
    size = (work.gray.shape[1], work.gray.shape[0])
    if fills_frame(head[0], size, lim):
        return Located(rgb, full, "head", 0.0)
    box = _scaled(_with_margin(head[0], size, lim), work.scale, rgb.size)
    return Located(rgb.crop(box), box, "head", 0.0)


def locate_scan(image: Image.Image, lim: LocateLimits = LOCATE_LIMITS) -> Located:
    """The crop of `image` most likely to be the scan, and how it was found (`lim`: the manifest's
    `pipeline.locate`)."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    full = (0, 0, rgb.width, rgb.height)
    work = work_copy(rgb, lim=lim)
    if min(work.gray.shape) < lim["min_work_side"]:
        return Located(rgb, full, "whole", 0.0)

    film = film_region(work, lim)
    if film is None:
        return _by_head(rgb, work, lim)
    mask, region = film
    tilt = min_area_rect(mask, lim)
    if tilt is None or tilt.fill < lim["film_rect_fill"]:  # not a rectangle: a dark object, not a film
        return _by_head(rgb, work, lim)
    return replace(_within_film(rgb, work, region, tilt, lim), foreshortening=foreshortening(mask))


def _within_film(rgb: Image.Image, work: WorkCopy, region: tuple[int, int, int, int], tilt: Tilt,
                 lim: LocateLimits) -> Located:
    """A visible film or monitor edge: crop to it (upright when tilted), then to the head when it is small."""
    if abs(tilt.angle) >= lim["skew_min_deg"] and tilt.fill >= lim["skew_rect_fill"]:
        upright = deskew(rgb, tilt, work.scale, lim)
        crop, box = upright.image, upright.to_picture((0, 0, *upright.image.size), rgb.size)
        inside = work_copy(crop, lim=lim)
        head = head_box(inside.gray, lim)
        size = (inside.gray.shape[1], inside.gray.shape[0])
        if head is None or fills_frame(head[0], size, lim):
            return Located(crop, box, "film", tilt.angle)
        head_in_crop = _scaled(_with_margin(head[0], size, lim), inside.scale, crop.size)
        return Located(crop.crop(head_in_crop), upright.to_picture(head_in_crop, rgb.size), "head", tilt.angle)
    x0, y0, x1, y1 = region
    box = _scaled(region, work.scale, rgb.size)
    head = head_box(work.gray[y0:y1, x0:x1], lim)
    if head is None or fills_frame(head[0], (x1 - x0, y1 - y0), lim):
        return Located(rgb.crop(box), box, "film", 0.0)
    hx0, hy0, hx1, hy1 = _with_margin(head[0], (x1 - x0, y1 - y0), lim)
    box = _scaled((x0 + hx0, y0 + hy0, x0 + hx1, y0 + hy1), work.scale, rgb.size)
    return Located(rgb.crop(box), box, "head", 0.0)
