"""The whole picture path a user meets: `saveyourlife predict --json` on real-world pictures built from test images."""

from __future__ import annotations

import json

import pytest
from PIL import Image, ImageEnhance

from inference.cascade import VERDICTS
from training.dataset import audited_not_mri
from training.degrade import degrade, heavy_moire, seen_from_60_degrees
from training.film_sheet import compose_sheet

from .conftest import DATA_DIR, pick
from .test_cli import cli


def predict_json(*files) -> list[dict]:
    return [json.loads(line) for line in cli("predict", "--json", *map(str, files)).stdout.splitlines() if line.strip()]


def rel(path) -> str:
    return path.relative_to(DATA_DIR).as_posix()


def open_rgb(path) -> Image.Image:
    return Image.open(path).convert("RGB")


def on_desk(scan: Image.Image) -> Image.Image:
    """A phone photo of a film lying on a wooden desk: the scan fills about half of the picture."""
    desk = Image.new("RGB", (int(scan.width * 1.6), int(scan.height * 1.4)), (120, 92, 64))
    desk.paste(scan, (int(scan.width * 0.4), int(scan.height * 0.25)))
    return desk


@pytest.fixture(scope="module")
def pictures(tmp_path_factory, manifest_rows):
    """One file per situation the issue names; built once, predicted in one CLI call."""
    tmp = tmp_path_factory.mktemp("pictures")
    gliomas = [open_rgb(p) for p in pick(manifest_rows, 12, source="kaggle4", label="glioma")]
    ct = [open_rgb(p) for p in pick(manifest_rows, 12, kind="ct_head")]
    photos = [open_rgb(p) for p in pick(manifest_rows, 9, kind="photo")]
    singles = [open_rgb(pick(manifest_rows, 1, source="kaggle4", label=label)[0])
               for label in ("glioma", "meningioma", "pituitary")]
    single = singles[2]
    files = {}

    def save(name: str, image: Image.Image) -> None:
        files[name] = tmp / f"{name}.jpg"
        image.save(files[name], quality=90)

    sheet, boxes = compose_sheet(gliomas, 3, 4, seed=7)
    save("mri_sheet", degrade(sheet, "recompress", seed=3))
    save("ct_sheet", compose_sheet(ct, 3, 4, seed=8)[0])
    save("collage", compose_sheet(photos, 3, 3, seed=9, labels=False)[0])
    for i, image in enumerate(singles):
        save(f"single_{i}", image)
        save(f"single_{i}_on_desk", on_desk(image))
    save("too_dark", ImageEnhance.Brightness(single).enhance(0.08))
    return files, boxes, tmp


def test_a_film_sheet_gets_one_answer_with_a_tile_per_slice(pictures):
    files, boxes, _ = pictures
    record = predict_json(files["mri_sheet"])[0]
    assert record["ok"] and record["grid"] == [3, 4]
    assert len(record["tiles"]) == 12
    for tile in record["tiles"]:
        assert set(tile) >= {"row", "col", "box", "verdict", "tumor_type", "mri_probability", "tumor_probability",
                             "type_probabilities", "reasons"}
    assert record["verdict"] in ("tumor", "inconclusive")
    assert record["drivers"] and all(0 <= i < 12 for i in record["drivers"])


def test_a_ct_sheet_and_a_photo_collage_are_called_not_mri(pictures):
    files, _, _ = pictures
    ct, collage = predict_json(files["ct_sheet"], files["collage"])
    assert ct["ok"] and ct["verdict"] == "not_mri"
    assert collage["ok"] and collage["verdict"] == "not_mri"


def test_a_scan_photographed_on_a_desk_is_cut_out_before_classifying(pictures):
    files, _, _ = pictures
    names = [f"single_{i}" for i in range(3)]
    clean = predict_json(*(files[n] for n in names))
    on_desk = predict_json(*(files[n + "_on_desk"] for n in names))
    for name, before, after in zip(names, clean, on_desk):
        assert after["ok"] and "tiles" not in after
        left, top, right, bottom = after["crop_box"]
        width, height = Image.open(files[name + "_on_desk"]).size
        assert (right - left) * (bottom - top) < 0.8 * width * height
        # Measured: the pituitary tumour stays "tumour" (no type named: the typer is less sure on the photo than
        # its validated level); the glioma (detector 0.89 clean, 0.69 on the desk) falls below its cell's floor
        # for "tumour" and, like the meningioma, becomes inconclusive. No confident different answer.
        assert same_or_more_cautious(after, before), (name, before, after)
    assert sum(after["verdict"] == before["verdict"] for before, after in zip(clean, on_desk)) >= 1


def test_a_picture_too_dark_to_judge_is_inconclusive_with_a_reason_to_act_on(pictures):
    files, _, _ = pictures
    record = predict_json(files["too_dark"])[0]
    assert record["verdict"] == "inconclusive" and "too_dark" in record["reasons"]
    assert "more light" in cli("predict", str(files["too_dark"])).stdout


def light_box(films: list[Image.Image]) -> Image.Image:
    """Three films side by side on a bright light box, as one phone photo."""
    side = 360
    box = Image.new("RGB", (3 * side + 80, side + 60), (240, 242, 236))
    for i, film in enumerate(films):
        box.paste(film.resize((side, side)), (20 + i * (side + 20), 30))
    return box


def same_or_more_cautious(answer: dict, clean: dict) -> bool:
    """The clean slice's own answer, or an honest step back from it: inconclusive, not an MRI, or its tumour
    verdict with no type named (a photo often lowers the typer's confidence below its validated level)."""
    if answer["verdict"] in ("inconclusive", "not_mri"):
        return True
    if answer["verdict"] == clean["verdict"] == "tumor" and answer["tumor_type"] is None:
        return True
    return (answer["verdict"], answer["tumor_type"]) == (clean["verdict"], clean["tumor_type"])


def test_hard_pictures_get_an_answer_and_rarely_a_confident_different_one(tmp_path, manifest_rows):
    """The issue's bad-input list. An answer is honest ('inconclusive' / 'not an MRI') or the clean slice's own
    verdict; a film seen from 60° is refused as photographed at an angle. Known gap: heavy moiré still gets a
    confident different answer for 5.8 % of 412 test slices (`evaluate --real-world`, README); here one of the
    six moiré copies, a healthy T2 slice the clean picture left inconclusive, is told "tumour" (no type)."""
    ct = audited_not_mri()  # some of the sets' "no tumour" MRIs are head CT: not what this test is about
    no_tumour = [p for p in pick(manifest_rows, 40, source="kaggle4", label="notumor") if rel(p) not in ct]
    paths = pick(manifest_rows, 3, source="kaggle4", label="meningioma") + no_tumour[:3]
    files = []
    for i, path in enumerate(paths):
        image = open_rgb(path)
        for name, picture in (("tilted", seen_from_60_degrees(image)), ("moire", heavy_moire(image))):
            files.append(tmp_path / f"{i}_{name}.jpg")
            picture.save(files[-1], quality=85)
    sheets = [compose_sheet([open_rgb(p) for p in paths[:4]], 2, 2, seed=s)[0] for s in (1, 2, 3)]
    files.append(tmp_path / "light_box.jpg")
    light_box(sheets).save(files[-1], quality=85)
    clean = {str(p): r for p, r in zip(paths, predict_json(*paths))}
    records = predict_json(*files)
    assert len(records) == len(files) and all(r["ok"] for r in records)
    different = {"tilted": 0, "moire": 0}
    for record, file in zip(records[:-1], files[:-1]):
        source = clean[str(paths[int(file.name.split("_")[0])])]
        different[file.stem.split("_")[1]] += not same_or_more_cautious(record, source)
    assert different["tilted"] == 0 and different["moire"] <= 1, different
    tilted = [r for r, f in zip(records, files) if "tilted" in f.stem]
    # Refused as photographed at an angle, or (measured: 3 of these 6 with these models, whose MRI threshold is
    # stricter) called not an MRI at all; both are honest, and most say what to do.
    assert all((r["verdict"] == "inconclusive" and "oblique" in r["reasons"]) or r["verdict"] == "not_mri"
               for r in tilted), tilted
    assert sum("oblique" in r["reasons"] for r in tilted) >= len(tilted) / 2
    assert records[-1]["verdict"] in VERDICTS
