"""`saveyourlife evaluate`: score the exported LiteRT models, once, and write one results file.

Uses the temperatures, thresholds and gating table stored in models/manifest.json (nothing is refit), or with
`--refit` fits them again on the validation split only (after a change to the fitting rules, without
retraining). Then it scores the test split: each model alone (metrics.json, plots and MODEL_CARD.md per model),
the served pipeline per source × sequence and, for LGG, per mask size, and the heatmaps against LGG's tumour
masks. Everything lands in models/cards/results.json, from which the README's tables are generated
(`saveyourlife evaluate --tables`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from inference.manifest import load_manifest
from inference.runtime import TFLiteModel

from . import manifest_io
from .dataset import build_cache, read_manifest
from .gating import fit_gating, validation_rows
from .photo_variants import validation_with_copies
from .report import evaluate_task, write_reports
from .served import serve_rows
from .served_report import served_report
from .tasks import TASKS

RESULTS = Path("cards") / "results.json"


def evaluate_each_model(data_dir: Path, models_dir: Path, cache_dir: Path, refit: bool) -> dict:
    """Per-model test metrics; with `refit`, temperatures and thresholds are fitted again on validation first."""
    manifest = load_manifest(models_dir, require_gating=False)
    raw = manifest_io.load(models_dir)
    summary = {}
    for name, task in TASKS.items():
        if name not in manifest.models:
            continue
        spec = manifest[name]
        cache = build_cache(data_dir, spec.size, cache_dir)
        pixels = cache.rgb if task.channels == 3 else cache.gray
        rows, arrays = {}, {}
        for split in ("train", "val", "test"):
            idx = task.split_indices(cache, split)
            rows[split] = [cache.rows[i] for i in idx]
            arrays[split] = (pixels[idx].astype(np.float32), np.array([task.label_of(cache.rows[i]) for i in idx]))
        model = TFLiteModel(spec.file)
        if refit:
            arrays["val"] = validation_with_copies(task, cache, data_dir, cache_dir)
        logits = {s: model.run_in_chunks(arrays[s][0], tta=spec.tta) for s in ("val", "test")}
        evaluation = evaluate_task(task, logits["val"], arrays["val"][1], logits["test"], arrays["test"][1], rows,
                                   fixed=None if refit else {"temperature": spec.temperature, "thresholds": spec.thresholds})
        entry = raw["models"][name]
        entry.update(temperature=evaluation["temperature"], thresholds=evaluation["thresholds"])
        history_file = models_dir / "cards" / name / "history.json"
        history = json.loads(history_file.read_text()) if history_file.exists() else None
        write_reports(task, models_dir, entry, evaluation, history)
        entry["metrics"] = evaluation["test"]
        summary[name] = {"headline": evaluation["test"]["headline"],
                         "accuracy_by_source": evaluation["test"].get("accuracy_by_source", {}),
                         "operating_point_by_source": evaluation["test"].get("operating_point_by_source", {})}
    manifest_io.save(models_dir, raw)
    return summary


def refit_gating(data_dir: Path, models_dir: Path) -> dict:
    """Fit the gating table on validation through the served pipeline and store it in the manifest."""
    raw = manifest_io.load(models_dir)
    if raw.pop("gating", None) is not None:  # the old table is stale: fit with every gate open, none read
        manifest_io.save(models_dir, raw)
    rows = validation_rows(data_dir)
    raw["gating"] = fit_gating(rows, serve_rows(rows, data_dir, models_dir))
    manifest_io.save(models_dir, raw)
    return raw["gating"]


def evaluate_models(data_dir: Path, models_dir: Path, cache_dir: Path, refit: bool = False,
                    heatmaps: int = 150) -> dict:
    models = evaluate_each_model(data_dir, models_dir, cache_dir, refit)
    if refit or "gating" not in manifest_io.load(models_dir):
        refit_gating(data_dir, models_dir)
    test_rows = [r for r in read_manifest(data_dir) if r.split == "test" and r.is_brain_mri]
    served = serve_rows(test_rows, data_dir, models_dir)
    manifest = load_manifest(models_dir)
    results = {
        "models": models,
        "gating": manifest.raw["gating"],
        "served_test": served_report(test_rows, served),
        "versions": {name: spec.version for name, spec in manifest.models.items()},
    }
    if heatmaps:
        from .heatmap_check import heatmaps_against_masks

        results["heatmaps"] = heatmaps_against_masks(data_dir, models_dir, limit=heatmaps)
    out = models_dir / RESULTS
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    from .readme_tables import add_cross_source_section

    for name in ("detector", "typer"):
        add_cross_source_section(models_dir / "cards" / name / "MODEL_CARD.md", results)
    return results


def score_other_models(data_dir: Path, models_dir: Path, out: Path) -> dict:
    """The served pipeline's test answers for another model set (e.g. the models trained without LGG), gates
    open when it has no gating table: for the leave-one-source-out comparison in results.json."""
    test_rows = [r for r in read_manifest(data_dir) if r.split == "test" and r.is_brain_mri]
    report = served_report(test_rows, serve_rows(test_rows, data_dir, models_dir))
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return report
