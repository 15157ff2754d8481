"""The image decoder refuses bad input with a reason, and serving/training see identical tensors."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from inference.errors import InputRejected
from inference.imaging import MAX_FILE_BYTES, decode_image, to_tensor

from .conftest import jpeg_bytes, landscape_photo, png_bytes


def rejected(data: bytes) -> str:
    with pytest.raises(InputRejected) as info:
        decode_image(data)
    return info.value.code


def bomb_png(width: int = 60000, height: int = 60000) -> bytes:
    """A tiny PNG that declares 3.6 gigapixels (an IHDR with huge sizes and a small IDAT)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(b"IEND", b"")


def test_a_normal_photo_decodes_to_rgb():
    decoded = decode_image(jpeg_bytes(landscape_photo()))
    assert decoded.image.mode == "RGB" and decoded.image.size == (320, 240)


@pytest.mark.parametrize("data, code", [
    (b"", "empty"),
    (b"%PDF-1.7\n1 0 obj<<>>endobj\n", "not_image"),
    (b"PK\x03\x04" + b"\x00" * 100, "not_image"),
    (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>', "not_image"),
    (b"hello, this is plain text and not a picture", "corrupt"),
])
def test_non_images_are_refused_with_a_reason(data, code):
    assert rejected(data) == code


def test_truncated_jpeg_is_refused_as_corrupt():
    data = jpeg_bytes(landscape_photo())
    assert rejected(data[: len(data) // 2]) == "corrupt"


def test_file_over_20_mb_is_refused_before_decoding():
    assert rejected(b"\xff\xd8" + b"\x00" * (MAX_FILE_BYTES + 1)) == "too_large"


def test_decompression_bomb_is_refused():
    assert rejected(bomb_png()) == "too_many_pixels"


def test_animated_gif_is_refused():
    frames = [Image.new("RGB", (64, 64), (i * 80, 0, 0)) for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    assert rejected(buf.getvalue()) == "animated"


@pytest.mark.parametrize("size, code", [((1, 1), "too_small"), ((30000, 10), "too_small"), ((4000, 100), "bad_aspect")])
def test_degenerate_sizes_are_refused(size, code):
    assert rejected(png_bytes(Image.new("L", size, 128))) == code


def test_cmyk_16bit_and_palette_images_are_converted_not_refused():
    cmyk = io.BytesIO()
    Image.new("CMYK", (64, 64), (0, 50, 100, 0)).save(cmyk, format="JPEG")
    arr16 = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16)
    sixteen = png_bytes(Image.fromarray(arr16))
    palette = png_bytes(landscape_photo().convert("P", palette=Image.Palette.ADAPTIVE))
    for data, note in ((cmyk.getvalue(), "cmyk_converted"), (sixteen, "high_bit_depth_windowed"), (palette, "palette_converted")):
        decoded = decode_image(data)
        assert decoded.image.mode == "RGB"
        assert note in decoded.notes
    widened = np.asarray(decode_image(sixteen).image)[..., 0]
    assert widened.min() == 0 and widened.max() == 255  # 16-bit range is windowed, not truncated


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (80, 40), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif)
    assert decode_image(buf.getvalue()).image.size == (40, 80)


def test_to_tensor_pads_to_a_black_square_then_resizes():
    img = Image.new("RGB", (100, 50), (200, 200, 200))
    tensor = to_tensor(img, 64, 1)
    assert tensor.shape == (64, 64, 1) and tensor.dtype == np.uint8
    assert tensor[0, 32, 0] == 0 and tensor[32, 32, 0] == 200



@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_any_bytes_either_decode_or_are_refused_with_a_known_reason(data):
    try:
        decoded = decode_image(data)
    except InputRejected as exc:
        assert exc.code in {"empty", "not_image", "corrupt", "unsupported_format", "too_many_pixels", "animated",
                            "too_small", "bad_aspect", "too_large"}
    else:
        assert decoded.image.mode == "RGB"


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2000), st.integers(1, 255))
def test_mangled_real_pictures_never_escape_as_exceptions(cut, flip):
    data = bytearray(jpeg_bytes(landscape_photo()))
    position = min(cut * 7, len(data) - 1)
    data[position] ^= flip
    try:
        decode_image(bytes(data[: max(1, len(data) - cut)]))
    except InputRejected:
        pass
