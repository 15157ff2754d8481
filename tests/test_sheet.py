"""Film sheets: composed from real test-split slices, photographed with training/degrade.py, found and
cut into tiles that the cascade judges like their source slices; single slices are not sheets."""

from __future__ import annotations

import collections

import numpy as np
import pytest
from PIL import Image

from inference.cascade import Cascade
from inference.imaging import decode_image
from inference.sheet import Sheet, annotate_sheet, find_sheet
from training.degrade import RANGES, TRANSFORMS, degrade, mixed
from training.film_sheet import compose_sheet

from .conftest import DATA_DIR, iou, spread

GRIDS = ((3, 4), (4, 4), (5, 4))
SHEETS_PER_GRID = 2
PHOTOS = ("clean", "background", "perspective", "recompress", "blur", "glare", "background+recompress")
MAX_JITTER = 0.08  # "perspective with small jitter": film held ≤ 8 % off square (any rotation in degrade's ±12°)



def load(row: dict) -> Image.Image:
    return decode_image((DATA_DIR / row["path"]).read_bytes()).image



def small_jitter_seeds(count: int) -> list[int]:
    """Seeds whose `perspective` draw has corner jitter ≤ MAX_JITTER (same generator as degrade())."""
    seeds, seed = [], 0
    while len(seeds) < count:
        rng = np.random.default_rng([seed, list(TRANSFORMS).index("perspective")])
        rng.uniform(*RANGES["perspective"]["rotation_deg"])
        if rng.uniform(*RANGES["perspective"]["corner_jitter"]) <= MAX_JITTER:
            seeds.append(seed)
        seed += 1
    return seeds


def _label_map(size, boxes, cols) -> Image.Image:
    """Tile (r, c) painted (40(r+1), 40(c+1), 255) on black: the geometric transforms move it like the sheet."""
    arr = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    for k, (left, top, right, bottom) in enumerate(boxes):
        arr[top:bottom, left:right] = (40 * (k // cols + 1), 40 * (k % cols + 1), 255)
    return Image.fromarray(arr)


def _boxes_in(label_map: Image.Image, count: int, cols: int) -> list:
    a = np.asarray(label_map).astype(int)
    out = []
    for k in range(count):
        row_code, col_code = 40 * (k // cols + 1), 40 * (k % cols + 1)
        inside = (np.abs(a[..., 0] - row_code) <= 6) & (np.abs(a[..., 1] - col_code) <= 6) & (a[..., 2] >= 250)
        ys, xs = np.nonzero(inside)
        if xs.size < 50:
            out.append(None)
            continue
        x0, x1 = np.percentile(xs, [0.3, 99.7])
        y0, y1 = np.percentile(ys, [0.3, 99.7])
        out.append((int(x0), int(y0), int(x1) + 1, int(y1) + 1))
    return out


def photograph(sheet: Image.Image, boxes, cols: int, how: str, seed: int):
    """The sheet after `how` (transforms joined by '+'), and each tile's true box in the result."""
    truth_map = _label_map(sheet.size, boxes, cols)
    picture = sheet
    for name in how.split("+"):
        if name == "clean":
            continue
        picture = degrade(picture, name, seed)
        if name in ("perspective", "background"):  # same size → same random draws → same geometry
            truth_map = degrade(truth_map, name, seed)
        elif picture.size != truth_map.size:
            truth_map = truth_map.resize(picture.size, Image.Resampling.NEAREST)
    return picture, _boxes_in(truth_map, len(boxes), cols)


@pytest.fixture(scope="module")
def cascade(models_dir):
    return Cascade.load(models_dir)


@pytest.fixture(scope="module")
def slices(manifest_rows, cascade) -> list[tuple[Image.Image, str]]:
    """Test-split MRIs and the cascade's verdict on each as it is."""
    images = [load(r) for r in spread(manifest_rows, 200, is_brain_mri="1")]
    return [(image, cascade.predict_image(image).verdict) for image in images]


@pytest.fixture(scope="module")
def sheets(slices) -> list[tuple[Image.Image, list, int, list[str], int]]:
    """(sheet, true boxes, cols, source verdicts, seed) for every grid, from distinct slices."""
    out, used = [], 0
    seeds = small_jitter_seeds(len(GRIDS) * SHEETS_PER_GRID)
    for _ in range(SHEETS_PER_GRID):
        for rows, cols in GRIDS:
            chosen = slices[used:used + rows * cols]
            used += rows * cols
            seed = seeds[len(out)]
            sheet, boxes = compose_sheet([image for image, _ in chosen], rows, cols, seed=seed)
            out.append((sheet, boxes, cols, [verdict for _, verdict in chosen], seed))
    return out


def test_compose_sheet_is_deterministic_and_returns_the_tile_boxes(slices):
    images = [image for image, _ in slices[:12]]
    sheet, boxes = compose_sheet(images, 3, 4, seed=5)
    again, same_boxes = compose_sheet(images, 3, 4, seed=5)
    other, _ = compose_sheet(images, 3, 4, seed=6)
    assert np.array_equal(np.asarray(sheet), np.asarray(again)) and boxes == same_boxes
    assert sheet.size != other.size or not np.array_equal(np.asarray(sheet), np.asarray(other))
    assert len(boxes) == 12 and all(b[2] - b[0] == 224 and b[3] - b[1] == 224 for b in boxes)
    assert boxes == sorted(boxes, key=lambda b: (b[1], b[0]))  # row-major
    with pytest.raises(ValueError):
        compose_sheet(images[:5], 3, 4, seed=0)


@pytest.mark.parametrize("how", PHOTOS)
def test_tiles_are_found_and_judged_like_their_sources(how, sheets, cascade):
    """≥ 95 % of tiles found (IoU ≥ 0.6). The cascade's verdict on a found tile is compared both with
    its verdict on the clean source slice (the user-facing number; for degraded photos it includes
    the models' own sensitivity to blur/glare/compression) and with its verdict on the true tile cut
    from the same photo (what this module is responsible for)."""
    total = found = same_as_source = same_as_true_cut = 0
    by_grid = collections.Counter()
    for sheet, boxes, cols, verdicts, seed in sheets:
        picture, truth = photograph(sheet, boxes, cols, how, seed)
        result = find_sheet(picture)
        for k, true_box in enumerate(truth):
            if true_box is None:  # cut off by the transform
                continue
            total += 1
            if result is None:
                continue
            best = max(result.tiles, key=lambda t: iou(t.box, true_box))
            if iou(best.box, true_box) < 0.6:
                continue
            found += 1
            by_grid[(result.rows, result.cols)] += 1
            verdict = cascade.predict_image(best.image).verdict
            same_as_source += verdict == verdicts[k]
            same_as_true_cut += verdict == cascade.predict_image(picture.crop(true_box)).verdict
    print(f"{how}: tiles found {found}/{total} ({found / total:.3f}); same verdict as the clean source "
          f"{same_as_source / max(found, 1):.3f}, as the true cut of this photo {same_as_true_cut / max(found, 1):.3f}; "
          f"grids {dict(by_grid)}")
    assert found / total >= 0.95
    # Measured with the models trained on LGG: 0.896 (glare) to 0.990 (blur) against the true cut.
    assert same_as_true_cut / found >= 0.88
    if how == "clean":
        # The target: the same verdict as the clean sheet's own tiles in ≥ 95 % (measured 0.969). Against
        # the source slices without the printed labels it is 0.927 (0.948 with the public-only models).
        assert same_as_true_cut / found >= 0.95
        assert same_as_source / found >= 0.9


def test_a_single_slice_is_not_a_sheet(slices):
    clean = sum(find_sheet(image) is not None for image, _ in slices)
    degraded = sum(find_sheet(mixed(image, i)) is not None for i, (image, _) in enumerate(slices[:60]))
    print(f"single slices taken for sheets: clean {clean}/{len(slices)}, degraded (mixed) {degraded}/60")
    assert clean / len(slices) <= 0.01
    assert degraded / 60 <= 0.05


def test_a_collage_of_photos_is_not_called_mri(manifest_rows, cascade):
    pictures = [load(r) for kind in ("photo", "people", "document") for r in spread(manifest_rows, 12, kind=kind)]
    verdicts, found = [], 0
    for g in range(4):
        sheet, _ = compose_sheet(pictures[g * 9:(g + 1) * 9], 3, 3, seed=g)
        result = find_sheet(sheet)
        if result is not None:
            found += 1
            verdicts += [cascade.predict_image(t.image).verdict for t in result.tiles]
    print(f"photo collages found as sheets: {found}/4, tile verdicts {collections.Counter(verdicts)}")
    if verdicts:
        assert verdicts.count("not_mri") / len(verdicts) >= 0.9


def test_a_ct_sheet_is_cut_and_its_tiles_are_not_called_mri(manifest_rows, cascade):
    """Head CT is the hardest negative; the rate is the models' (printed, and reported to the lead)."""
    cts = [load(r) for r in spread(manifest_rows, 24, kind="ct_head")]
    verdicts, sources, found = [], [], 0
    for g in range(2):
        chosen = (cts[g * 6:] + cts[:g * 6])[:12]
        sheet, boxes = compose_sheet(chosen, 3, 4, seed=g)
        result = find_sheet(sheet)
        assert result is not None and (result.rows, result.cols) == (3, 4)
        found += sum(max(iou(t.box, b) for t in result.tiles) >= 0.6 for b in boxes)
        verdicts += [cascade.predict_image(t.image).verdict for t in result.tiles]
        sources += [cascade.predict_image(image).verdict for image in chosen]
    rate = verdicts.count("not_mri") / len(verdicts)
    print(f"CT sheets: tiles found {found}/24; not_mri on tiles {rate:.3f} (on the source CTs "
          f"{sources.count('not_mri') / len(sources):.3f}); {collections.Counter(verdicts)}")
    assert found == 24
    assert rate >= 0.75


def test_annotate_sheet_draws_a_small_thumbnail(sheets):
    sheet, boxes, cols, _, _ = sheets[0]
    result = find_sheet(sheet)
    assert isinstance(result, Sheet)
    colours = [(255, 0, 0), (0, 200, 0), (0, 120, 255)]
    thumb = annotate_sheet(sheet, result, colours, [str(i + 1) for i in range(len(result.tiles))], max_side=320)
    assert thumb.mode == "RGB" and max(thumb.size) <= 320
    assert annotate_sheet(sheet, result, colours).size == annotate_sheet(sheet, result, colours, None).size


@pytest.mark.parametrize("picture", [
    Image.new("RGB", (300, 200), (90, 90, 90)),
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (240, 320, 3), dtype=np.uint8)),
    Image.new("RGB", (20, 20)),
    Image.new("RGB", (3000, 40)),
], ids=["grey", "noise", "tiny", "strip"])
def test_pictures_without_a_grid_are_not_sheets(picture):
    assert find_sheet(picture) is None
