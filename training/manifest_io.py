"""Read and update models/manifest.json, the single source of truth the server loads.

Trainers edit the manifest as JSON data; every load and every save goes through the one schema
(`inference.manifest.ManifestFile`), so a trainer that writes an unknown or incomplete entry fails here, when it
writes, rather than the server when it starts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

from inference.manifest import MANIFEST_FILE, SCHEMA_VERSION, ManifestFile, PipelineLimits, parse_manifest, read_manifest_file


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


def upgrade(models_dir: Path) -> None:
    """A schema 1 manifest (an older model set, e.g. a benchmark's baseline) gets this code's pipeline limits, which
    are the limits it was served with when it was the release."""
    path = models_dir / MANIFEST_FILE
    raw = json.loads(path.read_text(encoding="utf-8"))
    if raw.get("schema") == 1:
        raw.update(schema=SCHEMA_VERSION, pipeline=PipelineLimits.from_code().model_dump(mode="json"))
    save(models_dir, raw)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check or upgrade a models folder's manifest.json.")
    parser.add_argument("action", choices=("check", "upgrade"))
    parser.add_argument("models_dir", type=Path)
    args = parser.parse_args(argv)
    if args.action == "upgrade":
        upgrade(args.models_dir)
    read_manifest_file(args.models_dir / MANIFEST_FILE)
    print(f"{args.models_dir / MANIFEST_FILE}: schema {SCHEMA_VERSION}, valid")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
