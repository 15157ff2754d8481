"""Turn results into the HTML messages the bot sends (dynamic values are always escaped)."""

from __future__ import annotations

import html
import re

from inference.cascade import CascadeResult
from inference.errors import InputRejected

from .messages import has, percent, t


def type_label(tumor_type: str | None, lang: str) -> str:
    return t(f"label.{tumor_type}", lang) if tumor_type else ""


def verdict_short(verdict: str, tumor_type: str | None, lang: str) -> str:
    return t(f"verdict.short.{verdict}", lang, tumor_type=html.escape(type_label(tumor_type, lang)))


def result_html(result: CascadeResult, lang: str, warnings: tuple[str, ...] = (), dicom: dict | None = None) -> str:
    parts = []
    dicom = dicom or {}
    for code in warnings:
        if not has(f"result.dicom_warning.{code}"):
            continue
        parts.append(t(f"result.dicom_warning.{code}", lang, modality=html.escape(str(dicom.get("modality") or "?")),
                       body_part=html.escape(str(dicom.get("body_part") or "?"))))
    if dicom.get("frames", 1) and dicom.get("frames", 1) > 1:
        parts.append(t("result.dicom_frame", lang, frames=dicom["frames"], frame=dicom.get("frame_index", 0) + 1))
    parts.append(t(f"verdict.{result.verdict}", lang, tumor_type=html.escape(type_label(result.tumor_type, lang))))
    for reason in result.reasons:
        parts.append(t(f"reason.{reason}", lang))
    p = result.type_probabilities
    parts.append(t("result.probabilities", lang, mri=percent(result.mri_probability, lang),
                   tumor=percent(result.tumor_probability, lang),
                   **{k: percent(p.get(k), lang) for k in ("glioma", "meningioma", "pituitary", "notumor")}))
    if result.tumor_type:
        parts.append(t(f"result.meaning.{result.tumor_type}", lang))
    parts.append(t("result.disclaimer", lang))
    return "\n\n".join(parts)


def rejection_html(error: InputRejected, lang: str) -> str:
    return t(f"reject.{error.code}", lang, what=html.escape(error.values.get("what", "?")),
             detail=html.escape(error.detail))


def to_plain(text_html: str) -> str:
    """For the console: drop our own tags and unescape entities."""
    return html.unescape(re.sub(r"</?(b|i|code)>", "", text_html))
