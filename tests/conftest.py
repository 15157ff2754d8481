"""Shared fixtures: the real data folder (skipped when absent), the committed models, sample files."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("SAVEYOURLIFE_DATA", REPO.parent / "shared" / "data"))
MODELS_DIR = REPO / "models"


def models_copy(tmp: Path, edit=None) -> Path:
    """A copy of the committed models folder (without its cards), its manifest changed by `edit(manifest)` if given."""
    copy = tmp / "models"
    shutil.copytree(MODELS_DIR, copy, ignore=shutil.ignore_patterns("cards"))
    if edit is not None:
        manifest = json.loads((copy / "manifest.json").read_text())
        edit(manifest)
        (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


def has_data() -> bool:
    return (DATA_DIR / "manifest.tsv").exists()


needs_data = pytest.mark.skipif(not has_data(), reason="../shared/data is not present")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not has_data():
        pytest.skip("../shared/data is not present")
    return DATA_DIR


@pytest.fixture(scope="session")
def manifest_rows(data_dir) -> list[dict]:
    with (data_dir / "manifest.tsv").open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def pick(rows: list[dict], n: int, **where) -> list[Path]:
    """The first n test-split rows matching `where` (deterministic)."""
    out = [DATA_DIR / r["path"] for r in rows if r["split"] == "test" and all(r[k] == v for k, v in where.items())]
    return out[:n]


def spread(rows: list[dict], n: int, **where) -> list:
    """n test-split rows matching `where`, evenly spaced through the manifest (all sources and labels)."""
    matching = [r for r in rows if r["split"] == "test" and all(r[k] == v for k, v in where.items())]
    step = max(1, len(matching) // n)
    return matching[::step][:n]


def iou(a, b) -> float:
    """Intersection over union of two (left, top, right, bottom) boxes."""
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0



@pytest.fixture(scope="session")
def models_dir() -> Path:
    return MODELS_DIR


def png_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kw)
    return buf.getvalue()


def jpeg_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=90, **kw)
    return buf.getvalue()


def landscape_photo(size=(320, 240), seed: int = 0) -> Image.Image:
    """A generated colourful 'holiday photo': sky gradient, green ground, a red sun. Clearly not an MRI."""
    w, h = size
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, h)[:, None]
    sky = np.stack([80 + 100 * y, 140 + 80 * y, 235 - 20 * y], axis=-1).repeat(w, axis=1)
    img = sky.copy()
    img[int(h * 0.6):] = [60, 150, 50]
    yy, xx = np.mgrid[:h, :w]
    sun = (yy - h * 0.25) ** 2 + (xx - w * 0.75) ** 2 < (h * 0.1) ** 2
    img[sun] = [240, 60, 30]
    img += rng.normal(0, 6, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


@pytest.fixture(scope="session")
def pg():
    """A PostgreSQL cluster for the session (tests/pg.py); skips when PostgreSQL cannot run here,
    unless SAVEYOURLIFE_REQUIRE_PG=1 (CI installs it, so there it must run)."""
    from .pg import PostgresCluster, PostgresUnavailable

    try:
        cluster = PostgresCluster().start()
    except PostgresUnavailable as exc:
        if os.environ.get("SAVEYOURLIFE_REQUIRE_PG") == "1":
            pytest.fail(f"PostgreSQL is required here but unavailable: {exc}")
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()
