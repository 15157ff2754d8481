"""Typed view of models/manifest.json: files, inputs, labels, temperatures and thresholds."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigurationError


class ManifestError(ConfigurationError):
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
    metrics: dict[str, Any] = field(default_factory=dict, compare=False)
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def version(self) -> str:
        return self.sha256[:12]


@dataclass(frozen=True)
class Gate:
    """What validation allows on one kind of slice: clearing it ("no tumour") and naming a tumour type."""

    name_type: bool
    trust_no_tumor: bool
    reason: str | None = None  # the reason to give when this gate holds an answer back (default per answer)
    # The typer confidence from which its named types were right often enough here, on validation.
    min_type_confidence: float | None = None

    @classmethod
    def closed(cls) -> Gate:
        """A kind of slice with no validated data: neither answer is allowed."""
        return cls(name_type=False, trust_no_tumor=False)


@dataclass(frozen=True)
class Gating:
    """The gating table (`gating` in manifest.json), fitted on validation by `training.gating`.

    Gates are per cell, a sequence and a plane together ("t1c/axial"): a typer that is right on coronal T1c
    slices has not shown that it is right on axial ones. The per-sequence and per-plane figures in `raw` are
    for reporting.
    """

    cells: dict[str, Gate]
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @staticmethod
    def cell(sequence: str, plane: str) -> str:
        return f"{sequence}/{plane}"

    @classmethod
    def from_raw(cls, raw: dict[str, Any], where: Path) -> Gating:
        try:
            cells = {
                k: Gate(name_type=bool(v["name_type"]), trust_no_tumor=bool(v["trust_no_tumor"]),
                        min_type_confidence=v["typer"]["min_confidence"])
                for k, v in raw["cells"].items()
            }
        except (KeyError, TypeError, AttributeError) as exc:
            raise ManifestError(f"{where}: the gating table is malformed (missing {exc}); "
                                "rerun `saveyourlife evaluate --refit`") from None
        return cls(cells=cells, raw=raw)


@dataclass(frozen=True)
class Manifest:
    models_dir: Path
    models: dict[str, ModelSpec]
    raw: dict[str, Any]
    gating: Gating = field(default_factory=lambda: Gating({}), compare=False)

    def __getitem__(self, name: str) -> ModelSpec:
        try:
            return self.models[name]
        except KeyError:
            raise ManifestError(f"model '{name}' is not in {self.models_dir / 'manifest.json'}; "
                                f"train it with `saveyourlife train {name}`") from None


def load_manifest(models_dir: Path, verify: bool = True, require_gating: bool = True) -> Manifest:
    """The manifest of `models_dir`; `require_gating=False` is for fitting the gating table itself (every gate
    is then closed)."""
    path = models_dir / "manifest.json"
    if not path.exists():
        raise ManifestError(f"{path} not found; set MODELS_DIR or run `saveyourlife train all`")
    raw = json.loads(path.read_text())
    models: dict[str, ModelSpec] = {}
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
    if "gating" not in raw:
        if not require_gating:
            return Manifest(models_dir=models_dir, models=models, raw=raw)
        raise ManifestError(f"{path} has no gating table; run `saveyourlife evaluate --refit` to fit it on validation")
    return Manifest(models_dir=models_dir, models=models, raw=raw, gating=Gating.from_raw(raw["gating"], path))
