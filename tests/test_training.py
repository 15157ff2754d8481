"""Training shares preprocessing with serving, splits by group, and exports real LiteRT models."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from inference.cascade import Cascade
from inference.imaging import decode_image
from training.dataset import read_manifest

from .conftest import pick


def test_training_cache_and_serving_give_the_same_tensor(tmp_path, data_dir, manifest_rows):
    """Tolerance: exact (0 grey levels) — both call inference.imaging on the same bytes."""
    from training.dataset import _decode_one

    files = pick(manifest_rows, 3, source="kaggle4", label="glioma") + pick(manifest_rows, 2, kind="skin")
    cascade = Cascade.load(Path(__file__).resolve().parents[1] / "models")
    for path in files:
        gray, rgb = _decode_one((str(path), 128))
        image = decode_image(path.read_bytes()).image
        assert np.array_equal(cascade.tensor_for("typer", image)[0], gray.astype(np.float32))
        assert np.array_equal(cascade.tensor_for("discriminator", image)[0], rgb.astype(np.float32))


def test_no_near_duplicate_group_spans_two_splits(data_dir):
    splits = defaultdict(set)
    for row in read_manifest(data_dir):
        splits[row.group].add(row.split)
    assert all(len(s) == 1 for s in splits.values())


def test_lgg_slices_join_the_public_rows_with_their_sequence_and_each_patient_on_one_side(data_dir):
    rows = [r for r in read_manifest(data_dir) if r.source == "lgg"]
    if not rows:
        pytest.skip("no mri/lgg in the data folder")
    assert {r.sequence for r in rows} == {"t1", "t1c", "flair"} and {r.plane for r in rows} == {"axial"}
    patients = defaultdict(set)
    for r in rows:
        patients[r.group].add(r.split)
    assert len(patients) == 76 and all(len(s) == 1 for s in patients.values())
    assert all((r.label == "glioma") == (r.mask_px > 0) for r in rows)
    assert all(r.mask for r in rows if r.mask_px)


def test_ct_slices_filed_as_mri_become_not_mri_of_their_true_kind_for_every_split(data_dir):
    from training.dataset import audited_not_mri

    audit = audited_not_mri()
    assert set(audit.values()) <= {"ct_head", "ct_body"} and "mri/br35h/yes/y1113.jpg" in audit
    rows = {r.path: r for r in read_manifest(data_dir, include_lgg=False)}
    for path, kind in audit.items():
        row = rows[path]
        assert not row.is_brain_mri and row.kind == kind and row.label == "not_mri" and row.relabelled
    # Whole near-duplicate components are listed, so no copy of an audited slice stays "brain MRI".
    groups = {rows[p].group for p in audit}
    assert not [r.path for r in rows.values() if r.group in groups and r.is_brain_mri]


def test_eye_labels_name_real_public_rows_with_known_values(data_dir):
    import csv

    from training.dataset import PLANES, SEQUENCE_LABELS_FILE, SEQUENCES
    labels = list(csv.DictReader(SEQUENCE_LABELS_FILE.open(), delimiter="\t"))
    paths = {r.path for r in read_manifest(data_dir, include_lgg=False)}
    assert len(labels) >= 800 and all(r["path"] in paths for r in labels)
    assert {r["sequence"] for r in labels} <= {*SEQUENCES, "pd", "other", "unsure"}
    assert {r["plane"] for r in labels} <= {*PLANES, "unsure"}
    labelled = [r for r in read_manifest(data_dir) if r.source != "lgg" and r.sequence]
    assert {r.sequence for r in labelled} == set(SEQUENCES)  # every sequence has public examples, T2 only here


@pytest.mark.train
def test_a_short_training_run_exports_a_litert_model_that_agrees_with_keras_and_leaves_the_test_split_alone(
        tmp_path, data_dir):
    pytest.importorskip("tensorflow")
    from training.train_image import train_and_export

    out = tmp_path / "models"
    entries = train_and_export("detector", data_dir, out, tmp_path / "cache", epochs=1, limit=96, log=lambda *_: None)
    assert set(entries) == {"detector", "typer"}  # one trunk, one file per head
    manifest = json.loads((out / "manifest.json").read_text())
    for name, entry in entries.items():
        assert manifest["models"][name]["sha256"] == entry["sha256"]
        chosen = entry["export"]["candidates"][entry["export"]["variant"]]
        assert entry["export"]["chosen_on"] == "validation"
        assert chosen["argmax_agreement_with_keras"] >= 0.98
        assert chosen["keras_val_accuracy"] - chosen["val_accuracy"] <= 0.005
        # Fitted and reported on validation only: the test split is scored by `saveyourlife evaluate`, once.
        assert entry["metrics"]["split"] == "validation" and "per_class" not in entry["metrics"]
    assert (out / "cards" / "detector" / "training_curves.png").stat().st_size > 1000
    assert not (out / "cards" / "detector" / "MODEL_CARD.md").exists()


def test_the_operating_point_keeps_every_positive_it_can_and_sits_between_the_classes():
    from training.metrics import binary_operating_point

    y = np.array([0] * 50 + [1] * 200)
    p = np.concatenate([np.linspace(0.0, 0.2, 50), np.linspace(0.6, 1.0, 200)])
    point = binary_operating_point(p, y, min_sensitivity=0.99)
    assert point["sensitivity"] == 1.0 and point["specificity"] == 1.0
    assert 0.2 < point["threshold"] < 0.6
    # Overlapping classes: the sensitivity floor wins over specificity.
    p_overlap = np.concatenate([np.linspace(0.0, 0.7, 50), np.linspace(0.3, 1.0, 200)])
    point = binary_operating_point(p_overlap, y, min_sensitivity=0.99)
    assert point["sensitivity"] >= 0.99 and ((p_overlap >= point["threshold"])[y == 1]).mean() >= 0.99
    # ...unless a specificity floor is set: then no negative may pass, and as many positives as that allows do.
    point = binary_operating_point(p_overlap, y, min_sensitivity=0.99, min_specificity=1.0)
    assert point["specificity"] == 1.0 and ((p_overlap >= point["threshold"])[y == 0]).sum() == 0
    assert 0.4 < point["sensitivity"] < 0.5 and point["threshold"] > 0.7  # positives above 0.7: 3 in 7


def test_the_test_report_reads_each_source_apart_and_the_public_sets_together():
    """The public sets' pooled sensitivity is the figure the releases trained on them alone reported."""
    from training.dataset import Row
    from training.report import evaluate_task
    from training.tasks import TASKS

    def row(source: str, label: str, split: str) -> Row:
        return Row(path=f"{source}/{label}", source=source, label=label, is_brain_mri=True, kind="brain_mri",
                   group=source, label_conflict=False, split=split)

    # Br35H: 4 tumours, one missed; Kaggle: 4 tumours, all found; LGG: 2 healthy slices, one called tumour.
    cases = [("br35h", "tumor", 3.0)] * 3 + [("br35h", "tumor", -3.0)] + [("kaggle4", "glioma", 3.0)] * 4 \
        + [("lgg", "notumor", -3.0), ("lgg", "notumor", 3.0)]
    rows = {"train": [], "val": [row(s, lab, "val") for s, lab, _ in cases],
            "test": [row(s, lab, "test") for s, lab, _ in cases]}
    logits = np.array([[0.0, z] for *_, z in cases])
    y = np.array([0 if lab == "notumor" else 1 for _, lab, _ in cases])
    fixed = {"temperature": 1.0, "thresholds": {"decision": 0.5, "band_low": 0.4, "band_high": 0.6}}
    test = evaluate_task(TASKS["detector"], logits, y, logits, y, rows, fixed=fixed)["test"]

    points = test["operating_point_by_source"]
    assert points["br35h"]["sensitivity"] == 0.75 and points["kaggle4"]["sensitivity"] == 1.0
    assert points["public"]["sensitivity"] == 0.875 and points["lgg"]["specificity"] == 0.5
    assert test["accuracy_by_source"]["public"] == {"n": 8, "accuracy": 0.875}
