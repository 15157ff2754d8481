"""Real-world degradations of a clean scan: what a phone photo of a film or a screen looks like.

Deterministic for a given seed. Used (by the real-world-scans work) both as training augmentation
and to build a degraded copy of the test split. Every transform draws its parameters from the
ranges in `RANGES`, which are the documentation of what is simulated:

| transform | what it simulates | parameters |
|---|---|---|
| perspective | film held at an angle, slight rotation | corner jitter 0–12 % of the side, rotation ±12° |
| background | scan lying on a desk / held to a window / on a monitor, with a bezel | scan scaled to 55–85 % of a 1.0–1.6× canvas |
| glare | specular highlight from a lamp or window | 1–2 Gaussian blobs, radius 8–25 %, strength 0.4–0.9 |
| moire | screen-door / moiré of photographing a monitor | sinusoid period 2.5–6 px, angle 0–180°, depth 0.06–0.18 |
| colour_cast | white balance of indoor light | per-channel gain 0.75–1.25 |
| blur | defocus or hand shake | Gaussian radius 0.8–2.5 px, or a 5–15 px motion streak |
| recompress | Telegram's photo pipeline | longest side 1280 → downscale 0.35–0.8, JPEG quality 35–75 |
| overlay | viewer screenshot: text, ruler, frame | 2–4 text lines, one ruler with ticks, a black frame 0–6 % |
| crop | part of the skull cut off | keep 70–90 % of width and height, random side |
"""

from __future__ import annotations

import hashlib
import io
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

RANGES = {
    "perspective": {"corner_jitter": (0.0, 0.12), "rotation_deg": (-12.0, 12.0)},
    "background": {"canvas_scale": (1.0, 1.6), "scan_share": (0.55, 0.85)},
    "glare": {"blobs": (1, 2), "radius": (0.08, 0.25), "strength": (0.4, 0.9)},
    "moire": {"period_px": (2.5, 6.0), "angle_deg": (0.0, 180.0), "depth": (0.06, 0.18)},
    "colour_cast": {"gain": (0.75, 1.25)},
    "blur": {"gaussian_radius": (0.8, 2.5), "motion_px": (5, 15)},
    "recompress": {"scale": (0.35, 0.8), "quality": (35, 75)},
    "overlay": {"lines": (2, 4), "frame": (0.0, 0.06)},
    "crop": {"keep": (0.70, 0.90)},
}
BACKGROUNDS = {  # RGB colours of what is behind the scan
    "desk": (120, 92, 64), "window": (225, 232, 240), "hand": (214, 170, 140), "bezel": (18, 18, 20),
}


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def perspective(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    r = RANGES["perspective"]
    img = img.rotate(_u(rng, *r["rotation_deg"]), resample=Image.Resampling.BILINEAR, expand=True)
    w, h = img.size
    j = _u(rng, *r["corner_jitter"])
    quad = [(rng.uniform(0, j) * w, rng.uniform(0, j) * h), (rng.uniform(0, j) * w, h - rng.uniform(0, j) * h),
            (w - rng.uniform(0, j) * w, h - rng.uniform(0, j) * h), (w - rng.uniform(0, j) * w, rng.uniform(0, j) * h)]
    return img.transform((w, h), Image.Transform.QUAD, [c for p in quad for c in p], Image.Resampling.BILINEAR)


def background(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    r = RANGES["background"]
    name = list(BACKGROUNDS)[int(rng.integers(len(BACKGROUNDS)))]
    side = int(max(img.size) * _u(rng, *r["canvas_scale"]))
    canvas = Image.new("RGB", (side, side), BACKGROUNDS[name])
    noise = rng.normal(0, 6, (side, side, 1))
    canvas = Image.fromarray(np.clip(np.asarray(canvas, dtype=np.float64) + noise, 0, 255).astype(np.uint8))
    scale = side * _u(rng, *r["scan_share"]) / max(img.size)
    scan = img.resize((max(1, int(img.width * scale)), max(1, int(img.height * scale))), Image.Resampling.BILINEAR)
    canvas.paste(scan, (int(rng.integers(0, side - scan.width + 1)), int(rng.integers(0, side - scan.height + 1))))
    return canvas


def glare(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    r = RANGES["glare"]
    arr = np.asarray(img, dtype=np.float64)
    h, w = arr.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    for _ in range(int(rng.integers(r["blobs"][0], r["blobs"][1] + 1))):
        cy, cx, rad = rng.uniform(0, h), rng.uniform(0, w), _u(rng, *r["radius"]) * max(h, w)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * rad ** 2)) * _u(rng, *r["strength"])
        arr = arr + (255 - arr) * blob[..., None]
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def moire(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    r = RANGES["moire"]
    arr = np.asarray(img, dtype=np.float64)
    h, w = arr.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    angle = math.radians(_u(rng, *r["angle_deg"]))
    wave = np.sin(2 * math.pi * (xx * math.cos(angle) + yy * math.sin(angle)) / _u(rng, *r["period_px"]))
    arr = arr * (1 + _u(rng, *r["depth"]) * wave[..., None])
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def colour_cast(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    gains = rng.uniform(*RANGES["colour_cast"]["gain"], size=3)
    return Image.fromarray(np.clip(np.asarray(img, dtype=np.float64) * gains, 0, 255).astype(np.uint8))


def blur(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    r = RANGES["blur"]
    if rng.random() < 0.5:
        return img.filter(ImageFilter.GaussianBlur(_u(rng, *r["gaussian_radius"])))
    # Hand shake: average of the picture shifted along a random direction, `length` pixels long.
    length = int(rng.integers(r["motion_px"][0], r["motion_px"][1] + 1))
    angle = rng.uniform(0, math.pi)
    arr = np.asarray(img, dtype=np.float64)
    acc = np.zeros_like(arr)
    for step in range(length):
        offset = step - length // 2
        acc += np.roll(arr, (round(offset * math.sin(angle)), round(offset * math.cos(angle))), axis=(0, 1))
    return Image.fromarray(np.clip(acc / length, 0, 255).astype(np.uint8))


def recompress(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    r = RANGES["recompress"]
    longest = max(img.size)
    if longest > 1280:
        img = img.resize((img.width * 1280 // longest, img.height * 1280 // longest), Image.Resampling.BILINEAR)
    scale = _u(rng, *r["scale"])
    small = img.resize((max(32, int(img.width * scale)), max(32, int(img.height * scale))), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    small.save(buf, format="JPEG", quality=int(rng.integers(r["quality"][0], r["quality"][1] + 1)))
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def overlay(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    r = RANGES["overlay"]
    frame = int(_u(rng, *r["frame"]) * max(img.size))
    canvas = Image.new("RGB", (img.width + 2 * frame, img.height + 2 * frame), (0, 0, 0))
    canvas.paste(img, (frame, frame))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=max(10, canvas.height // 28))
    labels = ["SE T1 +C", "W:1200 L:400", "Im: 12/24", "Ax 5.0mm", "R", "HOSPITAL", "2024-03-07"]
    for i in range(int(rng.integers(r["lines"][0], r["lines"][1] + 1))):
        draw.text((4 + frame, 4 + frame + i * canvas.height // 22), labels[int(rng.integers(len(labels)))],
                  fill=(235, 235, 235), font=font)
    y = canvas.height - frame - canvas.height // 12
    x0, x1 = canvas.width // 2, canvas.width // 2 + canvas.width // 4
    draw.line([(x0, y), (x1, y)], fill=(230, 230, 120), width=2)
    for k in range(6):
        x = x0 + (x1 - x0) * k // 5
        draw.line([(x, y - 6), (x, y)], fill=(230, 230, 120), width=2)
    return canvas


def crop(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    keep_w, keep_h = (_u(rng, *RANGES["crop"]["keep"]) for _ in range(2))
    w, h = img.size
    cw, ch = int(w * keep_w), int(h * keep_h)
    left = 0 if rng.random() < 0.5 else w - cw
    top = 0 if rng.random() < 0.5 else h - ch
    return img.crop((left, top, left + cw, top + ch))


TRANSFORMS = {"perspective": perspective, "background": background, "glare": glare, "moire": moire,
              "colour_cast": colour_cast, "blur": blur, "recompress": recompress, "overlay": overlay, "crop": crop}
# The order a phone photo of a screen or film goes through; `mixed` applies a random subset in this order.
PHOTO_ORDER = ("crop", "overlay", "background", "perspective", "moire", "glare", "colour_cast", "blur", "recompress")


def stable_seed(*parts: object) -> int:
    """A seed fixed by its parts (e.g. a file path and a variant), the same on every machine and run."""
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8], "little")


def degrade(image: Image.Image, transform: str, seed: int) -> Image.Image:
    """One named transform, deterministic for (image, transform, seed)."""
    rng = np.random.default_rng([seed, list(TRANSFORMS).index(transform)])
    return TRANSFORMS[transform](image.convert("RGB"), rng)


def mixed(image: Image.Image, seed: int, k: int = 4, include: tuple[str, ...] = ()) -> Image.Image:
    """k transforms drawn without replacement (always ending with recompression), applied in photo order.

    `include` names transforms that must be among the k (the rest are drawn as usual).
    """
    rng = np.random.default_rng([seed, 99])
    pool = [t for t in PHOTO_ORDER if t != "recompress" and t not in include]
    drawn = rng.choice(pool, size=max(0, k - 1 - len(include)), replace=False)
    chosen = set(drawn) | set(include) | {"recompress"}
    out = image.convert("RGB")
    for name in PHOTO_ORDER:
        if name in chosen:
            out = TRANSFORMS[name](out, rng)
    return out


# --- Hard cases: beyond the ranges above, from the real-world issue's bad-input list ---------------------
# Pictures too poor for a confident answer; the served pipeline must answer them honestly (inconclusive or
# not-MRI) or with the clean slice's own verdict. Measured by `saveyourlife evaluate --real-world`.

def seen_from_60_degrees(image: Image.Image, sideways: bool = False) -> Image.Image:
    """Foreshortened as a film tilted 60° away from the camera, on a window: height halves, the far edge
    narrows (its outline's short side is 0.77 of the long one). `sideways`: tilted about the vertical axis."""
    if sideways:
        return seen_from_60_degrees(image.rotate(90, expand=True)).rotate(-90, expand=True)
    w, h = image.size
    canvas = Image.new("RGB", (w, h), BACKGROUNDS["window"])
    # QUAD maps the output's corners (upper-left, lower-left, lower-right, upper-right) from these source points.
    quad = (-0.35 * w, -0.5 * h, 0, 1.5 * h, w, 1.5 * h, 1.35 * w, -0.5 * h)
    warped = image.convert("RGB").transform((w, h), Image.Transform.QUAD, quad, Image.Resampling.BILINEAR)
    mask = Image.new("L", image.size, 255).transform((w, h), Image.Transform.QUAD, quad)
    canvas.paste(warped, (0, 0), mask)
    return canvas


def heavy_moire(image: Image.Image) -> Image.Image:
    """A screen photographed close up: a 3.1-px stripe pattern at 45 % depth (2.5× the `moire` range)."""
    arr = np.asarray(image.convert("RGB"), dtype=np.float64)
    yy, xx = np.mgrid[:arr.shape[0], :arr.shape[1]]
    wave = np.sin(2 * np.pi * (xx * 0.8 + yy * 0.6) / 3.1)
    return Image.fromarray(np.clip(arr * (1 + 0.45 * wave[..., None]), 0, 255).astype(np.uint8))


HARD_CASES = {
    "tilted_60": seen_from_60_degrees,
    "sideways_60": lambda image: seen_from_60_degrees(image, sideways=True),
    "heavy_moire": heavy_moire,
}
