"""/start /help /privacy /lang /history /forget /about, and unknown commands."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ContextTypes

from ..messages import t
from ..render import verdict_short
from .common import assistant, language, send_html


async def _preamble(update: Update, context: ContextTypes.DEFAULT_TYPE, lang: str) -> None:
    """Log the command, and say so politely when a no-argument command got arguments."""
    await assistant(context).log.message(update.effective_user.id, lang, "in", "command", update.effective_message.text)
    if context.args:
        await send_html(update, t("cmd.no_args", lang))


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    lang = await language(update, context)
    await _preamble(update, context, lang)
    await assistant(context).log.record_consent(update.effective_user.id, lang)
    await send_html(update, t("cmd.start", lang))


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    lang = await language(update, context)
    await _preamble(update, context, lang)
    await send_html(update, t("cmd.help", lang))


async def privacy(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    lang = await language(update, context)
    await _preamble(update, context, lang)
    state = t("privacy.images_on" if assistant(context).settings.store_images else "privacy.images_off", lang)
    await send_html(update, t("cmd.privacy", lang, images_state=state))


async def lang_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    current = await language(update, context)
    wanted = (context.args[0].lower()[:2] if context.args else "")
    await assistant(context).log.message(update.effective_user.id, current, "in", "command", update.effective_message.text)
    if wanted not in ("es", "en"):
        await send_html(update, t("cmd.lang_usage", current))
        return
    await assistant(context).log.set_language(update.effective_user.id, wanted)
    await send_html(update, t("cmd.lang_set", wanted))


async def history(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    lang = await language(update, context)
    await _preamble(update, context, lang)
    items = await assistant(context).log.history(update.effective_user.id)
    if not items:
        await send_html(update, t("cmd.history_empty", lang))
        return
    lines = [t("cmd.history_header", lang)]
    for item in items:
        lines.append(t("cmd.history_item", lang, date=item.created_at.strftime("%Y-%m-%d %H:%M"),
                       verdict=verdict_short(item.verdict, item.tumor_type, lang)))
    await send_html(update, "\n".join(lines))


FORGET_CONFIRM_TTL_S = 600  # a "yes" pressed later than this is refused; /forget asks again


async def forget(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    lang = await language(update, context)
    # The pending confirmation is a database row, so the "yes" may land on any worker.
    await assistant(context).shared.set_pending(update.effective_user.id, "forget", FORGET_CONFIRM_TTL_S)
    buttons = InlineKeyboardMarkup([[InlineKeyboardButton(t("button.forget_yes", lang), callback_data="forget:yes"),
                                     InlineKeyboardButton(t("button.forget_no", lang), callback_data="forget:no")]])
    await send_html(update, t("cmd.forget_confirm", lang), buttons)


async def about(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    from ..about import about_html

    lang = await language(update, context)
    await _preamble(update, context, lang)
    await send_html(update, about_html(assistant(context).router.manifest, lang))


async def unknown(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    lang = await language(update, context)
    await assistant(context).log.message(update.effective_user.id, lang, "in", "command", update.effective_message.text)
    await send_html(update, t("cmd.unknown", lang))
