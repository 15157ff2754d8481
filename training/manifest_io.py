"""Read and update models/manifest.json, the single source of truth the server loads."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

MANIFEST = "manifest.json"


def load(models_dir: Path) -> dict:
    path = models_dir / MANIFEST
    if path.exists():
        return json.loads(path.read_text())
    return {"schema": 1, "models": {}}


def save(models_dir: Path, manifest: dict) -> None:
    (models_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")


def update_manifest_entry(models_dir: Path, name: str, entry: dict, content: bytes) -> dict:
    manifest = load(models_dir)
    entry = dict(entry)
    entry["sha256"] = hashlib.sha256(content).hexdigest()
    entry["bytes"] = len(content)
    entry["trained_at"] = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    manifest["models"][name] = entry
    manifest["updated_at"] = entry["trained_at"]
    if entry.get("kind") == "image":
        # The gating table was fitted on the old image models' answers; it must be fitted again.
        manifest.pop("gating", None)
    save(models_dir, manifest)
    return entry
