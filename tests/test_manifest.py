"""models/manifest.json has one schema: what training writes is what serving reads, limits included."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from inference.cascade import Cascade
from inference.manifest import ManifestError, PipelineLimits, load_manifest
from inference.picture import analyse_picture
from training import manifest_io

from .conftest import MODELS_DIR, models_copy, pick


def test_the_shipped_manifest_carries_the_limits_the_code_documents():
    assert load_manifest(MODELS_DIR).pipeline == PipelineLimits.from_code()


def test_reading_and_writing_the_shipped_manifest_changes_nothing(tmp_path):
    copy = models_copy(tmp_path)
    before = (copy / "manifest.json").read_text()
    manifest_io.save(copy, manifest_io.load(copy))
    assert (copy / "manifest.json").read_text() == before


def test_a_trainer_that_writes_an_unknown_field_fails_when_it_writes(tmp_path):
    copy = models_copy(tmp_path)
    before = (copy / "manifest.json").read_text()
    entry = {k: v for k, v in manifest_io.load(copy)["models"]["plane"].items() if k not in ("sha256", "bytes", "trained_at")}
    entry["temprature"] = 1.0
    with pytest.raises(ManifestError, match=r"models\.plane\.temprature: unknown field"):
        manifest_io.update_manifest_entry(copy, "plane", entry, (copy / "plane.tflite").read_bytes())
    assert (copy / "manifest.json").read_text() == before


def test_a_model_entry_without_its_labels_is_refused_at_load(tmp_path):
    copy = models_copy(tmp_path, lambda m: m["models"]["detector"].pop("labels"))
    with pytest.raises(ManifestError, match=r"models\.detector\.labels: missing field"):
        load_manifest(copy)


def test_a_changed_vocabulary_is_refused_at_load(tmp_path):
    copy = models_copy(tmp_path)
    with (copy / "intents_vocab.json").open("a") as f:
        f.write(" ")
    with pytest.raises(ManifestError, match="intents_vocab.json does not match its sha256"):
        load_manifest(copy)


def test_the_picture_pipeline_reads_its_limits_from_the_manifest(tmp_path, manifest_rows):
    """Raise the manifest's smallest judgeable scan above the slice's size: the served answer changes with it."""
    scan = Image.open(pick(manifest_rows, 1, source="kaggle4", label="glioma")[0])
    shipped = analyse_picture(Cascade(load_manifest(MODELS_DIR)), scan).result
    assert "too_small" not in shipped.reasons

    def demand_a_huge_scan(manifest: dict) -> None:
        manifest["pipeline"]["quality"]["min_side_px"] = 10 * max(scan.size)

    strict = analyse_picture(Cascade(load_manifest(models_copy(tmp_path, demand_a_huge_scan))), scan).result
    assert strict.verdict == "inconclusive" and "too_small" in strict.reasons


def test_a_typer_with_classes_the_code_does_not_know_is_refused_at_load(tmp_path):
    copy = models_copy(tmp_path, lambda m: m["models"]["typer"].update(labels=["glioma", "meningioma", "notumor", "adenoma"]))
    with pytest.raises(ManifestError, match=r"models\.typer\.labels must be"):
        load_manifest(copy)


def test_an_older_model_set_is_refused_with_the_command_that_upgrades_it(tmp_path):
    copy = models_copy(tmp_path)
    raw = json.loads((copy / "manifest.json").read_text())
    raw["schema"] = 1
    del raw["pipeline"]
    (copy / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(ManifestError, match="training.manifest_io upgrade"):
        load_manifest(copy)
    manifest_io.upgrade(copy)
    assert load_manifest(copy).pipeline == PipelineLimits.from_code()
