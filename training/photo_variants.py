"""Degraded copies of the training images ("phone photos" from `training.degrade`), made once and cached.

Real-world pictures need a model that has seen them; `degrade.mixed` is too slow to run inside the
training loop on 2 cores, so each training image gets `VARIANTS` fixed degraded copies, decoded through the
same `to_tensor` as serving. During training every sample is drawn clean or as one of its copies
(`DEGRADED_SHARE`), so an epoch costs the same as before.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from inference.imaging import decode_image, to_tensor

from .dataset import Cache
from .degrade import mixed, stable_seed

# One entry per degraded copy of each training image: the transforms that copy must include (the others
# are drawn at random). Two free copies, then one crop-led and one glare-led copy: after the first round of
# photo training, cut-off heads and glare were the two transforms still missing their targets.
COPY_FOCUS: tuple[tuple[str, ...], ...] = ((), (), ("crop",), ("glare",))
VARIANTS = len(COPY_FOCUS)  # degraded copies per training image
DEGRADED_SHARE = 0.5  # probability that a training sample is drawn degraded instead of clean
WORK_SIDE = 320  # images are shrunk to this longest side before degrading: the models see 128 px anyway
MAX_TRANSFORMS = 4  # each copy applies 1..MAX_TRANSFORMS transforms (recompression always included)


@dataclass(frozen=True)
class PhotoVariants:
    """`gray[k, v]` / `rgb[k, v]` is copy v of cache row `rows[k]` (only training rows have copies)."""

    rows: np.ndarray  # (K,) indices into Cache.rows
    gray: np.ndarray  # (K, V, S, S, 1) uint8
    rgb: np.ndarray  # (K, V, S, S, 3) uint8

    def slot_of(self, n_rows: int) -> np.ndarray:
        """For every cache row, its position in `rows`, or -1 when it has no copies."""
        slots = np.full(n_rows, -1, dtype=np.int64)
        slots[self.rows] = np.arange(len(self.rows))
        return slots


def _degrade_one(args: tuple[str, str, int, int]) -> tuple[np.ndarray, np.ndarray]:
    file, rel, size, seed = args
    image = decode_image(Path(file).read_bytes()).image
    if max(image.size) > WORK_SIDE:
        scale = WORK_SIDE / max(image.size)
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                             Image.Resampling.BILINEAR)
    grays, rgbs = [], []
    for v, focus in enumerate(COPY_FOCUS):
        s = stable_seed(seed, v, rel)
        photo = mixed(image, s, k=max(1 + s % MAX_TRANSFORMS, 1 + len(focus)), include=focus)
        grays.append(to_tensor(photo, size, 1))
        rgbs.append(to_tensor(photo, size, 3))
    return np.stack(grays), np.stack(rgbs)


def build_variants(cache: Cache, rows: np.ndarray, data_dir: Path, size: int, cache_dir: Path, seed: int = 1234,
                   workers: int = 2, log=print) -> PhotoVariants:
    """Degraded copies of the cache rows `rows`, cached in `cache_dir` (never committed)."""
    paths = [cache.rows[i].path for i in rows]
    key = hashlib.sha256(json.dumps([size, seed, COPY_FOCUS, MAX_TRANSFORMS, WORK_SIDE, paths]).encode()).hexdigest()[:16]
    cache_file = cache_dir / f"variants_{size}_{key}.npz"
    if cache_file.exists():
        blob = np.load(cache_file)
        return PhotoVariants(blob["rows"], blob["gray"], blob["rgb"])
    log(f"degrading {len(rows)} training images × {VARIANTS} (cached in {cache_file.name})")
    jobs = [(str(data_dir / p), p, size, seed) for p in paths]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(_degrade_one, jobs, chunksize=32))
    gray = np.stack([g for g, _ in results])
    rgb = np.stack([c for _, c in results])
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_suffix(".tmp.npz")
    np.savez(tmp, rows=rows, gray=gray, rgb=rgb)
    tmp.rename(cache_file)
    return PhotoVariants(rows, gray, rgb)


def validation_with_copies(task, cache: Cache, data_dir: Path, cache_dir: Path, seed: int = 1234
                           ) -> tuple[np.ndarray, np.ndarray]:
    """The validation split plus its photo-like copies, as (pixels, labels).

    Temperatures and thresholds are fitted on this: the bot meets phone photos, and one clean outlier
    should not set a threshold alone when a few thousand realistic pictures can. Only the free copies
    count: the crop- and glare-led ones are there to teach, and would tilt the thresholds towards the
    pictures they over-represent (measured on the same discriminator: 0.40 with the free copies, 0.15 with
    all four, which let 2 of the 271 clean non-MRI test images through).
    """
    idx = task.split_indices(cache, "val")
    y = np.array([task.label_of(cache.rows[i]) for i in idx], dtype=np.int64)
    variants = build_variants(cache, idx, data_dir, task.size, cache_dir, seed + 1)
    copies = variants.rgb if task.channels == 3 else variants.gray
    pixels = cache.rgb if task.channels == 3 else cache.gray
    free = [v for v, focus in enumerate(COPY_FOCUS) if not focus]
    x = np.concatenate([pixels[idx], *(copies[:, v] for v in free)])
    return x.astype(np.float32), np.concatenate([y] * (1 + len(free)))
