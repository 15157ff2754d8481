"""Decode untrusted bytes into a clean image, and turn an image into a model tensor.

`to_tensor` is the single preprocessing step shared by serving and training
(`training.dataset` imports it), so both see identical pixels.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InputRejected

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 40_000_000
MIN_SIDE = 32
MAX_ASPECT = 8.0

# Formats we accept. Anything else Pillow may open (EPS, PSD, ICO…) is refused.
ACCEPTED_FORMATS = {"JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF", "MPO"}


@dataclass(frozen=True)
class DecodedImage:
    """A validated picture in 8-bit RGB, plus what we learnt while decoding it."""

    image: Image.Image
    source_format: str
    source_mode: str
    notes: tuple[str, ...] = ()


def _sniff_non_image(data: bytes) -> str | None:
    head = data[:1024].lstrip()
    if head.startswith(b"%PDF"):
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    lowered = head[:512].lower()
    if lowered.startswith(b"<?xml") or b"<svg" in lowered or lowered.startswith(b"<!doctype") or lowered.startswith(b"<html"):
        return "markup"
    return None


def _to_8bit_rgb(img: Image.Image) -> tuple[Image.Image, list[str]]:
    notes: list[str] = []
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = np.percentile(arr, [0.5, 99.5]) if arr.size else (0.0, 1.0)
        if hi <= lo:
            hi = lo + 1.0
        arr = np.clip((arr - lo) / (hi - lo), 0.0, 1.0) * 255.0
        img = Image.fromarray(arr.astype(np.uint8), mode="L")
        notes.append("high_bit_depth_windowed")
    elif mode == "CMYK":
        img = img.convert("RGB")
        notes.append("cmyk_converted")
    elif mode in ("P", "PA"):
        img = img.convert("RGBA")
        notes.append("palette_converted")
    if img.mode in ("RGBA", "LA") or (img.mode == "RGB" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB"), notes


def decode_image(data: bytes) -> DecodedImage:
    """Validate and decode an uploaded picture, or raise InputRejected with a reason."""
    if not data:
        raise InputRejected("empty", "the file is empty (0 bytes)")
    if len(data) > MAX_FILE_BYTES:
        raise InputRejected("too_large", f"the file is {len(data) / 1e6:.1f} MB; the limit is {MAX_FILE_BYTES // (1024 * 1024)} MB")
    kind = _sniff_non_image(data)
    if kind is not None:
        raise InputRejected("not_image", f"this looks like a {kind.upper()} file, not a picture",
                            what={"pdf": "PDF", "zip": "ZIP", "markup": "SVG/HTML"}[kind])
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img: Image.Image = Image.open(io.BytesIO(data))  # exif_transpose below gives a plain Image
            fmt = img.format or "?"
            if fmt not in ACCEPTED_FORMATS:
                raise InputRejected("unsupported_format", f"{fmt} pictures are not supported; send JPEG or PNG")
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise InputRejected("too_many_pixels", f"the picture is {width}x{height} pixels; "
                                                       f"the limit is {MAX_PIXELS // 1_000_000} megapixels")
            if getattr(img, "is_animated", False) and getattr(img, "n_frames", 1) > 1:
                raise InputRejected("animated", "animated pictures are not supported; send a single still image")
            source_mode = img.mode
            img.load()
            img = ImageOps.exif_transpose(img)
        except InputRejected:
            raise
        except (Image.DecompressionBombWarning, Image.DecompressionBombError):
            raise InputRejected("too_many_pixels", "the picture declares too many pixels (decompression bomb)") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error) as exc:
            raise InputRejected("corrupt", f"the file could not be read as a picture ({type(exc).__name__})") from None
    width, height = img.size
    if min(width, height) < MIN_SIDE:
        raise InputRejected("too_small", f"the picture is only {width}x{height} pixels; send at least {MIN_SIDE}x{MIN_SIDE}")
    if max(width, height) / min(width, height) > MAX_ASPECT:
        raise InputRejected("bad_aspect", f"the picture is {width}x{height}, too long and thin to be a scan")
    rgb, notes = _to_8bit_rgb(img)
    return DecodedImage(image=rgb, source_format=fmt, source_mode=source_mode, notes=tuple(notes))


def pad_to_square(img: Image.Image) -> Image.Image:
    """Centre the picture on a black square: scans have black backgrounds, so padding adds no signal."""
    width, height = img.size
    side = max(width, height)
    if width == height:
        return img
    canvas = Image.new(img.mode, (side, side), 0)
    canvas.paste(img, ((side - width) // 2, (side - height) // 2))
    return canvas


def to_tensor(img: Image.Image, size: int, channels: int) -> np.ndarray:
    """The model input: padded square, resized with bilinear filtering, uint8 HxWxC.

    Models take uint8 and rescale inside the graph, so caches stay compact and
    the serving path has no float conversion of its own to drift from training.
    """
    mode = "L" if channels == 1 else "RGB"
    square = pad_to_square(img.convert(mode))
    resized = square.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
    arr = np.asarray(resized, dtype=np.uint8)
    if channels == 1:
        arr = arr[:, :, None]
    return arr
