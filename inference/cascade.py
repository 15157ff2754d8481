"""discriminator → detector → typer, with calibrated probabilities, manifest thresholds and validated gates.

Every model runs on every readable image, so the CLI can report every output; the verdict logic then reads
only the thresholds and the gating table stored in the manifest. The sequence and plane models say what kind
of slice this is, and the gating table (fitted on validation) says on which kinds the detector may clear a
slice and the typer may name a type.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .calibration import softmax
from .imaging import DecodedImage, decode_image, to_tensor
from .manifest import Gate, Gating, Manifest, ManifestError, ModelSpec, load_manifest
from .runtime import TFLiteModel

IMAGE_MODELS = ("discriminator", "detector", "typer", "sequence", "plane")


class Verdict(StrEnum):
    NOT_MRI = "not_mri"
    NO_TUMOR = "no_tumor"
    TUMOR = "tumor"
    INCONCLUSIVE = "inconclusive"


class Reason(StrEnum):
    """Why a verdict is guarded; each has a text in the message catalogue (`reason.<value>`)."""

    UNSURE_MRI = "unsure_mri"
    UNSURE_TUMOR = "unsure_tumor"
    UNSURE_TYPE = "unsure_type"
    MODELS_DISAGREE = "models_disagree"
    UNSURE_SEQUENCE = "unsure_sequence"
    TYPE_NOT_VALIDATED = "type_not_validated"
    NO_TUMOR_NOT_VALIDATED = "no_tumor_not_validated"


VERDICTS = tuple(Verdict)


@dataclass(frozen=True)
class SliceKind:
    """What kind of slice the sequence and plane models take this for, and how sure they are."""

    sequence: str | None  # None when the sequence model is below its validated confidence
    sequence_confidence: float
    plane: str | None
    plane_confidence: float


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
    sequence: str | None = None  # t1 | t1c | t2 | flair, or None when unsure
    sequence_confidence: float = 0.0
    plane: str | None = None
    plane_confidence: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["reasons"] = list(self.reasons)
        return out


def decide(mri_p: float, tumor_p: float, type_p: dict[str, float], th: dict[str, dict[str, float]],
           gate: Gate | None = None) -> tuple[str, str | None, tuple[str, ...]]:
    """Turn calibrated probabilities into a verdict using only manifest thresholds and the slice kind's gate.

    `gate` says what validation showed for this kind of slice; None means every answer is allowed (for callers
    that score the models alone). A gate that does not trust "no tumour" turns it into inconclusive, and one
    that does not trust the typer keeps the tumour verdict but names no type: a tumour slice answered
    inconclusive is a smaller harm than one answered "no tumour". Where too many healthy slices of this kind
    heard "tumour" on validation, the gate's floor turns the less sure ones into inconclusive too.
    """
    disc, det, typ = th["discriminator"], th["detector"], th["typer"]
    if mri_p < disc["band_low"]:
        return Verdict.NOT_MRI, None, ()
    if mri_p < disc["band_high"]:
        return Verdict.INCONCLUSIVE, None, (Reason.UNSURE_MRI,)
    if tumor_p < det["band_low"]:
        if gate is not None and not gate.trust_no_tumor:
            return Verdict.INCONCLUSIVE, None, (gate.reason or Reason.NO_TUMOR_NOT_VALIDATED,)
        return Verdict.NO_TUMOR, None, ()
    if tumor_p < det["band_high"]:
        return Verdict.INCONCLUSIVE, None, (Reason.UNSURE_TUMOR,)
    if gate is not None and gate.min_tumor_probability is not None and tumor_p < gate.min_tumor_probability:
        return Verdict.INCONCLUSIVE, None, (Reason.UNSURE_TUMOR,)
    tumour_types = {k: v for k, v in type_p.items() if k != "notumor"}
    best = max(tumour_types, key=tumour_types.__getitem__)
    if max(type_p, key=type_p.__getitem__) == "notumor":
        return Verdict.INCONCLUSIVE, None, (Reason.MODELS_DISAGREE,)
    if gate is None:
        if type_p[best] < typ["min_confidence"]:
            return Verdict.INCONCLUSIVE, None, (Reason.UNSURE_TYPE,)
        return Verdict.TUMOR, best, ()
    # Served: detector and typer agree on a tumour, so that verdict stands; the gate only decides the type.
    if not gate.name_type:
        return Verdict.TUMOR, None, (gate.reason or Reason.TYPE_NOT_VALIDATED,)
    min_confidence = typ["min_confidence"] if gate.min_type_confidence is None else gate.min_type_confidence
    if type_p[best] < min_confidence:
        return Verdict.TUMOR, None, (Reason.UNSURE_TYPE,)
    return Verdict.TUMOR, best, ()


def gate_for(kind: SliceKind, gating: Gating) -> Gate:
    """The gate of this slice's cell (sequence and plane); a cell with no validated data is closed."""
    if kind.sequence is None or kind.plane is None:
        return Gate(name_type=False, trust_no_tumor=False, reason=Reason.UNSURE_SEQUENCE,
                    min_tumor_probability=gating.unsure_min_tumor_probability)
    return gating.cells.get(Gating.cell(kind.sequence, kind.plane), Gate.closed())


class Cascade:
    """Loads the image models once; `predict_bytes` is thread-safe.

    `gated=False` answers with every gate open and runs without the sequence and plane models when the
    manifest has none: for fitting the gating table, and for scoring older model sets the same way.
    """

    KIND_MODELS = ("sequence", "plane")

    def __init__(self, manifest: Manifest, num_threads: int = 1, gated: bool = True) -> None:
        self.manifest = manifest
        self.gated = gated
        self.knows_kind = all(name in manifest.models for name in self.KIND_MODELS)
        names = [n for n in IMAGE_MODELS if n in manifest.models or gated or n not in self.KIND_MODELS]
        self.specs: dict[str, ModelSpec] = {name: manifest[name] for name in names}
        self.models = {name: TFLiteModel(spec.file, num_threads=num_threads) for name, spec in self.specs.items()}
        self.thresholds = {name: spec.thresholds for name, spec in self.specs.items()}
        self.versions = {name: spec.version for name, spec in self.specs.items()}

    @classmethod
    def load(cls, models_dir: Path, num_threads: int = 1, gated: bool = True) -> Cascade:
        """How everything that serves or scores pictures opens a model set (the bot through `bot.loader`, the CLI,
        training's evaluation, the benchmarks): the manifest checked, the gates as fitted, and warmed up."""
        return cls(load_manifest(models_dir, require_gating=gated), num_threads=num_threads, gated=gated).warm_up()

    def warm_up(self) -> Cascade:
        """One prediction, so the first real one does not pay for LiteRT's lazy initialisation on this thread."""
        self.predict_image(Image.new("RGB", (64, 64)))
        return self

    def tensor_for(self, name: str, image: Image.Image) -> np.ndarray:
        spec = self.specs[name]
        if spec.size is None or spec.channels is None:  # only the text model's entry has no input size
            raise ManifestError(f"model '{name}' has no input size and channels in the manifest; retrain it")
        return to_tensor(image, spec.size, spec.channels)[None].astype(np.float32)

    def probabilities(self, name: str, image: Image.Image) -> dict[str, float]:
        spec = self.specs[name]
        logits = self.models[name].logits(self.tensor_for(name, image), spec.tta)[0]
        probs = softmax(logits, spec.temperature)
        return {label: float(p) for label, p in zip(spec.labels, probs)}

    def slice_kind(self, image: Image.Image) -> SliceKind:
        sequence = self.probabilities("sequence", image)
        plane = self.probabilities("plane", image)
        best_sequence = max(sequence, key=sequence.__getitem__)
        best_plane = max(plane, key=plane.__getitem__)
        sure_sequence = sequence[best_sequence] >= self.thresholds["sequence"]["min_confidence"]
        sure_plane = plane[best_plane] >= self.thresholds["plane"]["min_confidence"]
        return SliceKind(best_sequence if sure_sequence else None, round(sequence[best_sequence], 4),
                         best_plane if sure_plane else None, round(plane[best_plane], 4))

    def predict_image(self, image: Image.Image, started: float | None = None) -> CascadeResult:
        started = time.perf_counter() if started is None else started
        mri = self.probabilities("discriminator", image)
        tumor = self.probabilities("detector", image)
        types = self.probabilities("typer", image)
        kind = self.slice_kind(image) if self.knows_kind else SliceKind(None, 0.0, None, 0.0)
        mri_p = mri[self.specs["discriminator"].positive_label or "mri"]
        tumor_p = tumor[self.specs["detector"].positive_label or "tumor"]
        verdict, tumor_type, reasons = decide(mri_p, tumor_p, types, self.thresholds,
                                              gate_for(kind, self.manifest.gating) if self.gated else None)
        return CascadeResult(
            mri_probability=round(mri_p, 4),
            tumor_probability=round(tumor_p, 4),
            type_probabilities={k: round(v, 4) for k, v in types.items()},
            verdict=verdict,
            tumor_type=tumor_type,
            reasons=reasons,
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
            model_versions=dict(self.versions),
            sequence=kind.sequence,
            sequence_confidence=kind.sequence_confidence,
            plane=kind.plane,
            plane_confidence=kind.plane_confidence,
        )

    def predict_bytes(self, data: bytes) -> tuple[DecodedImage, CascadeResult]:
        """Decode (raising InputRejected for bad input) and classify."""
        started = time.perf_counter()
        decoded = decode_image(data)
        return decoded, self.predict_image(decoded.image, started)
