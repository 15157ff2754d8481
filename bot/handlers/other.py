"""Everything that is neither text nor an image gets a clear, polite reply."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from ..messages import t
from .common import assistant, language, send_html


def _kind(update: Update) -> str:
    m = update.effective_message
    if m.sticker:
        return "sticker"
    if m.voice or m.audio or m.video_note:
        return "voice"
    if m.video or m.animation:
        return "video"
    if m.location or m.venue:
        return "location"
    if m.contact:
        return "contact"
    if m.poll:
        return "poll"
    return "other"


async def on_other(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if update.effective_chat is None or update.effective_chat.type != "private" or update.effective_user is None:
        return
    kind = _kind(update)
    lang = await language(update, context)
    await assistant(context).log.message(update.effective_user.id, lang, "in", kind, None)
    await assistant(context).log.message(update.effective_user.id, lang, "out", "unsupported", kind)
    await send_html(update, t(f"unsupported.{kind}", lang))
