"""Free text: the chat router answers (with the user's conversation context), with buttons and a source link."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from ..chat_session import converse
from ..messages import t
from .common import assistant, escape, reply_markup, send_html

MAX_TEXT = 4096


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    text = (message.text or "").replace("\x00", "")
    if update.effective_chat.type != "private":
        username = context.bot.username or ""
        if f"@{username}".lower() not in text.lower():
            return  # in groups we answer only commands and mentions
        text = text.replace(f"@{username}", "").strip()
    user = update.effective_user
    # No "typing" action: answers take about a millisecond, and each action is one of Telegram's ~30 requests/s.
    # The reply's language is the message's own unless the user chose one with /lang (bot/chat_session.py).
    reply = await converse(assistant(context), user.id, text[:MAX_TEXT], user.language_code)
    body = escape(reply.text)
    if len(text) > 1000:
        body += "\n\n" + t("text.too_long", reply.lang)
    await send_html(update, body, reply_markup(reply, t("button.learn_more", reply.lang)))
