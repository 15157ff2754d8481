"""What the served pipeline answered on test, per source × sequence and, for LGG, per mask size.

A pooled figure hides the failure that matters: a glioma on plain T1 answered "no tumour". So every figure is
given per source and per MRI sequence (LGG's own labels; the public sets' labels by eye, where there is one),
and the issue's targets are checked on the same cells.
"""

from __future__ import annotations

from collections import defaultdict

from inference.cascade import Verdict

from .dataset import Row
from .served import Served, is_tumour, named_right

MASK_BINS = ((0, 0, "none"), (1, 99, "1-99"), (100, 299, "100-299"), (300, 999, "300-999"), (1000, 10**9, ">=1000"))
VISIBLE_MASK_PX = 300  # the "visible tumour" size for LGG targets

TARGETS = {
    "lgg_visible_no_tumor_max": 0.05,
    "lgg_visible_tumor_min": 0.60,
    "lgg_lesion_free_tumor_max": 0.15,
    "named_right_min": 0.95,
}


def _rate(hits: int, n: int) -> float | None:
    return round(hits / n, 4) if n else None


def answer(s: Served) -> tuple[str, str | None]:
    return (s.verdict, s.tumor_type) if s.verdict is not None else (s.ungated_verdict, s.ungated_type)


def cell_figures(pairs: list[tuple[Row, Served]]) -> dict:
    verdicts = [answer(s)[0] for _, s in pairs]
    tumours = [answer(s)[0] for r, s in pairs if is_tumour(r)]
    healthy = [answer(s)[0] for r, s in pairs if r.label == "notumor"]
    named = [ok for r, s in pairs if (ok := named_right(r, *answer(s))) is not None]
    return {
        "n": len(pairs), "n_tumour": len(tumours), "n_healthy": len(healthy),
        "verdicts": {v.value: _rate(sum(x == v for x in verdicts), len(verdicts)) for v in Verdict},
        "false_reassurance": _rate(sum(v == Verdict.NO_TUMOR for v in tumours), len(tumours)),
        "tumour_answered_tumour": _rate(sum(v == Verdict.TUMOR for v in tumours), len(tumours)),
        "healthy_answered_tumour": _rate(sum(v == Verdict.TUMOR for v in healthy), len(healthy)),
        "healthy_answered_no_tumour": _rate(sum(v == Verdict.NO_TUMOR for v in healthy), len(healthy)),
        "n_named": len(named), "named_right": _rate(sum(named), len(named)),
        "coverage": _rate(sum(v in (Verdict.TUMOR, Verdict.NO_TUMOR) for v in verdicts), len(verdicts)),
    }


def _mask_bin(px: int) -> str:
    return next(name for lo, hi, name in MASK_BINS if lo <= px <= hi)


def served_report(rows: list[Row], served: list[Served]) -> dict:
    pairs = list(zip(rows, served))
    by_cell: dict[tuple[str, str], list] = defaultdict(list)
    by_source: dict[str, list] = defaultdict(list)
    lgg_bins: dict[tuple[str, str], list] = defaultdict(list)
    for r, s in pairs:
        by_cell[(r.source, r.sequence or "unlabelled")].append((r, s))
        by_source[r.source].append((r, s))
        if r.source == "lgg":
            lgg_bins[(r.sequence, _mask_bin(r.mask_px))].append((r, s))
    lgg = [(r, s) for r, s in pairs if r.source == "lgg"]
    public = [(r, s) for r, s in pairs if r.source != "lgg"]
    checks = {}
    for sequence in sorted({r.sequence for r, _ in lgg}):
        visible = [answer(s)[0] for r, s in lgg if r.sequence == sequence and r.mask_px >= VISIBLE_MASK_PX]
        free = [answer(s)[0] for r, s in lgg if r.sequence == sequence and r.label == "notumor"]
        checks[f"lgg_{sequence}_visible_no_tumor"] = _rate(sum(v == Verdict.NO_TUMOR for v in visible), len(visible))
        checks[f"lgg_{sequence}_visible_tumor"] = _rate(sum(v == Verdict.TUMOR for v in visible), len(visible))
        checks[f"lgg_{sequence}_lesion_free_tumor"] = _rate(sum(v == Verdict.TUMOR for v in free), len(free))
    free_all = [answer(s)[0] for r, s in lgg if r.label == "notumor"]
    checks["lgg_lesion_free_tumor"] = _rate(sum(v == Verdict.TUMOR for v in free_all), len(free_all))
    checks["public_named_right"] = cell_figures(public)["named_right"]
    checks["lgg_named_right"] = cell_figures(lgg)["named_right"]
    return {
        "gated": all(s.verdict is not None for _, s in pairs),
        "by_source": {k: cell_figures(v) for k, v in sorted(by_source.items())},
        "by_source_sequence": {f"{src}/{seq}": cell_figures(v) for (src, seq), v in sorted(by_cell.items())},
        "lgg_by_mask": {f"{seq}/{b}": cell_figures(v) for (seq, b), v in sorted(lgg_bins.items())},
        "targets": TARGETS,
        "checks": checks,
    }
