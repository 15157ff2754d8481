"""Finding the scan inside a picture: clean scans stay as they are, photos are cropped to the film,
tilted films are turned upright, and pictures without a scan come back whole without crashing."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

from inference.cascade import Cascade
from inference.imaging import decode_image
from inference.locate import Located, foreshortening, head_box, locate_scan, work_copy
from training.degrade import BACKGROUNDS, seen_from_60_degrees

from .conftest import DATA_DIR, iou, spread

CLEAN_SAMPLE = 150
PASTE_SAMPLE = 60




def on_background(scan: Image.Image, seed: int, colour: str, zoom: float = 1.0) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """The scan lying on a desk / held to a window (as training/degrade.py's `background`), and where it is."""
    rng = np.random.default_rng(seed)
    if zoom != 1.0:
        scan = scan.resize((round(scan.width * zoom), round(scan.height * zoom)), Image.Resampling.BICUBIC)
    side = int(max(scan.size) * rng.uniform(1.0, 1.6))
    canvas = np.full((side, side, 3), BACKGROUNDS[colour], dtype=np.float64) + rng.normal(0, 6, (side, side, 1))
    picture = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    k = side * rng.uniform(0.55, 0.85) / max(scan.size)
    placed = scan.convert("RGB").resize((max(1, int(scan.width * k)), max(1, int(scan.height * k))), Image.Resampling.BILINEAR)
    x, y = int(rng.integers(0, side - placed.width + 1)), int(rng.integers(0, side - placed.height + 1))
    picture.paste(placed, (x, y))
    return picture, (x, y, x + placed.width, y + placed.height)


@pytest.fixture(scope="module")
def cascade(models_dir):
    return Cascade.load(models_dir)


@pytest.fixture(scope="module")
def scans(manifest_rows) -> list[Image.Image]:
    return [decode_image((DATA_DIR / r["path"]).read_bytes()).image
            for r in spread(manifest_rows, CLEAN_SAMPLE, is_brain_mri="1")]


def test_clean_scans_keep_their_head_and_their_verdict(scans, cascade):
    same, covered = 0, 0
    for scan in scans:
        located = locate_scan(scan)
        assert isinstance(located, Located) and located.image.mode == "RGB"
        work = work_copy(scan)
        head = head_box(work.gray)
        if head is None:
            covered += 1
        else:
            hx0, hy0, hx1, hy1 = (round(v * work.scale) for v in head[0])
            x0, y0, x1, y1 = located.box
            slack = 0.02 * max(scan.size)  # box rounding between the analysis copy and the picture
            covered += x0 <= hx0 + slack and y0 <= hy0 + slack and x1 >= hx1 - slack and y1 >= hy1 - slack
        same += cascade.predict_image(located.image).verdict == cascade.predict_image(scan).verdict
    print(f"clean: head covered {covered}/{len(scans)}, same verdict {same}/{len(scans)} ({same / len(scans):.3f})")
    assert covered == len(scans)
    assert same / len(scans) >= 0.99


def test_a_scan_on_a_desk_or_window_is_found(scans):
    hits, total = 0, 0
    for i, scan in enumerate(scans[:PASTE_SAMPLE]):
        for colour, zoom in (("desk", 1.0), ("window", 1.0), ("hand", 3.0)):
            picture, truth = on_background(scan, i, colour, zoom)
            located = locate_scan(picture)
            total += 1
            hits += iou(located.box, truth) >= 0.8
    print(f"pasted on desk/window/hand: IoU >= 0.8 for {hits}/{total} ({hits / total:.3f})")
    assert hits / total >= 0.95


def test_a_tilted_film_is_turned_upright(scans):
    turned, matching, total = 0, 0, 0
    for i, scan in enumerate(scans[:24]):
        film, _ = on_background(scan.resize((600, 600)), i, ("desk", "window")[i % 2])
        colour = film.getpixel((0, 0))
        angle = 8.0 if i % 2 else -8.0
        tilted = film.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=colour)
        upright, located = locate_scan(film), locate_scan(tilted)
        total += 1
        turned += abs(located.angle + angle) <= 1.0
        a = np.asarray(located.image.convert("L").resize((32, 32), Image.Resampling.BOX), dtype=np.float64)
        b = np.asarray(upright.image.convert("L").resize((32, 32), Image.Resampling.BOX), dtype=np.float64)
        matching += np.corrcoef(a.ravel(), b.ravel())[0, 1] >= 0.9
    print(f"tilted ±8°: angle within 1° for {turned}/{total}, crop matches the upright film's for {matching}/{total}")
    assert turned / total >= 0.9
    assert matching / total >= 0.9


def test_a_film_seen_at_an_angle_is_a_trapezoid_and_a_film_seen_straight_on_is_not(scans):
    """Straight-on films read 1.0 at any rotation (a rectangle's opposite sides match); a 60° view reads its
    outline's true ratio, 0.77, whichever way it is tilted."""
    square = np.zeros((120, 160), dtype=bool)
    square[20:100, 30:130] = True
    for angle in (0, 8, 17, 45):
        rotated = np.asarray(Image.fromarray(square).rotate(angle, expand=True)) > 0
        assert foreshortening(rotated) >= 0.97, angle
    for i, scan in enumerate(scans[:12]):
        straight, _ = on_background(scan.resize((600, 600)), i, ("desk", "window")[i % 2])
        assert locate_scan(straight).foreshortening >= 0.95
        seen = locate_scan(seen_from_60_degrees(scan.resize((600, 600)), sideways=bool(i % 2)))
        assert seen.method == "film" and 0.7 <= seen.foreshortening <= 0.8, seen


@pytest.mark.parametrize("picture", [
    Image.new("RGB", (400, 300), (128, 128, 128)),
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)),
    Image.new("RGB", (300, 300), (0, 0, 0)),
], ids=["grey", "noise", "black"])
def test_a_picture_without_structure_comes_back_whole(picture):
    located = locate_scan(picture)
    assert located.method == "whole"
    assert located.box == (0, 0, picture.width, picture.height)
    assert located.angle == 0.0


@pytest.mark.parametrize("size", [(32, 32), (3000, 40), (40, 3000), (1, 1)])
def test_odd_sizes_do_not_crash(size):
    picture = Image.fromarray(np.random.default_rng(1).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    located = locate_scan(picture)
    x0, y0, x1, y1 = located.box
    assert 0 <= x0 < x1 <= size[0] and 0 <= y0 < y1 <= size[1]


def test_a_phone_sized_photo_is_located_quickly(scans):
    """Budget: 15 ms on a 1280-px photo on an idle core (asserted loosely: the CI CPU is shared)."""
    photos = []
    for scan in scans[:10]:
        picture = Image.new("RGB", (1280, 960), BACKGROUNDS["desk"])
        picture.paste(scan.convert("RGB").resize((800, 800)), (240, 80))
        photos.append(picture)
    locate_scan(photos[0])
    times = []
    for picture in photos * 3:
        started = time.perf_counter()
        assert locate_scan(picture).method == "film"
        times.append((time.perf_counter() - started) * 1000)
    print(f"locate on 1280x960: median {np.median(times):.1f} ms, best {min(times):.1f} ms")
    assert min(times) < 40
