"""Read and update models/manifest.json, the single source of truth the server loads.

Trainers edit the manifest as JSON data; every load and every save goes through the one schema
(`inference.manifest.ManifestFile`), so a trainer that writes an unknown or incomplete entry fails here, when it
writes, rather than the server when it starts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

from inference.manifest import MANIFEST_FILE, ManifestFile, parse_manifest, read_manifest_file


def load(models_dir: Path) -> dict[str, Any]:
    """The manifest as JSON data (a new, empty one when the folder has none yet)."""
    path = models_dir / MANIFEST_FILE
    return (read_manifest_file(path) if path.exists() else ManifestFile.empty()).to_json()


def save(models_dir: Path, manifest: dict[str, Any]) -> None:
    path = models_dir / MANIFEST_FILE
    checked = parse_manifest(manifest, path)
    path.write_text(json.dumps(checked.to_json(), indent=2, ensure_ascii=False) + "\n")


def update_manifest_entry(models_dir: Path, name: str, entry: dict[str, Any], content: bytes) -> dict[str, Any]:
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
