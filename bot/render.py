"""Turn results into the HTML messages the bot sends (dynamic values are always escaped)."""

from __future__ import annotations

import html
import io
import re

from PIL import Image

from inference.cascade import CascadeResult
from inference.errors import InputRejected
from inference.labels import TumorType
from inference.picture import PictureAnalysis
from inference.sheet import annotate_sheet

from .messages import has, percent, t

# The typer's probabilities in the order a reader expects them: the three tumour types, then "no tumour".
SHOWN_TYPES = (TumorType.GLIOMA, TumorType.MENINGIOMA, TumorType.PITUITARY, TumorType.NOTUMOR)


def type_label(tumor_type: str | None, lang: str) -> str:
    return t(f"label.{tumor_type}", lang) if tumor_type else ""


def _verdict_key(verdict: str, tumor_type: str | None) -> str:
    """A tumour verdict without a type (the typer is not validated on this kind of slice) has its own text."""
    return "tumor_untyped" if verdict == "tumor" and not tumor_type else verdict


def verdict_short(verdict: str, tumor_type: str | None, lang: str) -> str:
    return t(f"verdict.short.{_verdict_key(verdict, tumor_type)}", lang,
             tumor_type=html.escape(type_label(tumor_type, lang)))


def sequence_label(result: CascadeResult, lang: str) -> str:
    return t(f"sequence.{result.sequence or 'unknown'}", lang)


def slice_kind_line(result: CascadeResult, lang: str) -> str:
    """What kind of slice the models took this for: answers are only given where validation backs them."""
    return t("result.sequence", lang, sequence=html.escape(sequence_label(result, lang)),
             plane=t(f"plane.{result.plane or 'unknown'}", lang), confidence=percent(result.sequence_confidence, lang))


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
    parts.append(t(f"verdict.{_verdict_key(result.verdict, result.tumor_type)}", lang,
                   tumor_type=html.escape(type_label(result.tumor_type, lang))))
    for reason in result.reasons:
        parts.append(t(f"reason.{reason}", lang, sequence=html.escape(sequence_label(result, lang))))
    if result.verdict != "not_mri":
        parts.append(slice_kind_line(result, lang))
    p = result.type_probabilities
    parts.append(t("result.probabilities", lang, mri=percent(result.mri_probability, lang),
                   tumor=percent(result.tumor_probability, lang),
                   **{k: percent(p.get(k), lang) for k in SHOWN_TYPES}))
    if result.tumor_type:
        parts.append(t(f"result.meaning.{result.tumor_type}", lang))
    parts.append(t("result.disclaimer", lang))
    return "\n\n".join(parts)


# Outline colours of a film sheet's slices on its thumbnail (the caption `sheet.legend` names them).
VERDICT_COLOURS = {"tumor": (230, 57, 70), "inconclusive": (255, 183, 3), "no_tumor": (42, 157, 143),
                   "not_mri": (150, 150, 150)}


def slice_line(i: int, result: CascadeResult | None, lang: str, rejected: str | None = None) -> str:
    """One line of a multi-slice answer (album or film sheet); `i` counts from 1."""
    if result is None:
        return t("album.item_rejected", lang, i=i, reason=html.escape(rejected or "?"))
    return t("album.item", lang, i=i, verdict=verdict_short(result.verdict, result.tumor_type, lang),
             tumor=percent(result.tumor_probability, lang))


def series_summary_html(verdict: str, tumor_type: str | None, drivers: tuple[int, ...], lang: str) -> str:
    slices = ", ".join(str(i + 1) for i in drivers)
    return t(f"album.summary.{verdict}", lang, tumor_type=html.escape(type_label(tumor_type, lang)), slices=slices)


def sheet_html(analysis: PictureAnalysis, lang: str) -> str:
    rows, cols = analysis.grid
    lines = [t("sheet.header", lang, n=len(analysis.tiles), rows=rows, cols=cols)]
    lines += [slice_line(i, tile.result, lang) for i, tile in enumerate(analysis.tiles, start=1)]
    lines += ["", series_summary_html(analysis.result.verdict, analysis.result.tumor_type, analysis.drivers, lang),
              "", t("result.disclaimer", lang)]
    return "\n".join(lines)


def sheet_thumbnail_jpeg(picture: Image.Image, analysis: PictureAnalysis) -> bytes:
    """The sheet with each slice outlined in its verdict's colour and numbered as in the text reply."""
    colours = [VERDICT_COLOURS[tile.result.verdict] for tile in analysis.tiles]
    labels = [str(i) for i in range(1, len(analysis.tiles) + 1)]
    buf = io.BytesIO()
    annotate_sheet(picture, analysis.sheet, colours, labels).save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def picture_html(analysis: PictureAnalysis, lang: str, warnings: tuple[str, ...] = (), dicom: dict | None = None) -> str:
    """The answer to one uploaded picture: a film sheet's slice list, or a single result."""
    if analysis.is_sheet:
        return sheet_html(analysis, lang)
    text = result_html(analysis.result, lang, warnings, dicom)
    return (t("result.located", lang) + "\n\n" + text) if analysis.cropped and analysis.result.verdict != "not_mri" \
        else text


def rejection_html(error: InputRejected, lang: str) -> str:
    return t(f"reject.{error.code}", lang, what=html.escape(error.values.get("what", "?")),
             detail=html.escape(error.detail))


def to_plain(text_html: str) -> str:
    """For the console: drop our own tags and unescape entities."""
    return html.unescape(re.sub(r"</?(b|i|code)>", "", text_html))
