"""Photos and image documents: download, run the cascade off the loop, reply with the result."""

from __future__ import annotations

import logging
import mimetypes

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatAction
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from inference.errors import InputRejected
from inference.imaging import MAX_FILE_BYTES

from ..messages import t
from ..render import rejection_html, result_html
from .common import assistant, language, send_html

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".dcm", ".dicom", ".ima"}
TYPE_TOPIC = {"glioma": "glioma_what", "meningioma": "meningioma_what", "pituitary": "pituitary_what",
              "no_tumor": "result_meaning", "inconclusive": "result_meaning", "not_mri": "how_to_send"}


def _looks_like_image(file_name: str | None, mime: str | None) -> bool:
    ext = ("." + file_name.rsplit(".", 1)[-1].lower()) if file_name and "." in file_name else ""
    return (mime or "").startswith("image/") or mime in ("application/dicom", "application/octet-stream", None) \
        or ext in IMAGE_EXTENSIONS


async def on_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    photo = update.effective_message.photo[-1]  # Telegram lists sizes smallest first
    await _analyse(update, context, photo.file_id, photo.file_size, None, "photo")


async def on_document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    doc = update.effective_message.document
    lang = await language(update, context)
    if not _looks_like_image(doc.file_name, doc.mime_type):
        what = doc.mime_type or (doc.file_name or "?").rsplit(".", 1)[-1]
        await assistant(context).log.message(update.effective_user.id, lang, "in", "document", doc.file_name)
        await assistant(context).log.message(update.effective_user.id, lang, "out", "rejected", "unsupported_file")
        await send_html(update, t("unsupported.file", lang, what=what))
        return
    await _analyse(update, context, doc.file_id, doc.file_size, doc.file_name, "document")


async def _download(context: ContextTypes.DEFAULT_TYPE, file_id: str) -> bytes:
    file = await context.bot.get_file(file_id)
    return bytes(await file.download_as_bytearray())


async def _analyse(update: Update, context: ContextTypes.DEFAULT_TYPE, file_id: str, size: int | None,
                   file_name: str | None, source: str) -> None:
    helper = assistant(context)
    user_id = update.effective_user.id
    lang = await language(update, context)
    wait = helper.image_limit.check(user_id)
    if wait:
        await helper.log.message(user_id, lang, "in", source, file_name)
        await helper.log.message(user_id, lang, "out", "rate_limited", None)
        await send_html(update, t("rate.limited", lang, seconds=int(wait) + 1))
        return
    if size is not None and size > MAX_FILE_BYTES:
        await helper.log.message(user_id, lang, "in", source, file_name)
        await helper.log.message(user_id, lang, "out", "rejected", "too_large")
        await send_html(update, rejection_html(InputRejected("too_large", "over 20 MB"), lang))
        return
    await context.bot.send_chat_action(update.effective_chat.id, ChatAction.UPLOAD_PHOTO)
    try:
        data = await _download(context, file_id)
    except TelegramError as exc:
        log.warning("download failed: %s", type(exc).__name__)
        await helper.log.message(user_id, lang, "in", source, file_name)
        await helper.log.message(user_id, lang, "out", "rejected", "download_failed")
        await send_html(update, t("reject.download_failed", lang))
        return
    outcome = await helper.analyse(user_id, data, file_name, source, lang)
    if outcome.rejection is not None:
        await send_html(update, rejection_html(outcome.rejection, lang))
        return
    result = outcome.result
    text = result_html(result, lang, outcome.scan.warnings, outcome.scan.dicom)
    rows = []
    topic = TYPE_TOPIC.get(result.tumor_type or result.verdict)
    links = helper.router.kb.intents[topic].links.get(lang, ()) if topic in helper.router.kb.intents else ()
    if links:
        rows.append([InlineKeyboardButton(t("button.learn_more", lang), url=links[0].url)])
    if outcome.prediction_id is not None:
        rows.append([InlineKeyboardButton(t("button.helpful", lang), callback_data=f"fb:{outcome.prediction_id}:1"),
                     InlineKeyboardButton(t("button.not_helpful", lang), callback_data=f"fb:{outcome.prediction_id}:0")])
    await send_html(update, text + "\n\n" + t("feedback.question", lang), InlineKeyboardMarkup(rows) if rows else None)
    overlay = await helper.heatmap_png(outcome, t("heatmap.caption", lang))
    if overlay is not None:
        await update.effective_chat.send_photo(overlay, caption=t("heatmap.caption", lang))
