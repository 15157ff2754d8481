"""Scans unlike the public sets: LGG patients' T1, FLAIR and T1-after-contrast slices, through the served pipeline.

These run on LGG's *validation* patients, the ones the gating table was fitted on, so they guard that serving does
what was fitted; the test patients are scored once per release by `saveyourlife evaluate` (README tables).
The bounds sit a little below what was measured (in each comment), so that a change for the worse fails.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from inference.cascade import Verdict
from training.dataset import read_manifest
from training.served import named_right, serve_rows

from .conftest import MODELS_DIR

VISIBLE_PX = 300  # the "visible tumour": a mask of at least this many pixels


@pytest.fixture(scope="module")
def lgg_validation(data_dir):
    rows = [r for r in read_manifest(data_dir) if r.source == "lgg" and r.split == "val"]
    if not rows:
        pytest.skip("no mri/lgg in the data folder")
    visible = [r for r in rows if r.mask_px >= VISIBLE_PX]
    lesion_free = [r for r in rows if r.mask_px == 0][::4]
    chosen = visible + lesion_free
    return list(zip(chosen, serve_rows(chosen, data_dir, MODELS_DIR)))


def _shares(pairs, verdict) -> dict[str, float]:
    by_sequence = defaultdict(list)
    for row, served in pairs:
        by_sequence[row.sequence].append(served.verdict == verdict)
    return {seq: sum(v) / len(v) for seq, v in by_sequence.items()}


def test_visible_gliomas_are_seldom_answered_no_tumour_in_any_sequence(lgg_validation):
    visible = [(r, s) for r, s in lgg_validation if r.mask_px >= VISIBLE_PX]
    no_tumour = _shares(visible, Verdict.NO_TUMOR)
    assert set(no_tumour) == {"t1", "t1c", "flair"}
    # Measured: T1 0 of 168, T1c 0 of 157, FLAIR 1 of 168 (issue target ≤ 5 %).
    assert all(share <= 0.05 for share in no_tumour.values()), no_tumour


def test_visible_gliomas_are_mostly_answered_tumour(lgg_validation):
    visible = [(r, s) for r, s in lgg_validation if r.mask_px >= VISIBLE_PX]
    tumour = _shares(visible, Verdict.TUMOR)
    # Measured: T1 114 of 168 (67.9 %), T1c 130 of 157 (82.8 %), FLAIR 144 of 168 (85.7 %) (issue target ≥ 60 %);
    # the rest inconclusive. The floor on the detector probability (≤ 12 % of healthy slices told "tumour") is
    # what keeps plain T1 lowest.
    assert all(share >= 0.65 for share in tumour.values()), tumour


def test_lesion_free_slices_of_glioma_patients_are_seldom_called_tumour(lgg_validation):
    lesion_free = [(r, s) for r, s in lgg_validation if r.mask_px == 0]
    called = sum(s.verdict == Verdict.TUMOR for _, s in lesion_free) / len(lesion_free)
    # Measured: 35 of 297 (11.8 %: T1 9 of 95, T1c 16 of 95, FLAIR 10 of 107); the target is ≤ 15 %.
    assert called <= 0.15


def test_a_named_type_is_right_and_unsure_kinds_name_none(lgg_validation):
    named = [ok for r, s in lgg_validation if (ok := named_right(r, s.verdict, s.tumor_type)) is not None]
    # Measured: 98 of 100 named types right (98.0 %; the type gate with a margin, fitted on all of validation).
    assert len(named) >= 90 and sum(named) / len(named) >= 0.95
    for _, s in lgg_validation:
        if s.sequence is None or s.plane is None:
            assert s.tumor_type is None and s.verdict != Verdict.NO_TUMOR


def test_the_sequence_model_tells_lgg_sequences_apart_better_than_chance(lgg_validation):
    sure = [(r, s) for r, s in lgg_validation if s.sequence is not None]
    right = sum(s.sequence == r.sequence for r, s in sure) / len(sure)
    # Measured: 719 right of the 770 (of 790) slices where it was sure, 93.4 % (the slice and its mirror image).
    # The 95 % on all test slices is not reached (README); the gates are fitted on what this model says,
    # so its mistakes are in the gated figures.
    assert right >= 0.88
