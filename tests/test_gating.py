"""Answers only where validated: the gating table decides when "no tumour" and a tumour type may be said."""

from __future__ import annotations

import json
import shutil

import pytest

from inference.cascade import Cascade, Gate, Reason, SliceKind, Verdict, decide, gate_for
from inference.manifest import Gating, ManifestError, load_manifest
from training.dataset import Row
from training.gating import (
    MAX_HEALTHY_CALLED_TUMOUR,
    MIN_SLICES,
    MIN_TYPER_ACCURACY,
    accuracy_lower_bound,
    fit_gating,
)
from training.served import Served

THRESHOLDS = {
    "discriminator": {"band_low": 0.3, "band_high": 0.7},
    "detector": {"band_low": 0.2, "band_high": 0.6},
    "typer": {"min_confidence": 0.5},
}
GLIOMA = {"glioma": 0.8, "meningioma": 0.1, "notumor": 0.05, "pituitary": 0.05}
OPEN = Gate(name_type=True, trust_no_tumor=True)


def test_an_unvalidated_kind_of_slice_never_hears_no_tumour():
    assert decide(0.9, 0.1, GLIOMA, THRESHOLDS, OPEN) == (Verdict.NO_TUMOR, None, ())
    closed = Gate(name_type=True, trust_no_tumor=False)
    assert decide(0.9, 0.1, GLIOMA, THRESHOLDS, closed) == (Verdict.INCONCLUSIVE, None, (Reason.NO_TUMOR_NOT_VALIDATED,))


def test_where_the_typer_is_not_validated_the_tumour_verdict_stays_but_no_type_is_named():
    untyped = Gate(name_type=False, trust_no_tumor=True)
    assert decide(0.9, 0.9, GLIOMA, THRESHOLDS, OPEN) == (Verdict.TUMOR, "glioma", ())
    assert decide(0.9, 0.9, GLIOMA, THRESHOLDS, untyped) == (Verdict.TUMOR, None, (Reason.TYPE_NOT_VALIDATED,))
    # The typer still vetoes: it sees no tumour, so the models disagree whatever the gate.
    no_tumour = {"glioma": 0.1, "meningioma": 0.1, "notumor": 0.7, "pituitary": 0.1}
    assert decide(0.9, 0.9, no_tumour, THRESHOLDS, untyped)[0] == Verdict.INCONCLUSIVE


def test_a_type_below_the_cells_validated_confidence_is_not_named_but_the_tumour_verdict_stays():
    strict = Gate(name_type=True, trust_no_tumor=True, min_type_confidence=0.9)
    assert decide(0.9, 0.9, GLIOMA, THRESHOLDS, strict) == (Verdict.TUMOR, None, (Reason.UNSURE_TYPE,))
    lenient = Gate(name_type=True, trust_no_tumor=True, min_type_confidence=0.7)
    assert decide(0.9, 0.9, GLIOMA, THRESHOLDS, lenient) == (Verdict.TUMOR, "glioma", ())


def test_below_the_cells_tumour_floor_a_tumour_answer_becomes_inconclusive():
    floored = Gate(name_type=True, trust_no_tumor=True, min_tumor_probability=0.8)
    assert decide(0.9, 0.7, GLIOMA, THRESHOLDS, floored) == (Verdict.INCONCLUSIVE, None, (Reason.UNSURE_TUMOR,))
    assert decide(0.9, 0.85, GLIOMA, THRESHOLDS, floored) == (Verdict.TUMOR, "glioma", ())
    assert decide(0.9, 0.7, GLIOMA, THRESHOLDS, OPEN) == (Verdict.TUMOR, "glioma", ())


def test_the_floor_is_fitted_so_that_few_enough_healthy_slices_hear_tumour():
    # 100 healthy slices: 30 heard "tumour" from the open pipeline, at detector probabilities 0.61 ... 0.90.
    rows = [_row("notumor", "lgg") for _ in range(100)] + [_row("glioma", "lgg", mask_px=900) for _ in range(50)]
    served = [_served("tumor", "glioma", tumor_p=0.61 + i / 100) for i in range(30)]
    served += [_served("no_tumor", tumor_p=0.05) for _ in range(70)]
    served += [_served("tumor", "glioma", tumor_p=0.5 + i / 100) for i in range(50)]
    detector = fit_gating(rows, served)["cells"]["flair/axial"]["detector"]
    allowed = int(MAX_HEALTHY_CALLED_TUMOUR * 100)
    assert detector["healthy_called_tumour"] == allowed / 100
    # Halfway between the lowest healthy slice still told "tumour" and the highest one no longer told it.
    assert detector["min_tumor_probability"] == pytest.approx(0.61 + (30 - allowed - 0.5) / 100)
    assert detector["tumour_called_tumour"] == pytest.approx(sum(0.5 + i / 100 >= detector["min_tumor_probability"]
                                                                 for i in range(50)) / 50)
    # Where few enough healthy slices heard it, the detector's own band stands.
    calm = [_served("no_tumor", tumor_p=0.05) for _ in range(100)] + served[100:]
    assert fit_gating(rows, calm)["cells"]["flair/axial"]["detector"]["min_tumor_probability"] is None


def test_a_slice_of_unsure_kind_says_tumour_only_from_the_strictest_floor():
    gating = Gating(cells={"t1c/axial": OPEN}, unsure_min_tumor_probability=0.8)
    gate = gate_for(SliceKind(None, 0.4, "axial", 0.99), gating)
    assert decide(0.9, 0.7, GLIOMA, THRESHOLDS, gate) == (Verdict.INCONCLUSIVE, None, (Reason.UNSURE_TUMOR,))


def test_an_unsure_sequence_or_plane_closes_both_answers_with_its_own_reason():
    gating = Gating(cells={"t1c/axial": OPEN})
    for kind in (SliceKind(None, 0.4, "axial", 0.99), SliceKind("t1c", 0.99, None, 0.4)):
        gate = gate_for(kind, gating)
        assert decide(0.9, 0.1, GLIOMA, THRESHOLDS, gate) == (Verdict.INCONCLUSIVE, None, (Reason.UNSURE_SEQUENCE,))
        assert decide(0.9, 0.9, GLIOMA, THRESHOLDS, gate) == (Verdict.TUMOR, None, (Reason.UNSURE_SEQUENCE,))
    assert gate_for(SliceKind("t1c", 0.99, "axial", 0.99), gating) == OPEN
    # A cell the table does not know (a plane with no validated data) is closed.
    assert gate_for(SliceKind("t1c", 0.99, "sagittal", 0.99), gating) == Gate(False, False)


def _row(label: str, source: str = "kaggle4", sequence: str = "flair", mask_px: int = 0) -> Row:
    return Row(f"{label}.jpg", source, label, True, "brain_mri", "g", False, "val", sequence=sequence, mask_px=mask_px)


def _served(verdict: str, tumor_type: str | None = None, sequence: str = "flair", confidence: float = 0.9,
            tumor_p: float = 0.9) -> Served:
    return Served(verdict, tumor_type, None, None, (), sequence, "axial", 0.99, tumor_p, tumor_type, confidence)


def test_a_typer_only_ever_shown_gliomas_is_not_trusted_to_name_types_however_right_it_is():
    rows = [_row("glioma", "lgg", mask_px=900) for _ in range(100)] + [_row("notumor") for _ in range(50)]
    served = [_served("tumor", "glioma") for _ in range(100)] + [_served("no_tumor") for _ in range(50)]
    flair = fit_gating(rows, served)["sequences"]["flair"]
    assert flair["typer"]["accuracy"] == 1.0 and flair["typer"]["types_seen"] == {"glioma": 100}
    assert flair["name_type"] is False
    assert flair["trust_no_tumor"] is True  # sensitivity 100 % on 100 tumour slices


def test_types_are_named_only_from_the_confidence_where_they_were_right_often_enough_with_confidence():
    types = ("glioma", "meningioma", "pituitary")
    rows = [_row(types[i % 3]) for i in range(120)]
    # The 90 most confident slices are all typed right; the 30 least confident are all wrong.
    served = [_served("tumor", types[i % 3], confidence=0.99 - i / 1000) for i in range(90)]
    served += [_served("tumor", types[(i + 1) % 3], confidence=0.6 - i / 1000) for i in range(90, 120)]
    typer = fit_gating(rows, served)["cells"]["flair/axial"]["typer"]
    # The point estimate alone would go down to 94 slices (90 right, 95.7 %), where the lower bound is under 95 %.
    assert accuracy_lower_bound(90, 94) < MIN_TYPER_ACCURACY
    n = typer["n"]
    assert 90 <= n < 94 and typer["min_confidence"] == pytest.approx(served[n - 1].type_confidence)
    assert accuracy_lower_bound(90, n) >= MIN_TYPER_ACCURACY > accuracy_lower_bound(90, n + 1)
    assert typer["n_typed"] == 120


def test_one_sources_easy_slices_cannot_carry_anothers_into_a_named_type():
    types = ("glioma", "meningioma", "pituitary")
    # 200 Kaggle slices all typed right at high confidence; 60 LGG gliomas, a third of them typed wrong.
    rows = [_row(types[i % 3]) for i in range(200)] + [_row("glioma", "lgg", mask_px=900) for _ in range(60)]
    served = [_served("tumor", types[i % 3], confidence=0.99 - i / 10_000) for i in range(200)]
    served += [_served("tumor", "glioma" if i % 3 else "meningioma", confidence=0.95 - i / 1000) for i in range(60)]
    cell = fit_gating(rows, served)["cells"]["flair/axial"]
    pooled = (200 + 40) / 260
    assert pooled < MIN_TYPER_ACCURACY and cell["typer"]["min_confidence"] is None  # LGG never clears the bar
    assert cell["name_type"] is False and cell["typer"]["by_source"]["lgg"]["min_confidence"] is None
    assert cell["typer"]["by_source"]["kaggle4"]["min_confidence"] is not None
    # Fewer LGG slices than a source needs to be judged on: Kaggle's figures alone decide.
    few = fit_gating(rows[:200 + MIN_SLICES - 1], served[:200 + MIN_SLICES - 1])["cells"]["flair/axial"]
    assert few["typer"]["min_confidence"] is not None and set(few["typer"]["by_source"]) == {"kaggle4"}


def test_no_tumour_is_trusted_only_with_enough_sensitivity_on_enough_slices():
    def table(n_tumour: int, missed: int) -> dict:
        rows = [_row("meningioma") for _ in range(n_tumour)]
        served = [_served("no_tumor") for _ in range(missed)] + [_served("tumor", "meningioma") for _ in range(n_tumour - missed)]
        return fit_gating(rows, served)["sequences"]["flair"]

    assert table(200, 4)["trust_no_tumor"] is True  # 98 %
    assert table(200, 8)["trust_no_tumor"] is False  # 96 %
    assert table(MIN_SLICES - 1, 0)["trust_no_tumor"] is False  # too few to tell


def test_the_committed_gating_table_was_fitted_on_validation_for_every_cell(models_dir):
    manifest = load_manifest(models_dir)
    gating = manifest.raw["gating"]
    assert gating["fitted_on"].startswith("validation")
    assert set(gating["cells"]) == {f"{q}/{p}" for q in manifest["sequence"].labels for p in manifest["plane"].labels}
    for kind in gating["cells"].values():
        if kind["name_type"]:
            assert kind["typer"]["accuracy"] >= gating["min_typer_accuracy"]
            assert kind["typer"]["n"] >= gating["min_slices"]
            for source in kind["typer"]["by_source"].values():  # each judged source clears the bar on its own
                if source["n"]:  # a source whose slices all fall under the cell's threshold names none
                    assert source["accuracy"] >= gating["min_typer_accuracy"]
        if kind["trust_no_tumor"]:
            assert kind["detector"]["sensitivity"] >= gating["min_detector_sensitivity"]


def test_a_manifest_without_a_gating_table_fails_at_load_with_one_clear_line(models_dir, tmp_path):
    copy = tmp_path / "models"
    shutil.copytree(models_dir, copy, ignore=shutil.ignore_patterns("cards"))
    raw = json.loads((copy / "manifest.json").read_text())
    del raw["gating"]
    (copy / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(ManifestError, match="gating"):
        Cascade.load(copy)
    assert Cascade(load_manifest(copy, require_gating=False), gated=False).gated is False


@pytest.mark.parametrize("lang, untyped, advice", [("es", "no puedo decir de qué tipo", "T1 con contraste"),
                                                   ("en", "cannot tell which type", "T1-weighted slice after contrast")])
def test_the_reply_says_a_tumour_is_likely_names_no_type_and_asks_for_a_contrast_t1(lang, untyped, advice):
    from bot.render import result_html, verdict_short
    from inference.cascade import CascadeResult

    result = CascadeResult(0.99, 0.95, GLIOMA, "tumor", None, ("type_not_validated",), 5.0, {}, sequence="flair",
                           sequence_confidence=0.97, plane="axial", plane_confidence=0.99)
    text = result_html(result, lang)
    assert untyped in text and advice in text and "FLAIR" in text
    assert "<b>glioma</b>" not in text.lower()
    assert verdict_short("tumor", None, lang) != verdict_short("tumor", "glioma", lang)


def test_every_guarding_reason_has_a_text_in_both_languages():
    from bot.messages import has, t

    for reason in Reason:
        assert has(f"reason.{reason}")
        for lang in ("es", "en"):
            assert "{" not in t(f"reason.{reason}", lang, sequence="T2")
