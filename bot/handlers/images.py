"""Photos and image documents: download, run the cascade off the loop, reply with the result.

Slices sent as one Telegram album (a media group) are gathered and answered once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatAction
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from inference.errors import InputRejected
from inference.imaging import MAX_FILE_BYTES
from inference.series import summarize

from ..db.context import ContextStore
from ..messages import t
from ..render import picture_html, rejection_html, series_summary_html, sheet_thumbnail_jpeg, slice_line
from ..service import ImageOutcome
from .common import assistant, escape, language, send_html

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".dcm", ".dicom", ".ima"}
TYPE_TOPIC = {"glioma": "glioma.what_is", "meningioma": "meningioma.what_is", "pituitary": "pituitary.what_is",
              "no_tumor": "result_meaning", "inconclusive": "result_meaning", "not_mri": "how_to_send"}
ALBUM_QUIET_S = 1.2
MAX_ALBUM_SLICES = 10


@dataclass(frozen=True)
class Upload:
    file_id: str
    size: int | None
    file_name: str | None
    source: str  # "photo" | "document"


@dataclass
class Album:
    update: Update
    uploads: list[Upload] = field(default_factory=list)
    last_seen: float = field(default_factory=time.monotonic)


def _looks_like_image(file_name: str | None, mime: str | None) -> bool:
    ext = ("." + file_name.rsplit(".", 1)[-1].lower()) if file_name and "." in file_name else ""
    return (mime or "").startswith("image/") or mime in ("application/dicom", "application/octet-stream", None) \
        or ext in IMAGE_EXTENSIONS


async def on_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    photo = update.effective_message.photo[-1]  # Telegram lists sizes smallest first
    await _route(update, context, Upload(photo.file_id, photo.file_size, None, "photo"))


async def on_document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    doc = update.effective_message.document
    if not _looks_like_image(doc.file_name, doc.mime_type):
        lang = await language(update, context)
        what = doc.mime_type or (doc.file_name or "?").rsplit(".", 1)[-1]
        await assistant(context).log.message(update.effective_user.id, lang, "in", "document", doc.file_name)
        await assistant(context).log.message(update.effective_user.id, lang, "out", "rejected", "unsupported_file")
        await send_html(update, t("unsupported.file", lang, what=escape(what)))
        return
    await _route(update, context, Upload(doc.file_id, doc.file_size, doc.file_name, "document"))


async def _route(update: Update, context: ContextTypes.DEFAULT_TYPE, upload: Upload) -> None:
    group = update.effective_message.media_group_id
    if group is None:
        await _single(update, context, upload)
        return
    albums: dict = context.application.bot_data.setdefault("albums", {})
    key = (update.effective_chat.id, group)
    album = albums.get(key)
    if album is None:
        albums[key] = album = Album(update)
        context.application.create_task(_album_when_quiet(key, context), update=update)
    album.uploads.append(upload)
    album.last_seen = time.monotonic()


async def _fetch_and_analyse(update: Update, context: ContextTypes.DEFAULT_TYPE, upload: Upload, lang: str
                             ) -> ImageOutcome:
    """Everything between 'a file arrived' and 'we have a result or a reason', each step logged."""
    helper = assistant(context)
    user_id = update.effective_user.id
    wait = await helper.image_wait(user_id)
    failure = None
    if wait:
        failure = InputRejected("rate_limited", f"{int(wait) + 1}")
    elif upload.size is not None and upload.size > MAX_FILE_BYTES:
        failure = InputRejected("too_large", "over 20 MB")
    else:
        try:
            file = await context.bot.get_file(upload.file_id)
            data = bytes(await file.download_as_bytearray())
        except TelegramError as exc:
            log.warning("download failed: %s", type(exc).__name__)
            failure = InputRejected("download_failed", "download failed")
    if failure is not None:
        await helper.log.message(user_id, lang, "in", upload.source, upload.file_name)
        await helper.log.message(user_id, lang, "out", "rejected", failure.code)
        return ImageOutcome(rejection=failure)
    return await helper.analyse(user_id, data, upload.file_name, upload.source, lang)


def _rejection_text(rejection: InputRejected, lang: str) -> str:
    if rejection.code == "rate_limited":
        return t("rate.limited", lang, seconds=rejection.detail)
    return rejection_html(rejection, lang)


def _learn_more(context: ContextTypes.DEFAULT_TYPE, key: str | None, lang: str) -> list[list[InlineKeyboardButton]]:
    link = assistant(context).router.learn_more_link(TYPE_TOPIC.get(key or ""), lang)
    return [[InlineKeyboardButton(t("button.learn_more", lang), url=link.url)]] if link else []


async def _remember(context: ContextTypes.DEFAULT_TYPE, user_id: int, result) -> None:
    """The result becomes the chat's context: "what does my result mean?" and "is it serious?" refer to it."""
    sequence = getattr(result, "sequence", None)
    await ContextStore(assistant(context).db).remember_image(
        user_id, result.verdict, result.tumor_type, sequence if isinstance(sequence, str) else None)


async def _send_heatmap(update: Update, context: ContextTypes.DEFAULT_TYPE, outcome: ImageOutcome, lang: str) -> None:
    overlay = await assistant(context).heatmap_image(outcome, t("heatmap.caption", lang))
    if overlay is not None:
        await update.effective_chat.send_photo(overlay, caption=t("heatmap.caption", lang))


async def _single(update: Update, context: ContextTypes.DEFAULT_TYPE, upload: Upload) -> None:
    lang = await language(update, context)
    await context.bot.send_chat_action(update.effective_chat.id, ChatAction.UPLOAD_PHOTO)
    outcome = await _fetch_and_analyse(update, context, upload, lang)
    if outcome.rejection is not None:
        await send_html(update, _rejection_text(outcome.rejection, lang))
        return
    result = outcome.result
    rows = _learn_more(context, result.tumor_type or result.verdict, lang)
    if outcome.prediction_id is not None:
        rows.append([InlineKeyboardButton(t("button.helpful", lang), callback_data=f"fb:{outcome.prediction_id}:1"),
                     InlineKeyboardButton(t("button.not_helpful", lang), callback_data=f"fb:{outcome.prediction_id}:0")])
    text = picture_html(outcome.analysis, lang, outcome.scan.warnings, outcome.scan.dicom)
    await send_html(update, text + "\n\n" + t("feedback.question", lang), InlineKeyboardMarkup(rows) if rows else None)
    await _remember(context, update.effective_user.id, result)
    if outcome.analysis.is_sheet:
        thumbnail = await assistant(context).run_cpu(sheet_thumbnail_jpeg, outcome.scan.image, outcome.analysis)
        await update.effective_chat.send_photo(thumbnail, caption=t("sheet.legend", lang))
    await _send_heatmap(update, context, outcome, lang)


async def _album_when_quiet(key: tuple, context: ContextTypes.DEFAULT_TYPE) -> None:
    albums: dict = context.application.bot_data["albums"]
    while time.monotonic() - albums[key].last_seen < ALBUM_QUIET_S:
        await asyncio.sleep(ALBUM_QUIET_S / 4)
    album = albums.pop(key)
    update = album.update
    lang = await language(update, context)
    await context.bot.send_chat_action(update.effective_chat.id, ChatAction.UPLOAD_PHOTO)
    uploads = album.uploads[:MAX_ALBUM_SLICES]
    outcomes = [await _fetch_and_analyse(update, context, u, lang) for u in uploads]
    summary = summarize([o.result for o in outcomes])
    lines = [t("album.header", lang, n=len(uploads))]
    if len(album.uploads) > MAX_ALBUM_SLICES:
        lines.append(t("album.too_many", lang, max=MAX_ALBUM_SLICES))
    lines += [slice_line(i, o.result, lang, o.rejection.code if o.rejection else None)
              for i, o in enumerate(outcomes, start=1)]
    lines += ["", series_summary_html(summary.verdict, summary.tumor_type, summary.drivers, lang), ""]
    lines.append(t("result.disclaimer", lang))
    rows = _learn_more(context, summary.tumor_type or summary.verdict, lang)
    await send_html(update, "\n".join(lines), InlineKeyboardMarkup(rows) if rows else None)
    await _remember(context, update.effective_user.id, summary)
    if summary.drivers and outcomes[summary.drivers[0]].result is not None:
        await _send_heatmap(update, context, outcomes[summary.drivers[0]], lang)
