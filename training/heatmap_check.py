"""Do the heatmaps point at the tumour? Occlusion maps on LGG test tumour slices against the drawn masks.

For each slice (mask ≥ 300 px, evenly spaced over the test patients' slices) the detector's occlusion map for
"tumour" is computed as the bot computes it, and compared with the tumour mask carried into the same frame
(the located crop, padded to a square, resized to the model input):

- heat inside the mask: the share of the map's total heat that falls inside the mask;
- pointing game: the hottest patch lies inside the mask (Zhang et al. 2018);
- mask area: the share a map spread evenly would get, for scale.

The same figures for a network of the same architecture with random weights are the control (the
model-randomization test of Adebayo et al. 2018): a map that explains the model must beat it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from inference.calibration import softmax
from inference.heatmap import occlusion_grid
from inference.imaging import decode_image, pad_to_square

from .dataset import read_manifest
from .served_report import VISIBLE_MASK_PX


def _mask_in_model_frame(mask_file: Path, box: tuple[int, int, int, int], size: int) -> np.ndarray:
    mask = Image.open(mask_file).convert("L").crop(box)
    return np.asarray(pad_to_square(mask).resize((size, size), Image.Resampling.NEAREST)) > 127


def _figures(heat: np.ndarray, mask: np.ndarray) -> tuple[float, bool]:
    total = heat.sum()
    inside = float(heat[mask].sum() / total) if total > 0 else 0.0
    peak = np.unravel_index(np.argmax(heat), heat.shape)
    return inside, bool(mask[peak]) if total > 0 else False


def _random_detector(spec) -> object:
    import keras

    from inference.runtime import TFLiteModel

    from .export import convert
    from .models import image_classifier

    keras.utils.set_random_seed(1234)  # one fixed draw of random weights, so the control is the same each run
    arch = spec.entry.training["architecture"]
    net = image_classifier(arch["size"], spec.channels, tuple(arch["widths"]), len(spec.labels))
    return TFLiteModel(convert(net, "float32"))


def heatmaps_against_masks(data_dir: Path, models_dir: Path, limit: int = 150) -> dict:
    from inference.cascade import Cascade
    from inference.locate import locate_scan

    cascade = Cascade.load(models_dir)
    spec = cascade.specs["detector"]
    target = spec.labels.index(spec.positive_label or "tumor")
    rows = [r for r in read_manifest(data_dir) if r.source == "lgg" and r.split == "test" and r.mask_px >= VISIBLE_MASK_PX]
    rows = rows[::max(1, len(rows) // limit)][:limit]
    random_net = _random_detector(spec)
    trained, control, areas = [], [], []
    for row in rows:
        image = decode_image((data_dir / row.path).read_bytes()).image
        located = locate_scan(image)
        pixels = cascade.tensor_for("detector", located.image)[0]
        mask = _mask_in_model_frame(data_dir / row.mask, located.box, pixels.shape[0])
        if not mask.any():
            continue
        heat = occlusion_grid(pixels, lambda b: softmax(cascade.models["detector"].run(b), spec.temperature), target)
        noise = occlusion_grid(pixels, lambda b: softmax(random_net.run(b)), target)
        trained.append(_figures(heat, mask))
        control.append(_figures(noise, mask))
        areas.append(float(mask.mean()))

    def summary(pairs: list[tuple[float, bool]]) -> dict:
        return {"heat_inside_mask": round(float(np.mean([p[0] for p in pairs])), 4),
                "pointing_game": round(float(np.mean([p[1] for p in pairs])), 4)}

    return {"slices": len(trained), "min_mask_px": VISIBLE_MASK_PX, "model": "detector (tumour class)",
            "trained": summary(trained), "random_weights": summary(control),
            "mask_area_share": round(float(np.mean(areas)), 4)}
