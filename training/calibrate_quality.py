"""Check the picture-quality limits a model set serves (`pipeline.quality` in its manifest) against clean validation MRIs.

    python -m training.calibrate_quality [--data DIR] [--models models] [--out models/cards/quality_calibration.json]

A limit that refuses clean scans sends real patients away for nothing, so every limit must let at least
MIN_PASS of the public sets' clean validation MRIs through its own check (LGG and each source are reported). The test split is
never read here. Prints and writes the measured percentiles and pass rates.
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from inference.imaging import decode_image
from inference.locate import LocateLimits
from inference.manifest import load_manifest
from inference.quality import QualityLimits, problems_from, quality_measures

from .dataset import default_data_dir, read_manifest

MIN_PASS = 0.99
# Sources whose validation slices are what patients send: single slices chosen by a person. LGG holds every
# slice of each volume, including the first and last ones with almost no head in them, which the dark and
# small-scan checks rightly refuse; it is reported, not held to MIN_PASS.
HELD_TO_MIN_PASS = ("kaggle4", "br35h")


def _measure(job: tuple[str, QualityLimits, LocateLimits]) -> tuple[dict, tuple[str, ...]]:
    file, limits, locate = job
    m = quality_measures(decode_image(Path(file).read_bytes()).image, None, limits, locate)
    top, _, left, right = m.border_cover
    return ({"brightness": m.brightness, "sharpness": m.sharpness, "washed_share": m.washed_share,
             "cover_one": max(top, left, right), "cover_two": sorted(m.border_cover, reverse=True)[1],
             "head_aspect": m.head_aspect, "short_side": m.short_side}, problems_from(m, limits))


def calibrate(data_dir: Path, models_dir: Path, workers: int = 2) -> dict:
    rows = [r for r in read_manifest(data_dir) if r.split == "val" and r.is_brain_mri]
    pipeline = load_manifest(models_dir, require_gating=False).pipeline
    jobs = [(str(data_dir / r.path), pipeline.quality, pipeline.locate) for r in rows]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        measured = list(pool.map(_measure, jobs, chunksize=32))
    report: dict = {"split": "val", "limits": pipeline.quality, "min_pass": MIN_PASS, "by_source": {}}
    for source in sorted({r.source for r in rows}):
        picked = [m for r, m in zip(rows, measured) if r.source == source]
        values = {k: np.array([v[k] for v, _ in picked], dtype=float) for k in picked[0][0]}
        pct = lambda k, q, values=values: round(float(np.nanpercentile(values[k], q)), 4)  # noqa: E731
        flagged = {reason: round(float(np.mean([reason in p for _, p in picked])), 4)
                   for reason in ("too_dark", "too_small", "too_blurry", "glare", "oblique", "head_cut_off")}
        report["by_source"][source] = {
            "n": len(picked),
            "passes_every_check": round(float(np.mean([not p for _, p in picked])), 4),
            "flagged": flagged,
            "percentiles": {"brightness_p1": pct("brightness", 1), "sharpness_p1": pct("sharpness", 1),
                            "washed_share_p99": pct("washed_share", 99), "cover_one_p99": pct("cover_one", 99),
                            "cover_two_p99": pct("cover_two", 99), "head_aspect_p99_9": pct("head_aspect", 99.9),
                            "short_side_p1": pct("short_side", 1)},
        }
    held = [p for r, (_, p) in zip(rows, measured) if r.source in HELD_TO_MIN_PASS]
    report["public_pass_by_check"] = {reason: round(1 - float(np.mean([reason in p for p in held])), 4)
                                      for reason in report["by_source"]["kaggle4"]["flagged"]}
    report["every_check_passes_min"] = all(v >= MIN_PASS for v in report["public_pass_by_check"].values())
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--models", type=Path, default=Path("models"), help="the model set whose manifest limits are checked")
    parser.add_argument("--out", type=Path, default=Path("models/cards/quality_calibration.json"))
    args = parser.parse_args(argv)
    report = calibrate(args.data, args.models)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["by_source"], indent=2))
    return 0 if report["every_check_passes_min"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
