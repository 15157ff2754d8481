"""The real-world degradation pipeline: deterministic, every transform changes the picture, ranges documented."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from training.degrade import RANGES, TRANSFORMS, degrade, mixed

from .test_bad_inputs import brain_like


@pytest.fixture(scope="module")
def scan() -> Image.Image:
    return brain_like((224, 224), mode="RGB")


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_each_transform_is_deterministic_changes_the_picture_and_is_documented(scan, name):
    first, again, other = degrade(scan, name, 1), degrade(scan, name, 1), degrade(scan, name, 2)
    assert name in RANGES
    assert first.mode == "RGB" and min(first.size) >= 32
    assert np.array_equal(np.asarray(first), np.asarray(again))
    if first.size == scan.size:
        assert not np.array_equal(np.asarray(first), np.asarray(scan))
    assert first.size != other.size or not np.array_equal(np.asarray(first), np.asarray(other))


def test_mixed_variants_are_reproducible_and_end_as_a_recompressed_photo(scan):
    a, b = mixed(scan, 7), mixed(scan, 7)
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert max(a.size) <= 1280


def test_degraded_pictures_still_pass_the_input_validation(scan):
    import io

    from inference.imaging import decode_image

    for seed in range(5):
        buf = io.BytesIO()
        mixed(scan, seed).save(buf, format="JPEG")
        assert decode_image(buf.getvalue()).image.mode == "RGB"


def test_a_mixed_copy_can_be_told_to_include_a_transform(scan):
    """The crop-led training copies: a crop keeps 70–90 % of width and height independently, so the aspect ratio
    moves; recompression alone keeps it."""
    led = [mixed(scan, seed, k=2, include=("crop",)) for seed in range(10)]
    plain = [mixed(scan, seed, k=1) for seed in range(10)]
    assert sum(abs(p.width / p.height - 1) > 0.02 for p in led) >= 5
    assert all(abs(p.width / p.height - 1) <= 0.02 for p in plain)
