"""Too poor to judge: each reason code comes from its bad picture, clean scans pass (≥ 99 %), and the
mild real-world degradations of training/degrade.py are mostly let through."""

from __future__ import annotations

import collections

import numpy as np
import pytest
from PIL import Image, ImageFilter

from inference.imaging import decode_image
from inference.locate import locate_scan
from inference.quality import QUALITY_LIMITS, REASONS, quality_measures, quality_problems
from training.degrade import BACKGROUNDS, TRANSFORMS, degrade, seen_from_60_degrees

from .conftest import DATA_DIR, spread

CLEAN_SAMPLE = 240
BAD_SAMPLE = 40
DEGRADED_SAMPLE = 60



@pytest.fixture(scope="module")
def scans(manifest_rows) -> list[Image.Image]:
    return [decode_image((DATA_DIR / r["path"]).read_bytes()).image
            for r in spread(manifest_rows, CLEAN_SAMPLE, is_brain_mri="1")]


def darkened(image: Image.Image, _: int) -> Image.Image:
    return Image.fromarray((np.asarray(image.convert("RGB"), dtype=np.float32) * 0.1).astype(np.uint8))


def tiny_on_desk(image: Image.Image, _: int) -> Image.Image:
    """A phone photo in which the scan is only 70 px wide."""
    picture = Image.new("RGB", (480, 360), BACKGROUNDS["desk"])
    picture.paste(image.convert("RGB").resize((70, 70)), (200, 140))
    return picture


def blurred(image: Image.Image, _: int) -> Image.Image:
    return image.convert("RGB").resize((224, 224)).filter(ImageFilter.GaussianBlur(6))


def blown_up(image: Image.Image, _: int) -> Image.Image:
    return image.convert("RGB").resize((40, 40), Image.Resampling.BILINEAR).resize((224, 224), Image.Resampling.BILINEAR)


def left_part(image: Image.Image, _: int) -> Image.Image:
    return image.crop((0, 0, int(image.width * 0.45), image.height))


def lamp_reflection(image: Image.Image, seed: int) -> Image.Image:
    """A saturating highlight a quarter of the picture wide, somewhere over the head."""
    arr = np.asarray(image.convert("RGB"), dtype=np.float64)
    h, w = arr.shape[:2]
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    cy, cx, radius = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w, 0.25 * max(h, w)
    blob = np.minimum(1.5 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius ** 2)), 1.0)
    return Image.fromarray(np.clip(arr + (255 - arr) * blob[..., None], 0, 255).astype(np.uint8))


def tilted_60(image: Image.Image, seed: int) -> Image.Image:
    """A film photographed from 60°: tilted away from the camera, or sideways for odd seeds."""
    return seen_from_60_degrees(image, sideways=bool(seed % 2))


BAD = {  # reason → (how the bad picture is made, share of pictures that must get that reason)
    "too_dark": (darkened, 1.0),
    "too_small": (tiny_on_desk, 1.0),
    "too_blurry": (blurred, 1.0),
    "glare": (lamp_reflection, 1.0),
    "oblique": (tilted_60, 1.0),
    "head_cut_off": (left_part, 0.85),
}


def test_the_limits_are_documented_in_one_place():
    assert set(REASONS) == {"too_dark", "too_small", "too_blurry", "glare", "oblique", "head_cut_off"}
    assert QUALITY_LIMITS["min_side_px"] == 96
    assert all(isinstance(v, (int, float)) for v in QUALITY_LIMITS.values())


def test_every_reason_tells_the_user_what_to_do_in_both_languages():
    from bot.messages import has, t

    for reason in REASONS:
        assert has(f"reason.{reason}"), reason
        es, en = t(f"reason.{reason}", "es"), t(f"reason.{reason}", "en")
        assert es and en and es != en, reason


def test_clean_scans_pass(scans):
    flagged = [(i, quality_problems(scan)) for i, scan in enumerate(scans)]
    flagged = [(i, p) for i, p in flagged if p]
    print(f"clean test MRIs flagged: {len(flagged)}/{len(scans)} "
          f"({1 - len(flagged) / len(scans):.3f} pass) {collections.Counter(c for _, p in flagged for c in p)}")
    assert len(flagged) / len(scans) <= 0.01


@pytest.mark.parametrize("reason", sorted(BAD))
def test_each_reason_comes_from_its_bad_picture(reason, scans):
    make, share = BAD[reason]
    results = [quality_problems(make(scan, i)) for i, scan in enumerate(scans[:BAD_SAMPLE])]
    hits = sum(reason in r for r in results)
    print(f"{reason}: {hits}/{len(results)}; all codes {collections.Counter(c for r in results for c in r)}")
    assert hits / len(results) >= share


def test_a_blown_up_thumbnail_is_refused(scans):
    """A 40-px scan scaled up has no more detail than a blurred one; it is refused, as blur or size."""
    results = [quality_problems(blown_up(scan, i)) for i, scan in enumerate(scans[:BAD_SAMPLE])]
    refused = sum(bool({"too_blurry", "too_small"} & set(r)) for r in results)
    print(f"40-px scan blown up: refused {refused}/{len(results)} {collections.Counter(c for r in results for c in r)}")
    assert refused / len(results) >= 0.9


def test_the_located_scan_is_what_is_measured(scans):
    """On a desk the scan, not the desk, is measured: the same verdict as the scan alone."""
    scan = scans[0]
    picture = Image.new("RGB", (900, 700), BACKGROUNDS["window"])
    picture.paste(scan.convert("RGB").resize((500, 500)), (200, 100))
    located = locate_scan(picture)
    assert located.method == "film"
    assert quality_problems(picture, located) == quality_problems(picture) == ()
    assert quality_measures(picture, located).short_side >= 480


@pytest.mark.parametrize("transform", sorted(TRANSFORMS))
def test_mild_degradations_are_mostly_let_through(transform, scans):
    """Per-transform flag rates at degrade.py's default ranges, on 224-px test scans.

    Two are flagged by design, and bounded separately: `crop` keeps 70–90 % of the picture and so
    cuts the skull (head_cut_off is the right answer), and `recompress` of a 224-px scan leaves
    78–179 px, under the 96-px minimum for a third of the pictures (too_small is the right answer;
    a phone-sized original is not affected, see the last assertion)."""
    sample = scans[:DEGRADED_SAMPLE]
    results = [quality_problems(degrade(scan, transform, i)) for i, scan in enumerate(sample)]
    rate = sum(bool(r) for r in results) / len(results)
    print(f"{transform}: flagged {rate:.3f} {dict(collections.Counter(c for r in results for c in r))}")
    if transform == "crop":
        # The head-cut-off limits were checked on validation, where the old ones refused 1.47 % of clean public
        # slices; the new ones refuse 0.81 % and catch fewer crops (33 % of validation crop copies, was 53 %).
        assert 0.2 <= rate
    elif transform == "recompress":
        others = sum(bool(set(r) - {"too_small"}) for r in results) / len(results)
        assert others <= 0.2
        phone = [quality_problems(degrade(scan.resize((900, 900), Image.Resampling.BICUBIC), transform, i))
                 for i, scan in enumerate(sample[:20])]
        assert sum(bool(r) for r in phone) / len(phone) <= 0.2
    else:
        assert rate <= 0.2
