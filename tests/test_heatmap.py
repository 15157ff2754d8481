"""Heatmaps: mostly on the brain, different for a randomized model (Adebayo et al. 2018), rendered with a caption."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from inference.calibration import softmax
from inference.cascade import Cascade
from inference.heatmap import head_mask, mass_inside, occlusion_grid, occlusion_map, render_overlay
from inference.imaging import decode_image

from .conftest import pick


@pytest.fixture(scope="module")
def cascade(models_dir):
    return Cascade.load(models_dir)


@pytest.fixture(scope="module")
def tumour_scans(cascade, manifest_rows):
    out = []
    for label in ("glioma", "meningioma", "pituitary"):
        for path in pick(manifest_rows, 6, source="kaggle4", label=label):
            image = decode_image(path.read_bytes()).image
            result = cascade.predict_image(image)
            if result.verdict == "tumor":
                out.append((path, image, result))
    assert len(out) >= 8
    return out


def test_heat_falls_more_on_the_head_than_on_the_background(cascade, tumour_scans):
    shares, areas = [], []
    for _, image, result in tumour_scans:
        heat = occlusion_map(cascade, image, result)
        mask = head_mask(cascade.tensor_for("typer", image)[0])
        shares.append(mass_inside(heat, mask))
        areas.append(mask.mean())
    print(f"heat share inside the head mask: mean {np.mean(shares):.3f} (head covers {np.mean(areas):.3f} of the frame)")
    # Measured: 0.750, the head covering 0.550 (above 0.8 with the public-only models, whose maps were sharper).
    assert np.mean(shares) > 0.7
    assert np.mean(shares) > np.mean(areas)  # more concentrated on the head than its area alone explains


def test_a_randomized_model_gives_a_different_map(cascade, tumour_scans, tmp_path):
    """Model-parameter randomization test: same architecture, fresh random weights, exported to LiteRT."""
    pytest.importorskip("tensorflow")
    import keras

    from inference.runtime import TFLiteModel
    from training.export import convert
    from training.models import image_classifier

    spec = cascade.specs["typer"]
    arch = spec.entry.training["architecture"]
    random_nets = []
    for seed in range(3):  # fixed seeds, so the test does not depend on one draw of random weights
        keras.utils.set_random_seed(seed)
        model = image_classifier(arch["size"], spec.channels, tuple(arch["widths"]), len(spec.labels))
        random_nets.append(TFLiteModel(convert(model, "float32")))
    correlations = []
    typed = [scan for scan in tumour_scans if scan[2].tumor_type][:6]
    assert len(typed) >= 4
    for _, image, result in typed:
        pixels = cascade.tensor_for("typer", image)[0]
        target = spec.labels.index(result.tumor_type)
        trained = occlusion_map(cascade, image, result)
        for net in random_nets:
            randomized = occlusion_grid(pixels, lambda b, net=net: softmax(net.run(b)), target)
            correlations.append(np.corrcoef(trained.ravel(), randomized.ravel())[0, 1] if randomized.any() else 0.0)
    print(f"trained vs randomized map correlation: {np.round(correlations, 3).tolist()}")
    assert np.mean(np.nan_to_num(correlations)) < 0.5


def test_the_overlay_has_the_scan_size_ratio_a_scale_and_a_caption(cascade, tumour_scans):
    _, image, result = tumour_scans[0]
    heat = occlusion_map(cascade, image, result)
    overlay = render_overlay(image, heat, "regions that most influenced the model; not a tumour outline")
    assert overlay.mode == "RGB" and overlay.width > 512 and overlay.height > 512
    plain = render_overlay(image, np.zeros_like(heat), "x")
    assert np.abs(np.asarray(overlay, dtype=int) - np.asarray(plain, dtype=int)).sum() > 0


def test_predict_writes_heatmap_pngs(tmp_path, tumour_scans):
    import json

    from .test_cli import cli

    path = tumour_scans[0][0]
    out = cli("predict", "--json", "--heatmap", str(tmp_path / "maps"), str(path))
    record = json.loads(out.stdout)
    assert Image.open(record["heatmap"]).size[0] > 512
