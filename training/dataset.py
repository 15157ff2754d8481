"""Read the data manifest, split by near-duplicate group, and cache decoded tensors.

Every image goes through `inference.imaging.decode_image` and `to_tensor`, the
exact serving path, so a cached array is what the bot would feed the model.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from inference.imaging import decode_image, to_tensor
from inference.labels import Plane, Sequence, TumorType

TYPE_LABELS = tuple(TumorType)


@dataclass(frozen=True)
class Row:
    path: str
    source: str
    label: str
    is_brain_mri: bool
    kind: str
    group: str
    label_conflict: bool
    split: str
    relabelled: bool = False  # the label audit moved it from "brain MRI" to not-MRI (see label_audit.tsv)
    sequence: str = ""  # t1 | t1c | t2 | flair, where known (LGG's own labels, or by eye: sequence_labels.tsv)
    plane: str = ""  # axial | coronal | sagittal, where known
    mask_px: int = 0  # tumour pixels in the slice's mask (LGG only; 0 elsewhere)
    mask: str = ""  # the mask PNG, relative to the data folder (LGG slices with a tumour)


AUDIT_FILE = Path(__file__).with_name("label_audit.tsv")
SEQUENCE_LABELS_FILE = Path(__file__).with_name("sequence_labels.tsv")
LGG_MANIFEST = Path("mri") / "lgg" / "manifest.tsv"
# LGG's sequence names, in the closed set the sequence model learns.
LGG_SEQUENCES = {"t1pre": "t1", "t1post": "t1c", "flair": "flair"}
SEQUENCES = tuple(Sequence)
PLANES = tuple(Plane)
# The public sets, read together where a figure is compared with the releases trained on them alone.
PUBLIC_SOURCES = ("br35h", "kaggle4")


def audited_not_mri() -> dict[str, str]:
    """Paths the published labels call brain MRI but that were confirmed by eye to be CT, with their true kind."""
    lines = [line for line in AUDIT_FILE.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("\t")[:2] for line in lines[1:])


def apply_audit(rows: list[Row], ct_kinds: dict[str, str]) -> list[Row]:
    """CT slices filed as MRI become what they are: not-MRI of their true kind, for every model and split."""
    return [replace(r, is_brain_mri=False, kind=ct_kinds[r.path], label="not_mri", relabelled=True)
            if r.path in ct_kinds else r for r in rows]


def default_data_dir() -> Path:
    return Path(os.environ.get("SAVEYOURLIFE_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def eye_labels(path: Path = SEQUENCE_LABELS_FILE) -> dict[str, tuple[str, str]]:
    """Sequence and plane of public-set slices, labelled by eye ("unsure" and other kinds become "")."""
    if not path.exists():
        return {}
    with path.open(newline="") as fh:
        return {r["path"]: (r["sequence"] if r["sequence"] in SEQUENCES else "", r["plane"] if r["plane"] in PLANES else "")
                for r in csv.DictReader(fh, delimiter="\t")}


def apply_eye_labels(rows: list[Row], labels: dict[str, tuple[str, str]]) -> list[Row]:
    return [replace(r, sequence=labels[r.path][0], plane=labels[r.path][1]) if r.path in labels else r for r in rows]


def read_lgg(data_dir: Path) -> list[Row]:
    """LGG's multi-sequence glioma slices; the patient is the group, so no patient straddles a split."""
    manifest = data_dir / LGG_MANIFEST
    if not manifest.exists():
        return []
    with manifest.open(newline="") as fh:
        return [Row(path=r["path"], source="lgg", label=r["label"], is_brain_mri=True, kind="brain_mri",
                    group="lgg:" + r["patient"], label_conflict=False, split=r["split"],
                    sequence=LGG_SEQUENCES[r["sequence"]], plane="axial", mask_px=int(r["mask_px"]), mask=r["mask"])
                for r in csv.DictReader(fh, delimiter="\t")]


def read_manifest(data_dir: Path, include_lgg: bool = True) -> list[Row]:
    """Rows of manifest.tsv (plus LGG's own manifest), or rows inferred from a plain folder-per-class tree."""
    manifest = data_dir / "manifest.tsv"
    if manifest.exists():
        with manifest.open(newline="") as fh:
            public = apply_audit([
                Row(
                    path=r["path"],
                    source=r["source"],
                    label=r["label"],
                    is_brain_mri=r["is_brain_mri"] == "1",
                    kind=r["kind"],
                    group=r["mri_dup_component"],
                    label_conflict=r["label_conflict"] == "1",
                    split=r["split"],
                )
                for r in csv.DictReader(fh, delimiter="\t")
            ], audited_not_mri())
        return apply_eye_labels(public, eye_labels()) + (read_lgg(data_dir) if include_lgg else [])
    return list(_rows_from_folders(data_dir))


def _rows_from_folders(data_dir: Path) -> Iterable[Row]:
    """Folder-per-class layout with no manifest: every image is its own group.

    Without near-duplicate groups the split is by file hash, which leaks on the
    public sets; the README says to build a manifest for honest numbers.
    """
    for path in sorted(data_dir.rglob("*")):
        if path.suffix.lower() not in {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}:
            continue
        rel = path.relative_to(data_dir).as_posix()
        label = path.parent.name.lower()
        label = {"no_tumor": "notumor", "yes": "tumor", "no": "notumor", "pituitary_tumor": "pituitary",
                 "glioma_tumor": "glioma", "meningioma_tumor": "meningioma"}.get(label, label)
        is_mri = "not_mri" not in rel
        bucket = int(hashlib.sha256(rel.encode()).hexdigest(), 16) % 100
        split = "train" if bucket < 70 else "val" if bucket < 85 else "test"
        source = "kaggle4" if label in TYPE_LABELS else ("br35h" if label == "tumor" else "not_mri" if not is_mri else "other")
        yield Row(rel, source, label if is_mri else "not_mri", is_mri, "brain_mri" if is_mri else path.parent.name, rel, False, split)


@dataclass(frozen=True)
class Cache:
    """Decoded tensors for every readable row, aligned with `rows`."""

    rows: list[Row]
    gray: np.ndarray  # (N, S, S, 1) uint8
    rgb: np.ndarray  # (N, S, S, 3) uint8

    def select(self, predicate) -> np.ndarray:
        return np.array([i for i, r in enumerate(self.rows) if predicate(r)], dtype=np.int64)


def _decode_one(args: tuple[str, int]) -> tuple[np.ndarray, np.ndarray] | None:
    path, size = args
    try:
        decoded = decode_image(Path(path).read_bytes())
    except Exception:
        return None
    return to_tensor(decoded.image, size, 1), to_tensor(decoded.image, size, 3)


def build_cache(data_dir: Path, size: int, cache_dir: Path, workers: int = 2) -> Cache:
    """Decode every image once and keep the arrays in `cache_dir` (never committed)."""
    rows = read_manifest(data_dir)
    key = hashlib.sha256(json.dumps([size, [r.path for r in rows]]).encode()).hexdigest()[:16]
    cache_file = cache_dir / f"tensors_{size}_{key}.npz"
    if cache_file.exists():
        blob = np.load(cache_file)
        keep = blob["keep"]
        return Cache([rows[i] for i in keep], blob["gray"], blob["rgb"])
    cache_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(str(data_dir / r.path), size) for r in rows]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(_decode_one, jobs, chunksize=64))
    keep = np.array([i for i, res in enumerate(results) if res is not None], dtype=np.int64)
    gray = np.stack([results[i][0] for i in keep])
    rgb = np.stack([results[i][1] for i in keep])
    tmp = cache_file.with_suffix(".tmp.npz")
    np.savez(tmp, keep=keep, gray=gray, rgb=rgb)
    tmp.rename(cache_file)
    return Cache([rows[i] for i in keep], gray, rgb)
