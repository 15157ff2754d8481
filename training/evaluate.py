"""`saveyourlife evaluate`: re-measure the exported LiteRT models on the untouched test split.

Uses the temperatures and thresholds stored in models/manifest.json (nothing is refit), or with `--refit`
fits them again on the validation split only (after a change to the fitting rules, without retraining).
Rewrites each model's metrics.json, plots and MODEL_CARD.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from inference.manifest import load_manifest
from inference.runtime import TFLiteModel

from .dataset import build_cache
from .photo_variants import validation_with_copies
from .report import evaluate_task, write_reports
from .tasks import TASKS


def evaluate_models(data_dir: Path, models_dir: Path, cache_dir: Path, refit: bool = False) -> dict:
    manifest = load_manifest(models_dir)
    raw = json.loads((models_dir / "manifest.json").read_text())
    summary = {}
    for name, task in TASKS.items():
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
        logits = {s: model.run_in_chunks(arrays[s][0], tta=spec.extra.get("tta")) for s in ("val", "test")}
        evaluation = evaluate_task(task, logits["val"], arrays["val"][1], logits["test"], arrays["test"][1], rows,
                                   fixed=None if refit else {"temperature": spec.temperature, "thresholds": spec.thresholds})
        entry = raw["models"][name]
        entry.update(temperature=evaluation["temperature"], thresholds=evaluation["thresholds"])
        history_file = models_dir / "cards" / name / "history.json"
        history = json.loads(history_file.read_text()) if history_file.exists() else None
        write_reports(task, models_dir, entry, evaluation, history)
        entry["metrics"] = evaluation["test"]
        summary[name] = evaluation["test"]["headline"]
    (models_dir / "manifest.json").write_text(json.dumps(raw, indent=2, ensure_ascii=False) + "\n")
    return summary
