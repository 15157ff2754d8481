"""Helpers every handler shares: the assistant, the user's language, replying in HTML."""

from __future__ import annotations

import html

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, NetworkError, TimedOut
from telegram.ext import ContextTypes

from ..chat import Reply
from ..retry import TELEGRAM_SEND
from ..service import Assistant


def assistant(context: ContextTypes.DEFAULT_TYPE) -> Assistant:
    return context.application.bot_data["assistant"]


async def language(update: Update, context: ContextTypes.DEFAULT_TYPE, text: str = "") -> str:
    user = update.effective_user
    if user is None:
        return "es"
    return await assistant(context).user_language(user.id, user.language_code, text)


def reply_markup(reply: Reply, learn_more: str) -> InlineKeyboardMarkup | None:
    rows = []
    if reply.links:
        rows.append([InlineKeyboardButton(learn_more, url=reply.links[0].url)])
    for tag, label in reply.follow_ups[:3]:
        rows.append([InlineKeyboardButton(label, callback_data=f"topic:{tag}")])
    return InlineKeyboardMarkup(rows) if rows else None


async def send_html(update: Update, text: str, markup=None) -> None:
    """Send an HTML reply, retrying a 5xx or a dropped connection (PTB retries only 429s).

    A timeout is not retried: the message may have been delivered, and a duplicate is worse.
    A BadRequest is Telegram refusing this very message: sending it again cannot help.
    """
    chat = update.effective_chat
    if chat is None:
        return
    retrying = TELEGRAM_SEND.retrying(NetworkError, never_on=(TimedOut, BadRequest))
    await retrying(chat.send_message, text, parse_mode=ParseMode.HTML, reply_markup=markup,
                   disable_web_page_preview=True)


def escape(text: str) -> str:
    return html.escape(text, quote=False)
