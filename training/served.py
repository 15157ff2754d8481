"""Score data-set rows through the served pipeline (`inference.picture.analyse_picture`), as an upload would be.

Used to fit the gating table on validation (`training.gating`) and to report the served answers on test per
source, sequence and mask size (`training.evaluate`). Each slice is decoded from its file, so nothing differs
from what the bot does with the same bytes. The cascade runs with its gates open, and the gated answer is
derived from the same probabilities, so one pass gives both (and older model sets, with no gating table or
sequence model, can be scored the same way).
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from inference.cascade import Reason, SliceKind, Verdict, decide, gate_for

from .dataset import Row

_cascade = None


@dataclass(frozen=True)
class Served:
    """One row's answer with every gate open, and as served (None when the model set has no gating table)."""

    ungated_verdict: str
    ungated_type: str | None
    verdict: str | None
    tumor_type: str | None
    reasons: tuple[str, ...]
    sequence: str | None
    plane: str | None
    mri_probability: float
    tumor_probability: float
    # The typer's top tumour type and its confidence, where detector and typer agree on a tumour (else None, 0):
    # what the gating fit needs to choose from which confidence a type may be named.
    best_type: str | None = None
    type_confidence: float = 0.0


def _load(models_dir: str) -> None:
    global _cascade
    from inference.cascade import Cascade

    _cascade = Cascade.load(Path(models_dir), gated=False)


def _score(file: str) -> Served:
    from inference.imaging import decode_image
    from inference.picture import analyse_picture

    r = analyse_picture(_cascade, decode_image(Path(file).read_bytes()).image).result
    gated: tuple[str | None, str | None, tuple[str, ...]] = (None, None, ())
    if set(r.reasons) - set(Reason):  # the picture pipeline's quality reasons: no gate changes those
        gated = (str(r.verdict), r.tumor_type, tuple(r.reasons))
    elif _cascade.manifest.file.gating is not None:
        kind = SliceKind(r.sequence, r.sequence_confidence, r.plane, r.plane_confidence)
        verdict, tumor_type, reasons = decide(r.mri_probability, r.tumor_probability, r.type_probabilities,
                                              _cascade.thresholds, gate_for(kind, _cascade.manifest.gating))
        gated = (str(verdict), tumor_type, tuple(str(x) for x in reasons))
    typeable = r.verdict == Verdict.TUMOR or (r.verdict == Verdict.INCONCLUSIVE and Reason.UNSURE_TYPE in r.reasons)
    types = {k: v for k, v in r.type_probabilities.items() if k != "notumor"}
    best = max(types, key=types.get) if typeable and types else None
    return Served(str(r.verdict), r.tumor_type, *gated, r.sequence, r.plane, r.mri_probability, r.tumor_probability,
                  best, types[best] if best else 0.0)


def serve_rows(rows: list[Row], data_dir: Path, models_dir: Path, workers: int = 2) -> list[Served]:
    with ProcessPoolExecutor(max_workers=workers, initializer=_load, initargs=(str(models_dir),)) as pool:
        return list(pool.map(_score, [str(data_dir / r.path) for r in rows], chunksize=16))


def is_tumour(row: Row) -> bool:
    return row.is_brain_mri and row.label != "notumor"


def named_right(row: Row, verdict: str | None, tumor_type: str | None) -> bool | None:
    """Whether a named type is right; None when no type was named or the row has no type label (Br35H)."""
    if verdict != Verdict.TUMOR or tumor_type is None or row.label in ("tumor", "notumor", "not_mri"):
        return None
    return tumor_type == row.label
