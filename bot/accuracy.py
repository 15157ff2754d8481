"""The measured accuracy per MRI sequence, as plain text, from the manifest's "gating" object.

The image side fits the gating on validation and writes it into models/manifest.json; the bot's accuracy
answer and /about quote it from there, so no figure is ever typed into a text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .messages import has, percent, t

SEQUENCE_ORDER = ("t1", "t1c", "t2", "flair")


def _figure(node: Any, *path: str) -> float | None:
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
    return float(node) if isinstance(node, (int, float)) and not isinstance(node, bool) else None


def accuracy_by_sequence(manifest: Any, lang: str) -> str:
    """One line per sequence (display name, detector sensitivity/specificity, typer accuracy, type named or not).

    `manifest` is an inference.manifest.Manifest or its raw dict. Without "gating", one line says the
    per-sequence figures are not available.
    """
    raw = getattr(manifest, "raw", manifest)
    gating = raw.get("gating") if isinstance(raw, Mapping) else None
    sequences = gating.get("sequences") if isinstance(gating, Mapping) else None
    if not isinstance(sequences, Mapping) or not sequences:
        return t("accuracy.unavailable", lang)
    names = sorted(sequences, key=lambda s: (SEQUENCE_ORDER.index(s) if s in SEQUENCE_ORDER else 99, s))
    lines = []
    for seq in names:
        node = sequences[seq]
        display = t(f"sequence.{seq}", lang) if has(f"sequence.{seq}") else seq.upper()
        lines.append(t("accuracy.line", lang, sequence=display,
                       sensitivity=percent(_figure(node, "detector", "sensitivity"), lang),
                       specificity=percent(_figure(node, "detector", "specificity"), lang),
                       typer=percent(_figure(node, "typer", "accuracy"), lang),
                       naming=t("accuracy.names_type" if node.get("name_type") else "accuracy.no_type", lang)))
    return "\n".join(lines)
