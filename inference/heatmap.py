"""Occlusion-sensitivity heatmaps: which regions, when hidden, change the answer most.

LiteRT gives no gradients, so instead of Grad-CAM we slide a black patch (the
value of an MRI background) over the input and measure the drop in the
probability of the predicted class, in one batched call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from pydantic import ConfigDict, with_config
from typing_extensions import TypedDict  # pydantic validates these on Python 3.11 only from typing_extensions

from .calibration import softmax

if TYPE_CHECKING:  # for annotations only: importing the cascade here would load LiteRT with this module
    from .cascade import Cascade, CascadeResult


@with_config(ConfigDict(extra="forbid"))
class HeatmapSettings(TypedDict):
    """The entries of `HEATMAP` (`pipeline.heatmap` in manifest.json)."""

    patch: int
    stride: int
    chunk: int
    overlay_blur: float


HEATMAP: HeatmapSettings = {
    "patch": 24,      # occluding square, in input pixels (128-px input: a 9 x 9 grid of 81 copies)…
    "stride": 12,     # …moved by this much
    # Occluded copies scored per LiteRT call: one call for all 81 was slower (116 vs ~60 ms) and grew each
    # thread's interpreter arena by hundreds of MB (measured with bench/load_bench.py and py-spy).
    "chunk": 8,
    "overlay_blur": 6.0,  # Gaussian radius on the patch grid (a quarter patch), so the overlay reads as a map
}


def occlusion_grid(pixels: np.ndarray, score: Callable[[np.ndarray], np.ndarray], target: int,
                   settings: HeatmapSettings = HEATMAP) -> np.ndarray:
    """Heat at input resolution (H, W) in [0, 1] for one (H, W, C) float input."""
    patch, stride, chunk = settings["patch"], settings["stride"], settings["chunk"]
    h, w = pixels.shape[:2]
    tops = list(range(0, h - patch + 1, stride))
    lefts = list(range(0, w - patch + 1, stride))
    batch = np.repeat(pixels[None], len(tops) * len(lefts), axis=0)
    boxes = []
    for i, top in enumerate(tops):
        for j, left in enumerate(lefts):
            batch[i * len(lefts) + j, top:top + patch, left:left + patch] = 0.0
            boxes.append((top, left))
    base = float(score(pixels[None])[0, target])
    drops = base - np.concatenate([score(batch[i:i + chunk])[:, target] for i in range(0, len(batch), chunk)])
    heat = np.zeros((h, w), dtype=np.float64)
    hits = np.zeros((h, w), dtype=np.float64)
    for (top, left), drop in zip(boxes, drops):
        heat[top:top + patch, left:left + patch] += max(float(drop), 0.0)
        hits[top:top + patch, left:left + patch] += 1.0
    heat = heat / np.maximum(hits, 1.0)
    peak = heat.max()
    return heat / peak if peak > 0 else heat


def occlusion_map(cascade: Cascade, image: Image.Image, result: CascadeResult) -> np.ndarray:
    """The map for a cascade result: the typer's predicted class for `tumor`, else the detector's tumour class."""
    name = "typer" if result.verdict == "tumor" and result.tumor_type else "detector"
    spec = cascade.specs[name]
    target = spec.labels.index(result.tumor_type if name == "typer" else spec.positive_label or "tumor")
    pixels = cascade.tensor_for(name, image)[0]
    model = cascade.models[name]
    return occlusion_grid(pixels, lambda b: softmax(model.run(b), spec.temperature), target,
                          cascade.manifest.pipeline.heatmap)


def _colormap(heat: np.ndarray) -> NDArray[np.uint8]:
    """A perceptual 'inferno'-like ramp in pure numpy (no matplotlib at run time)."""
    stops = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=np.float64)
    x = np.clip(heat, 0, 1) * (len(stops) - 1)
    lo = np.floor(x).astype(int)
    hi = np.minimum(lo + 1, len(stops) - 1)
    frac = (x - lo)[..., None]
    blend: NDArray[np.float64] = stops[lo] * (1 - frac) + stops[hi] * frac
    return blend.astype(np.uint8)


def heat_on_image(image: Image.Image, heat: np.ndarray, blur: float = HEATMAP["overlay_blur"]) -> np.ndarray:
    """Map a square-frame heatmap back onto the original (unpadded) picture, smoothed by `blur`."""
    width, height = image.size
    side = max(width, height)
    grid = Image.fromarray((heat * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(blur))
    square = np.asarray(grid.resize((side, side), Image.Resampling.BILINEAR))
    top, left = (side - height) // 2, (side - width) // 2
    return square[top:top + height, left:left + width].astype(np.float64) / 255.0


def render_overlay(image: Image.Image, heat: np.ndarray, caption: str, display: int = 512, alpha: float = 0.45,
                   blur: float = HEATMAP["overlay_blur"]) -> Image.Image:
    """Scan + semi-transparent heatmap + colour scale + caption, as one RGB picture (`blur`: the manifest's
    `pipeline.heatmap.overlay_blur` when served)."""
    scale = display / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    base = image.convert("RGB").resize(size, Image.Resampling.BILINEAR)
    mapped = heat_on_image(image, heat, blur)
    mapped = np.asarray(Image.fromarray((mapped * 255).astype(np.uint8)).resize(size, Image.Resampling.BILINEAR)) / 255.0
    colours = _colormap(mapped).astype(np.float64)
    weight = (alpha * np.clip(mapped * 1.5, 0, 1))[..., None]
    blended = (np.asarray(base, dtype=np.float64) * (1 - weight) + colours * weight).astype(np.uint8)
    bar_w, pad, text_h = 18, 10, 44
    canvas = Image.new("RGB", (size[0] + bar_w + 3 * pad + 34, size[1] + text_h + 2 * pad), (16, 16, 16))
    canvas.paste(Image.fromarray(blended), (pad, pad))
    ramp = _colormap(np.linspace(1, 0, size[1])[:, None].repeat(bar_w, axis=1))
    bar_x = size[0] + 2 * pad
    canvas.paste(Image.fromarray(ramp), (bar_x, pad))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=14)
    draw.text((bar_x + bar_w + 4, pad), "high", fill=(230, 230, 230), font=font)
    draw.text((bar_x + bar_w + 4, pad + size[1] - 16), "low", fill=(230, 230, 230), font=font)
    draw.text((pad, size[1] + pad + 8), caption, fill=(240, 240, 240), font=font)
    return canvas


def mass_inside(heat: np.ndarray, mask: np.ndarray) -> float:
    """Share of the heat that falls inside `mask` (same shape)."""
    total = heat.sum()
    return float(heat[mask].sum() / total) if total > 0 else 0.0


def head_mask(pixels: np.ndarray, threshold: float = 20.0) -> np.ndarray:
    """A rough skull mask for sanity checks: the filled bright region of the slice."""
    gray = pixels[..., 0] if pixels.ndim == 3 else pixels
    mask = gray > threshold
    rows = np.maximum.accumulate(mask, axis=1) & np.maximum.accumulate(mask[:, ::-1], axis=1)[:, ::-1]
    cols = np.maximum.accumulate(mask, axis=0) & np.maximum.accumulate(mask[::-1], axis=0)[::-1]
    return rows & cols
