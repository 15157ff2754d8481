"""discriminator → detector → typer, with calibrated probabilities and manifest thresholds.

All three models run on every readable image, so the CLI can report every output;
the verdict logic then reads only the thresholds stored in the manifest.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .calibration import softmax
from .imaging import DecodedImage, decode_image, to_tensor
from .manifest import Manifest, ModelSpec, load_manifest
from .runtime import TFLiteModel

IMAGE_MODELS = ("discriminator", "detector", "typer")
VERDICTS = ("not_mri", "no_tumor", "tumor", "inconclusive")


@dataclass(frozen=True)
class CascadeResult:
    """What the cascade concluded about one image, and why."""

    mri_probability: float
    tumor_probability: float
    type_probabilities: dict[str, float]
    verdict: str
    tumor_type: str | None
    reasons: tuple[str, ...]  # message-catalogue keys, e.g. "unsure_mri", "models_disagree"
    latency_ms: float
    model_versions: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        out = asdict(self)
        out["reasons"] = list(self.reasons)
        return out


def decide(mri_p: float, tumor_p: float, type_p: dict[str, float], th: dict[str, dict[str, float]]) -> tuple[str, str | None, tuple[str, ...]]:
    """Turn calibrated probabilities into a verdict using only manifest thresholds."""
    disc, det, typ = th["discriminator"], th["detector"], th["typer"]
    if mri_p < disc["band_low"]:
        return "not_mri", None, ()
    if mri_p < disc["band_high"]:
        return "inconclusive", None, ("unsure_mri",)
    if tumor_p < det["band_low"]:
        return "no_tumor", None, ()
    if tumor_p < det["band_high"]:
        return "inconclusive", None, ("unsure_tumor",)
    tumour_types = {k: v for k, v in type_p.items() if k != "notumor"}
    best = max(tumour_types, key=tumour_types.get)
    if max(type_p, key=type_p.get) == "notumor":
        return "inconclusive", None, ("models_disagree",)
    if type_p[best] < typ["min_confidence"]:
        return "inconclusive", None, ("unsure_type",)
    return "tumor", best, ()


class Cascade:
    """Loads the three image models once; `predict_bytes` is thread-safe."""

    def __init__(self, manifest: Manifest, num_threads: int = 1) -> None:
        self.manifest = manifest
        self.specs: dict[str, ModelSpec] = {name: manifest[name] for name in IMAGE_MODELS}
        self.models = {name: TFLiteModel(spec.file, num_threads=num_threads) for name, spec in self.specs.items()}
        self.thresholds = {name: spec.thresholds for name, spec in self.specs.items()}
        self.versions = {name: spec.version for name, spec in self.specs.items()}

    @classmethod
    def from_dir(cls, models_dir: Path, num_threads: int = 1) -> "Cascade":
        return cls(load_manifest(models_dir), num_threads=num_threads)

    def tensor_for(self, name: str, image: Image.Image) -> np.ndarray:
        spec = self.specs[name]
        return to_tensor(image, spec.size, spec.channels)[None].astype(np.float32)

    def probabilities(self, name: str, image: Image.Image) -> dict[str, float]:
        spec = self.specs[name]
        logits = self.models[name].logits(self.tensor_for(name, image), spec.extra.get("tta"))[0]
        probs = softmax(logits, spec.temperature)
        return {label: float(p) for label, p in zip(spec.labels, probs)}

    def predict_image(self, image: Image.Image, started: float | None = None) -> CascadeResult:
        started = time.perf_counter() if started is None else started
        mri = self.probabilities("discriminator", image)
        tumor = self.probabilities("detector", image)
        types = self.probabilities("typer", image)
        mri_p = mri[self.specs["discriminator"].extra.get("positive_label") or "mri"]
        tumor_p = tumor[self.specs["detector"].extra.get("positive_label") or "tumor"]
        verdict, tumor_type, reasons = decide(mri_p, tumor_p, types, self.thresholds)
        return CascadeResult(
            mri_probability=round(mri_p, 4),
            tumor_probability=round(tumor_p, 4),
            type_probabilities={k: round(v, 4) for k, v in types.items()},
            verdict=verdict,
            tumor_type=tumor_type,
            reasons=reasons,
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
            model_versions=dict(self.versions),
        )

    def predict_bytes(self, data: bytes) -> tuple[DecodedImage, CascadeResult]:
        """Decode (raising InputRejected for bad input) and classify."""
        started = time.perf_counter()
        decoded = decode_image(data)
        return decoded, self.predict_image(decoded.image, started)
