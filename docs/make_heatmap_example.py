"""Make the README's heatmap example from generated data (a synthetic phantom), never from patient scans.

    .venv/bin/python docs/make_heatmap_example.py [--out docs/heatmap_example.png] [--from-scan FILE]

With --from-scan it renders a public sample instead, for local viewing only (do not commit that PNG).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from inference.cascade import Cascade
from inference.heatmap import occlusion_grid, render_overlay
from inference.calibration import softmax

REPO = Path(__file__).resolve().parents[1]


def phantom(size: int = 256, seed: int = 7) -> Image.Image:
    """An axial-slice-like phantom: skull ring, textured brain, ventricles and one bright round lesion."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size - 0.5
    head = (yy / 0.42) ** 2 + (xx / 0.34) ** 2
    img = np.zeros((size, size))
    img[head < 1.0] = 200
    img[head < 0.86] = 95 + 25 * rng.random(((head < 0.86).sum(),))
    ventricles = ((yy / 0.10) ** 2 + ((np.abs(xx) - 0.05) / 0.03) ** 2) < 1
    img[ventricles] = 35
    lesion = ((yy + 0.12) ** 2 + (xx - 0.12) ** 2) < 0.07 ** 2
    img[lesion] = 235
    return Image.fromarray(img.astype(np.uint8), "L").filter(ImageFilter.GaussianBlur(1.2)).convert("RGB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "heatmap_example.png")
    parser.add_argument("--from-scan", type=Path)
    args = parser.parse_args()
    cascade = Cascade.load(REPO / "models")
    image = Image.open(args.from_scan).convert("RGB") if args.from_scan else phantom()
    spec = cascade.specs["detector"]
    pixels = cascade.tensor_for("detector", image)[0]
    heat = occlusion_grid(pixels, lambda b: softmax(cascade.models["detector"].run(b), spec.temperature),
                          spec.labels.index("tumor"))
    result = cascade.predict_image(image)
    caption = f"regions that most influenced the model; not a tumour outline (verdict: {result.verdict})"
    render_overlay(image, heat, caption).save(args.out)
    print(f"wrote {args.out}: verdict {result.verdict}, tumour probability {result.tumor_probability:.2f}")


if __name__ == "__main__":
    main()
