"""Cost of one occlusion heatmap (map + overlay) on real tumour scans. Target: ≤ 300 ms on 2 cores.

    .venv/bin/python -m bench.bench_heatmap [--images N]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from inference.cascade import Cascade
from inference.heatmap import occlusion_map, render_overlay
from inference.imaging import decode_image

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    cascade = Cascade.load(REPO / "models", num_threads=args.threads)
    files = sorted((REPO.parent / "shared" / "data" / "mri" / "kaggle4" / "Testing" / "glioma").glob("*.jpg"))[: args.images]
    timings = []
    for path in files:
        image = decode_image(path.read_bytes()).image
        result = cascade.predict_image(image)
        result = result if result.verdict == "tumor" else type(result)(**{**result.__dict__, "verdict": "inconclusive"})
        started = time.perf_counter()
        heat = occlusion_map(cascade, image, result)
        render_overlay(image, heat, "regions that most influenced the model; not a tumour outline")
        timings.append((time.perf_counter() - started) * 1000)
    print(json.dumps({"images": len(timings), "threads": args.threads,
                      "heatmap_p50_ms": round(float(np.percentile(timings, 50)), 1),
                      "heatmap_p95_ms": round(float(np.percentile(timings, 95)), 1)}, indent=2))


if __name__ == "__main__":
    main()
