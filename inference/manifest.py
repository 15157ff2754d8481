"""models/manifest.json: its one schema, shared by the writer (`training.manifest_io`) and the reader (here).

The manifest holds everything a model set is served with: each model's file, checksum, labels, input,
temperature and thresholds; the picture pipeline's limits (scan finding, quality checks, film sheets, heatmaps);
and the gating table fitted on validation. Unknown and missing fields are errors, reported as one line that
names the field, so a hand edit or a trainer's typo cannot change what is served without anyone noticing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ConfigurationError
from .heatmap import HEATMAP, HeatmapSettings
from .labels import Plane, Sequence, TumorType
from .locate import LOCATE_LIMITS, LocateLimits
from .quality import QUALITY_LIMITS, QualityLimits
from .sheet import SHEET_LIMITS, SheetLimits

MANIFEST_FILE = "manifest.json"
# Models whose classes are a closed set the rest of the code names (the gating table, the bot's texts).
CLOSED_LABELS: dict[str, type[StrEnum]] = {"typer": TumorType, "sequence": Sequence, "plane": Plane}
SCHEMA_VERSION = 2


class ManifestError(ConfigurationError):
    """The models folder is missing, incomplete or does not match its manifest."""


class ModelKind(StrEnum):
    IMAGE = "image"
    TEXT = "text"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ImageInput(_Strict):
    size: int
    channels: Literal[1, 3]
    dtype: Literal["float32"]
    range: Literal["0-255"]


class TextInput(_Strict):
    features: int
    dtype: Literal["float32"]


class _Entry(_Strict):
    file: str
    sha256: str
    bytes: int
    trained_at: str
    labels: list[str] = Field(min_length=1)
    preprocessing: str
    temperature: float = Field(gt=0)
    thresholds: dict[str, float]
    metrics: dict[str, Any]  # test figures, for reporting: nothing served reads them
    training: dict[str, Any]  # how it was trained (seed, epochs, architecture), for reporting


class ImageModelEntry(_Entry):
    kind: Literal[ModelKind.IMAGE]
    input: ImageInput
    positive_label: str | None  # the class whose probability the cascade reads (binary models)
    tta: Literal["hflip"] | None
    export: dict[str, Any]
    data: dict[str, Any]


class TextModelEntry(_Entry):
    kind: Literal[ModelKind.TEXT]
    input: TextInput
    vocabulary: str
    vocabulary_sha256: str


ModelEntry = Annotated[ImageModelEntry | TextModelEntry, Field(discriminator="kind")]


class DetectorFigures(_Strict):
    sensitivity: float | None
    specificity: float | None
    n_tumour: int
    n_healthy: int
    # The detector probability from which "tumour" may be said here (None: the detector's own band), and what
    # that floor leaves on validation: the share of healthy slices and of tumour slices answered "tumour".
    min_tumor_probability: float | None = None
    healthy_called_tumour: float | None = None
    tumour_called_tumour: float | None = None


class SourceTyping(_Strict):
    """One source's named types in a cell, at the cell's threshold, and the threshold it alone would need."""

    accuracy: float | None
    n: int
    min_confidence: float | None


class TyperFigures(_Strict):
    accuracy: float | None
    n: int
    n_typed: int
    min_confidence: float | None
    types_seen: dict[str, int]
    by_source: dict[str, SourceTyping] = {}


class KindFigures(_Strict):
    """Validation figures of one kind of slice, with every gate open, and the two gates they allow."""

    n: int
    detector: DetectorFigures
    typer: TyperFigures
    trust_no_tumor: bool
    name_type: bool


class GatingTable(_Strict):
    fitted_on: str
    min_detector_sensitivity: float
    min_typer_accuracy: float
    # The confidence of the interval whose lower end must reach min_typer_accuracy (None: the point estimate).
    typer_confidence_level: float | None = None
    min_slices: int
    min_per_type: int
    max_healthy_called_tumour: float | None = None
    n_slices: int
    n_unsure_kind: int
    cells: dict[str, KindFigures]  # "sequence/plane": the gates read these
    sequences: dict[str, KindFigures]  # for reporting (/about, the accuracy answer, the README)
    planes: dict[str, KindFigures]


class PipelineLimits(_Strict):
    """The picture pipeline's limits; the code's values (`*_LIMITS`, `HEATMAP`) are what a new manifest is written
    with, and what the shipped manifest must match (tests/test_manifest.py)."""

    locate: LocateLimits
    quality: QualityLimits
    sheet: SheetLimits
    heatmap: HeatmapSettings

    @classmethod
    def from_code(cls) -> PipelineLimits:
        return cls(locate=LOCATE_LIMITS, quality=QUALITY_LIMITS, sheet=SHEET_LIMITS, heatmap=HEATMAP)


class ManifestFile(_Strict):
    schema_version: Literal[2] = Field(alias="schema")
    updated_at: str | None
    models: dict[str, ModelEntry]
    pipeline: PipelineLimits
    gating: GatingTable | None = None  # absent between retraining an image model and `evaluate --refit`

    @model_validator(mode="after")
    def _closed_labels(self) -> ManifestFile:
        for name, labels in CLOSED_LABELS.items():
            if name in self.models and sorted(self.models[name].labels) != sorted(labels):
                raise ValueError(f"models.{name}.labels must be {sorted(labels)}, not {self.models[name].labels}")
        return self

    @classmethod
    def empty(cls) -> ManifestFile:
        return cls.model_validate({"schema": SCHEMA_VERSION, "updated_at": None, "models": {},
                                   "pipeline": PipelineLimits.from_code().model_dump()})

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=False, exclude={"gating"} if self.gating is None else None)


def _one_line(exc: ValidationError) -> str:
    """The first problem as `field.path: what is wrong`, and how many more there are."""
    errors = exc.errors()
    first = errors[0]
    loc = first["loc"]
    # A model entry's loc carries the union's tag ("models.typer.image.temperature"): the tag is not a field.
    parts = [p for i, p in enumerate(loc) if not (i == 2 and loc[0] == "models" and p in set(ModelKind))]
    where = ".".join(str(p) for p in parts) or "(top level)"
    what = {"extra_forbidden": "unknown field", "missing": "missing field"}.get(first["type"], first["msg"])
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {what}{more}"


def parse_manifest(raw: Any, where: Path) -> ManifestFile:
    if isinstance(raw, dict) and raw.get("schema") == 1:
        raise ManifestError(f"{where}: schema 1, from before the pipeline limits were in the manifest; "
                            f"upgrade it with `python -m training.manifest_io upgrade {where.parent}`")
    try:
        return ManifestFile.model_validate(raw)
    except ValidationError as exc:
        raise ManifestError(f"{where}: {_one_line(exc)}") from None


def read_manifest_file(path: Path) -> ManifestFile:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path}: not readable JSON ({exc})") from None
    return parse_manifest(raw, path)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    file: Path
    entry: ImageModelEntry | TextModelEntry

    @property
    def sha256(self) -> str:
        return self.entry.sha256

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.entry.labels)

    @property
    def size(self) -> int | None:
        return self.entry.input.size if isinstance(self.entry, ImageModelEntry) else None

    @property
    def channels(self) -> int | None:
        return self.entry.input.channels if isinstance(self.entry, ImageModelEntry) else None

    @property
    def temperature(self) -> float:
        return self.entry.temperature

    @property
    def thresholds(self) -> dict[str, float]:
        return self.entry.thresholds

    @property
    def tta(self) -> str | None:
        return self.entry.tta if isinstance(self.entry, ImageModelEntry) else None

    @property
    def positive_label(self) -> str | None:
        return self.entry.positive_label if isinstance(self.entry, ImageModelEntry) else None

    @property
    def vocabulary(self) -> str:
        if not isinstance(self.entry, TextModelEntry):
            raise ManifestError(f"model '{self.name}' is an image model and has no vocabulary")
        return self.entry.vocabulary

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
    # The detector probability below which "tumour" becomes inconclusive here: few enough healthy slices heard it.
    min_tumor_probability: float | None = None

    @classmethod
    def closed(cls) -> Gate:
        """A kind of slice with no validated data: neither answer is allowed."""
        return cls(name_type=False, trust_no_tumor=False)


@dataclass(frozen=True)
class Gating:
    """The gating table (`gating` in manifest.json), fitted on validation by `training.gating`.

    Gates are per cell, a sequence and a plane together ("t1c/axial"): a typer that is right on coronal T1c
    slices has not shown that it is right on axial ones. The per-sequence and per-plane figures in `table` are
    for reporting.
    """

    cells: dict[str, Gate]
    table: GatingTable | None = field(default=None, compare=False)
    # A slice whose kind the models are unsure of says "tumour" only from the strictest cell's floor.
    unsure_min_tumor_probability: float | None = None

    @staticmethod
    def cell(sequence: str, plane: str) -> str:
        return f"{sequence}/{plane}"

    @classmethod
    def from_table(cls, table: GatingTable) -> Gating:
        cells = {k: Gate(name_type=v.name_type, trust_no_tumor=v.trust_no_tumor, min_type_confidence=v.typer.min_confidence,
                         min_tumor_probability=v.detector.min_tumor_probability)
                 for k, v in table.cells.items()}
        floors = [g.min_tumor_probability for g in cells.values() if g.min_tumor_probability is not None]
        return cls(cells=cells, table=table, unsure_min_tumor_probability=max(floors, default=None))


@dataclass(frozen=True)
class Manifest:
    models_dir: Path
    models: dict[str, ModelSpec]
    file: ManifestFile
    gating: Gating = field(default_factory=lambda: Gating({}), compare=False)

    @property
    def pipeline(self) -> PipelineLimits:
        return self.file.pipeline

    @cached_property
    def raw(self) -> dict[str, Any]:
        """The manifest as JSON data (for reports that quote it)."""
        return self.file.to_json()

    def __getitem__(self, name: str) -> ModelSpec:
        try:
            return self.models[name]
        except KeyError:
            raise ManifestError(f"model '{name}' is not in {self.models_dir / MANIFEST_FILE}; "
                                f"train it with `saveyourlife train {name}`") from None


def _checked_file(models_dir: Path, name: str, sha256: str, verify: bool) -> Path:
    file = models_dir / name
    if not file.exists():
        raise ManifestError(f"{file} is listed in the manifest but missing")
    if verify and hashlib.sha256(file.read_bytes()).hexdigest() != sha256:
        raise ManifestError(f"{file} does not match its sha256 in {MANIFEST_FILE}; retrain or restore it")
    return file


def load_manifest(models_dir: Path, verify: bool = True, require_gating: bool = True) -> Manifest:
    """The manifest of `models_dir`, every listed file checked against its sha256; `require_gating=False` is for
    fitting the gating table itself (every gate is then closed)."""
    path = models_dir / MANIFEST_FILE
    if not path.exists():
        raise ManifestError(f"{path} not found; set MODELS_DIR or run `saveyourlife train all`")
    parsed = read_manifest_file(path)
    models: dict[str, ModelSpec] = {}
    for name, entry in parsed.models.items():
        file = _checked_file(models_dir, entry.file, entry.sha256, verify)
        if isinstance(entry, TextModelEntry):
            _checked_file(models_dir, entry.vocabulary, entry.vocabulary_sha256, verify)
        models[name] = ModelSpec(name=name, file=file, entry=entry)
    if parsed.gating is None:
        if not require_gating:
            return Manifest(models_dir=models_dir, models=models, file=parsed)
        raise ManifestError(f"{path} has no gating table; run `saveyourlife evaluate --refit` to fit it on validation")
    return Manifest(models_dir=models_dir, models=models, file=parsed, gating=Gating.from_table(parsed.gating))
