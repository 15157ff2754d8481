"""Inline buttons: feedback on a result, /forget confirmation, follow-up topics and "which tumour do you mean?"."""

from __future__ import annotations

from telegram import Update
from telegram.constants import ParseMode
from telegram.ext import ContextTypes

from ..chat_session import press
from ..messages import t
from .common import assistant, escape, language, reply_markup, send_html


async def on_feedback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    lang = await language(update, context)
    try:
        _, prediction_id, value = query.data.split(":")
        saved = await assistant(context).log.feedback(update.effective_user.id, int(prediction_id), value == "1")
    except ValueError:
        saved = False
    await query.answer(t("feedback.thanks" if saved else "feedback.unknown", lang))
    if saved:
        await query.edit_message_reply_markup(None)


async def on_forget(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    lang = await language(update, context)
    await query.answer()
    helper, user_id = assistant(context), update.effective_user.id
    if query.data == "forget:yes":
        # Honoured only while this user's /forget confirmation is pending (any worker, once).
        if await helper.shared.consume_pending(user_id, "forget"):
            outcome = await helper.log.forget(user_id)
            text = t({"deleted": "cmd.forget_done", "nothing": "cmd.forget_nothing"}.get(outcome, "cmd.forget_queued"), lang)
        else:
            text = t("cmd.forget_expired", lang)
    else:
        await helper.shared.cancel_pending(user_id, "forget")
        text = t("cmd.forget_cancelled", lang)
    await query.edit_message_text(text, parse_mode=ParseMode.HTML)


async def on_topic(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """`topic:<intent>` or `topic:<topic>.<question>` (follow-ups, and the answer to "which tumour?")."""
    query = update.callback_query
    lang = await language(update, context)
    await query.answer()
    reply = await press(assistant(context), update.effective_user.id, query.data.split(":", 1)[1], lang)
    if reply is None:
        return
    await send_html(update, escape(reply.text), reply_markup(reply, t("button.learn_more", reply.lang)))
