"""Last line of defence: log the error (the token is redacted by the log filter) and apologise."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ContextTypes

from ..messages import t

log = logging.getLogger(__name__)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    log.error("error while handling an update: %s", type(context.error).__name__, exc_info=context.error)
    if isinstance(update, Update) and update.effective_chat is not None:
        lang = (update.effective_user.language_code or "es")[:2] if update.effective_user else "es"
        try:
            await update.effective_chat.send_message(t("error.generic", lang if lang in ("es", "en") else "es"))
        except Exception as exc:  # the API itself may be what failed
            log.warning("could not tell the user about the error: %s", type(exc).__name__)
