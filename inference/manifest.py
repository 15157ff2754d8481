"""Typed view of models/manifest.json: files, inputs, labels, temperatures and thresholds."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path


class ManifestError(RuntimeError):
    """The models folder is missing, incomplete or does not match its manifest."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    file: Path
    sha256: str
    labels: tuple[str, ...]
    size: int | None
    channels: int | None
    temperature: float
    thresholds: dict[str, float]
    metrics: dict = field(default_factory=dict, compare=False)
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def version(self) -> str:
        return self.sha256[:12]


@dataclass(frozen=True)
class Manifest:
    models_dir: Path
    models: dict[str, ModelSpec]
    raw: dict

    def __getitem__(self, name: str) -> ModelSpec:
        try:
            return self.models[name]
        except KeyError:
            raise ManifestError(f"model '{name}' is not in {self.models_dir / 'manifest.json'}; "
                                f"train it with `saveyourlife train {name}`") from None


def load_manifest(models_dir: Path, verify: bool = True) -> Manifest:
    path = models_dir / "manifest.json"
    if not path.exists():
        raise ManifestError(f"{path} not found; set MODELS_DIR or run `saveyourlife train all`")
    raw = json.loads(path.read_text())
    models = {}
    for name, entry in raw.get("models", {}).items():
        file = models_dir / entry["file"]
        if not file.exists():
            raise ManifestError(f"{file} is listed in the manifest but missing")
        if verify and hashlib.sha256(file.read_bytes()).hexdigest() != entry["sha256"]:
            raise ManifestError(f"{file} does not match the sha256 in manifest.json; retrain or restore it")
        inp = entry.get("input", {})
        models[name] = ModelSpec(
            name=name,
            file=file,
            sha256=entry["sha256"],
            labels=tuple(entry["labels"]),
            size=inp.get("size"),
            channels=inp.get("channels"),
            temperature=float(entry.get("temperature", 1.0)),
            thresholds={k: float(v) for k, v in entry.get("thresholds", {}).items()},
            metrics=entry.get("metrics", {}),
            extra={k: v for k, v in entry.items() if k not in {"metrics"}},
        )
    return Manifest(models_dir=models_dir, models=models, raw=raw)
