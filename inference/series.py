"""Several slices of one study (a Telegram album, a film sheet): one overall answer, and which slices drove it."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from .cascade import CascadeResult


@dataclass(frozen=True)
class SeriesSummary:
    verdict: str  # not_mri | no_tumor | tumor | inconclusive
    tumor_type: str | None
    drivers: tuple[int, ...]  # 0-based indices of the slices behind the verdict, strongest first


def summarize(results: list[CascadeResult | None]) -> SeriesSummary:
    """Mostly non-MRI slices make a non-MRI study (a CT sheet with one MRI-looking slice is still CT); otherwise a
    tumour on any slice outweighs clean slices, and doubt outweighs "no tumour". Unreadable slices are skipped."""
    indexed = [(i, r) for i, r in enumerate(results) if r is not None]
    not_mri = [i for i, r in indexed if r.verdict == "not_mri"]
    if indexed and len(not_mri) * 2 > len(indexed):
        return SeriesSummary("not_mri", None, tuple(not_mri))
    tumours = sorted(((i, r) for i, r in indexed if r.verdict == "tumor"), key=lambda x: -x[1].tumor_probability)
    if tumours:
        votes: dict[str | None, float] = defaultdict(float)  # None: a gate held the slice's type back
        for _, r in tumours:
            votes[r.tumor_type] += r.tumor_probability
        best = max(votes, key=votes.__getitem__)
        return SeriesSummary("tumor", best, tuple(i for i, r in tumours if r.tumor_type == best))
    doubtful = sorted(((i, r) for i, r in indexed if r.verdict == "inconclusive"), key=lambda x: -x[1].tumor_probability)
    if doubtful:
        return SeriesSummary("inconclusive", None, tuple(i for i, _ in doubtful))
    clean = [i for i, r in indexed if r.verdict == "no_tumor"]
    if clean:
        return SeriesSummary("no_tumor", None, tuple(clean))
    return SeriesSummary("inconclusive", None, ())
